import numpy as np
import pytest
import torch

from danlu.models.layers import ParC
from danlu.models.layers.parc import export_mode, freeze_parc, set_parc_impl


def circular_xcorr_oracle(x, weight, pe, bias, groups, direction):
    """Explicit loops of y[b,o,i,j] = bias[o] + sum_{c in group(o), s} k[o,c,s] (x+pe)[b,c,...(i or j)+s mod N...] in numpy."""
    x = x.detach().double().numpy()
    k = weight.detach().double().numpy().reshape(weight.shape[0], weight.shape[1], -1)
    if pe is not None:
        x = x + pe.detach().double().numpy()
    b, c, h, w = x.shape
    n = h if direction == "V" else w
    cg_in, cg_out = c // groups, weight.shape[0] // groups
    y = np.zeros((b, weight.shape[0], h, w))
    for o in range(weight.shape[0]):
        g = o // cg_out
        for ci in range(cg_in):
            src = x[:, g * cg_in + ci]
            for s in range(n):
                shifted = np.roll(src, -s, axis=1 if direction == "V" else 2)  # shifted[i] = src[(i+s) % n]
                y[:, o] += k[o, ci, s] * shifted
        if bias is not None:
            y[:, o] += bias.detach().double().numpy()[o]
    return torch.from_numpy(y)


def lerp_resize(v, n):
    """1-D bilinear resize with align_corners=True: out[j] = v interpolated at j*(B-1)/(n-1)."""
    b = v.shape[-1]
    pos = np.arange(n) * (b - 1) / max(n - 1, 1)
    return np.stack([np.interp(pos, np.arange(b), row) for row in v.reshape(-1, b)]).reshape(*v.shape[:-1], n)


def _layer(c, direction, base, groups, dtype=torch.float64):
    m = ParC(c, direction, base, groups=groups).to(dtype)
    with torch.no_grad():  # non-trivial bias and embedding so every term is checked
        m.bias.normal_()
        m.pe.normal_()
        m.weight.normal_()
    return m


CASES = [  # (channels, direction, base, groups, (h, w))
    (4, "V", 7, None, (7, 5)),    # odd N, H != W, depthwise
    (4, "H", 6, None, (3, 6)),    # even N
    (6, "V", 8, 1, (8, 3)),       # dense, even N
    (6, "H", 5, 1, (4, 5)),       # dense, odd N
    (6, "V", 4, 2, (4, 4)),       # grouped
]


@pytest.mark.parametrize("c,direction,base,groups,hw", CASES)
def test_both_impls_equal_the_oracle_at_base_size(c, direction, base, groups, hw):
    m = _layer(c, direction, base, groups)
    x = torch.randn(3, c, *hw, dtype=torch.float64)
    expected = circular_xcorr_oracle(x, m.weight, m.pe, m.bias, m.groups, direction)
    for impl in ("spatial", "fft"):
        m.impl = impl
        torch.testing.assert_close(m(x), expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("c,direction,base,groups,hw", CASES + [(4, "V", 5, None, (9, 6)), (6, "H", 7, 1, (3, 10))])
def test_spatial_and_fft_give_same_outputs_and_gradients(c, direction, base, groups, hw, dtype, tol):
    m = _layer(c, direction, base, groups, dtype)
    x = torch.randn(2, c, *hw, dtype=dtype, requires_grad=True)
    g = None
    results = {}
    for impl in ("spatial", "fft"):
        m.impl = impl
        y = m(x)
        g = torch.randn_like(y) if g is None else g
        results[impl] = (y, *torch.autograd.grad(y, [x, m.weight, m.pe, m.bias], g))
    for a, b in zip(results["spatial"], results["fft"]):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def test_kernel_and_pe_resized_bilinearly_per_axis():
    m = _layer(3, "V", 5, None)
    x = torch.randn(2, 3, 9, 4, dtype=torch.float64)  # height 9 from a base of 5; the width is irrelevant for 'V'
    k = torch.from_numpy(lerp_resize(m.weight.detach().numpy().reshape(3, 1, 5), 9)).view(3, 1, 9, 1)
    pe = torch.from_numpy(lerp_resize(m.pe.detach().numpy().reshape(1, 3, 5), 9)).view(1, 3, 9, 1)
    expected = circular_xcorr_oracle(x, k, pe, m.bias, m.groups, "V")
    for impl in ("spatial", "fft"):
        m.impl = impl
        torch.testing.assert_close(m(x), expected, atol=1e-10, rtol=0)


def test_no_interpolation_at_base_size():
    m = ParC(4, "H", 6)
    k, pe = m.kernel_and_pe(6)
    assert k is m.weight and pe is m.pe


def test_naming_h_runs_along_width():
    # a delta kernel at tap s shifts the map by s along the kernel's axis: 'H' -> width, 'V' -> height
    for direction, axis in (("H", 3), ("V", 2)):
        m = ParC(1, direction, 5, bias=False, use_pe=False).double()
        with torch.no_grad():
            m.weight.zero_().view(-1)[2] = 1.0
        x = torch.arange(25.0, dtype=torch.float64).view(1, 1, 5, 5)
        torch.testing.assert_close(m(x), torch.roll(x, -2, dims=axis))


def test_official_shapes():
    assert ParC(96, "V", 14).weight.shape == (96, 1, 14, 1)  # official gcc_H.gcc_conv.weight
    assert ParC(96, "H", 14).pe.shape == (1, 96, 1, 14)  # official gcc_W.pe
    assert ParC(128, "V", 14, groups=1).weight.shape == (128, 128, 14, 1)  # ParC-ResNet50 (dense)


def test_auto_picks_a_measured_impl_and_caches_it():
    m = _layer(4, "H", 6, None, torch.float32)
    m.impl = "auto"
    ParC.auto_choices.clear()
    x = torch.randn(2, 4, 5, 6)
    with torch.no_grad():
        y = m(x)
    (key, choice), = ParC.auto_choices.items()
    assert key == ((2, 4, 5, 6), torch.float32, "cpu", False, 4, "H") and choice in ("spatial", "fft")
    m.impl = "spatial"
    torch.testing.assert_close(y, m(x).detach(), atol=1e-5, rtol=1e-5)
    assert m.weight.grad is None  # timing the backward must not touch the real gradients


def test_auto_in_training_does_not_leak_gradients():
    m = _layer(4, "V", 6, None, torch.float32)
    set_parc_impl(m, "auto")
    x = torch.randn(2, 4, 6, 3, requires_grad=True)
    m(x).sum().backward()
    expected = m.weight.grad.clone()
    m.zero_grad()
    m.impl = "spatial"
    m(x).sum().backward()
    torch.testing.assert_close(expected, m.weight.grad, atol=1e-4, rtol=1e-4)


def test_freeze_fixes_kernels_and_forces_spatial():
    model = torch.nn.Sequential(ParC(4, "V", 8, impl="fft"), torch.nn.AvgPool2d(2), ParC(4, "H", 4, impl="fft"))
    x = torch.randn(1, 4, 10, 6)
    expected = model(x)
    with export_mode(model, x):
        assert model[0].frozen_weight.shape == (4, 1, 10, 1) and model[2].frozen_weight.shape == (4, 1, 1, 3)
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
        with pytest.raises(ValueError, match="frozen at length 10"):
            model(torch.randn(1, 4, 12, 6))
        assert "frozen_weight" not in model.state_dict()
    assert model[0].frozen_weight is None
    assert len(freeze_parc(model, x)) == 2


def test_bad_arguments_raise_one_sentence():
    with pytest.raises(ValueError, match="direction must be 'H'"):
        ParC(4, "W", 7)
    with pytest.raises(ValueError, match="must divide channels"):
        ParC(6, "H", 7, groups=4)
    with pytest.raises(ValueError, match="impl must be one of"):
        ParC(4, "H", 7).impl = "fast"
    with pytest.raises(ValueError, match="expects a \\(batch, 4, height, width\\)"):
        ParC(4, "H", 7)(torch.randn(1, 3, 7, 7))


@pytest.mark.parametrize("groups", [None, 1])
def test_parameter_gradients_when_the_input_needs_none(groups):
    m = _layer(4, "V", 6, groups)
    x = torch.randn(2, 4, 6, 3, dtype=torch.float64)  # e.g. the first layer: only the parameters learn
    grads = {}
    for impl in ("spatial", "fft"):
        m.impl = impl
        grads[impl] = torch.autograd.grad(m(x).square().sum(), [m.weight, m.pe, m.bias])
    for a, b in zip(grads["spatial"], grads["fft"]):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
