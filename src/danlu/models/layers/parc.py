"""ParC, the position-aware circular convolution (ParC-Net, ECCV 2022) and its FFT form (Fast-ParC).

A ParC layer mixes a whole row or column of the feature map with one global kernel as long as that
row or column. Directions use the paper's naming:

- ``'H'`` (ParC-H): the kernel runs along the width, ``y[c,i,j] = b[c] + sum_s k[c,s] x[c,i,(j+s) % W]``;
- ``'V'`` (ParC-V): the kernel runs along the height, ``y[c,i,j] = b[c] + sum_s k[c,s] x[c,(i+s) % H,j]``.

The official code names them the other way round: its ``type='H'`` (module ``gcc_H``) has a (K, 1)
kernel along the height, i.e. the paper's ParC-V. The ParC networks map the official keys onto
``parc_v`` / ``parc_h`` in their ``checkpoint_filter_fn``.

A learnable positional embedding (one value per channel and position along the kernel's axis) is
added to the input before the convolution. Kernel and embedding are stored at ``base_size`` and
resized to the runtime length by bilinear interpolation with ``align_corners=True`` (as the official
detection/segmentation code does), each direction from its own axis, so any H x W works; at the base
size they are used as stored, without interpolation.

Two exact implementations, chosen by the ``impl`` attribute (changeable at any time):

- ``'spatial'``: the input concatenated with its first N-1 rows (columns), then a valid convolution:
  the official semantics (circular cross-correlation), O(N) work per output; this is the form ONNX
  exports.
- ``'fft'``: ``irfft(rfft(x + pe) * conj(rfft(k)), n=N)`` along the one axis (a product in frequency
  space is a circular cross-correlation when the kernel spectrum is conjugated), O(log N) per output,
  with its backward written out (`CircularXCorrFFT`).
- ``'auto'``: times both on the first call for each (shape, dtype, device, grad mode, groups,
  direction) and then uses the faster; the choices are cached for the whole process in
  ``ParC.auto_choices`` (clear it to re-measure).

``set_parc_impl(model, impl)`` switches every ParC layer of a model.

For ONNX export use ``export_mode(model, example_input)`` (a context manager) or
``freeze_parc(model, example_input)`` / ``unfreeze_parc(model)``: each ParC layer's kernel and
embedding are fixed at the size it sees for ``example_input`` (``ParC.freeze(size)``) and the
spatial form is forced, so the exported graph holds constant kernels and no interpolation.
"""
import re
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

IMPLS = ("spatial", "fft", "auto")


def _resize(t, n, dim):
    """Bilinear (align_corners=True) resize of t along dim (-2 or -1) to length n; t itself when already n."""
    if t.shape[dim] == n:
        return t
    size = (n, 1) if dim == -2 else (1, n)
    return F.interpolate(t, size=size, mode="bilinear", align_corners=True)


def parc_spatial(x, weight, pe, bias, groups, dim):
    """Circular cross-correlation along dim by concatenation + valid convolution (the official form)."""
    if pe is not None:
        x = x + pe
    x = torch.cat([x, x[:, :, :-1]] if dim == -2 else [x, x[..., :-1]], dim=dim)
    return F.conv2d(x, weight, bias, groups=groups)


def parc_fft(x, weight, pe, bias, groups, dim):
    """The same circular cross-correlation through a real FFT along dim only (see `CircularXCorrFFT`)."""
    if x.dtype in (torch.float16, torch.bfloat16):  # no CPU FFT in half precision (autocast): run in float32
        up = [t.float() if t is not None else None for t in (x, weight, pe, bias)]
        return parc_fft(*up, groups, dim).to(x.dtype)
    return CircularXCorrFFT.apply(x, weight.flatten(2), pe, bias, groups, dim)


class CircularXCorrFFT(torch.autograd.Function):
    """y = irfft(rfft(x + pe) * conj(rfft(k)), n) + bias along dim, with the adjoint written out.

    Forward: the positional embedding and the bias do not depend on the batch or on the other axis,
    so their part, rfft(pe) * conj(K) plus bias * N in the DC bin (irfft divides by N), is formed once
    at (C, F) size and fused into the product (addcmul) instead of two passes over the full tensor.
    Backward: autograd would differentiate rfft by a full-length complex FFT of a zero-padded
    spectrum. The adjoint needs one rfft of the output gradient (GY) and one irfft; every reduction
    is done on spectra: grad_x = irfft(GY * K); grad_k = irfft(sum over batch and the other axis of
    conj(GY) * (X + P)); grad_pe and grad_bias come from S = GY summed over batch and the other axis
    (grad_pe = irfft(S * K), grad_bias = the real DC bin of S). Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, x, k, pe, bias, groups, dim):
        n = x.shape[dim]
        spec = torch.fft.rfft(k, dim=-1)  # (C_out, C_in/g, F)
        x_f = torch.fft.rfft(x, dim=dim)  # (B, C, F, W) for dim=-2, (B, C, H, F) for dim=-1
        p_f = None if pe is None else torch.fft.rfft(pe, dim=dim)
        offset = None if p_f is None else _mix(p_f, spec.conj(), groups, dim)
        if bias is not None:
            if offset is None:
                offset = torch.zeros(_freq_shape(spec.shape[0], spec.shape[-1], dim), dtype=spec.dtype, device=spec.device)
            offset.select(dim, 0).add_(bias.view(1, -1, 1) * n)
        if _depthwise(x_f, spec, groups):
            k_view = spec.conj().view(_freq_shape(spec.shape[0], spec.shape[-1], dim))
            y_f = x_f * k_view if offset is None else torch.addcmul(offset, x_f, k_view)
        else:
            y_f = _mix(x_f, spec.conj(), groups, dim)
            if offset is not None:
                y_f += offset
        ctx.save_for_backward(x_f, p_f, spec)
        ctx.groups, ctx.dim, ctx.n = groups, dim, n
        return torch.fft.irfft(y_f, n=n, dim=dim)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        x_f, p_f, spec = ctx.saved_tensors
        groups, dim, n = ctx.groups, ctx.dim, ctx.n
        need_x, need_k, need_pe, need_b = ctx.needs_input_grad[:4]
        other = -1 if dim == -2 else -2  # the axis the kernel does not run along
        c_out, cg, nf = spec.shape
        spec_t = _transpose_groups(spec, groups)
        g_f = torch.fft.rfft(gy, dim=dim)
        gx = gk = gpe = gb = None
        if need_x:
            gx = torch.fft.irfft(_mix(g_f, spec_t, groups, dim), n=n, dim=dim)
        s_g = g_f.sum((0, other), keepdim=True) if (need_pe or need_b or (need_k and p_f is not None)) else None
        if need_pe:
            gpe = torch.fft.irfft(_mix(s_g, spec_t, groups, dim), n=n, dim=dim)
        if need_b:
            gb = s_g.select(dim, 0).real.flatten()
        if need_k:
            if _depthwise(x_f, spec, groups):
                s = torch.linalg.vecdot(g_f, x_f, dim=other).sum(0).view(c_out, 1, nf)  # vecdot conjugates g_f
            else:
                s = torch.einsum("bgofr,bgifr->goif", _grouped(g_f, groups, dim).conj(), _grouped(x_f, groups, dim))
                s = s.reshape(c_out, cg, nf)
            if p_f is not None:  # the embedding's share: P is constant over the reduced axes
                s = s + (s_g.conj().reshape(groups, -1, 1, nf) * p_f.reshape(groups, 1, cg, nf)).reshape(c_out, cg, nf)
            gk = torch.fft.irfft(s, n=n, dim=-1)
        return gx, gk, gpe, gb, None, None


def _depthwise(x_f, spec, groups):
    return groups == x_f.shape[1] == spec.shape[0]


def _freq_shape(c, nf, dim):
    return (1, c, nf, 1) if dim == -2 else (1, c, 1, nf)


def _grouped(t, groups, dim):
    """(B, C, F, R) view of a spectrum (frequency axis second to last) split as (B, groups, C/groups, F, R)."""
    if dim == -1:
        t = t.transpose(-1, -2)
    return t.reshape(t.shape[0], groups, -1, *t.shape[2:])


def _transpose_groups(spec, groups):
    """(C_out, C_in/g, F) -> (C_in, C_out/g, F): the per-group transposed channel mixing (the adjoint)."""
    c_out, cg, nf = spec.shape
    return spec.view(groups, c_out // groups, cg, nf).transpose(1, 2).reshape(groups * cg, c_out // groups, nf)


def _mix(x_f, spec, groups, dim):
    """Grouped channel mixing per frequency: y[b,o,f] = sum_i x[b,i,f] * spec[o,i,f] within each group."""
    c_out, cg, nf = spec.shape
    if _depthwise(x_f, spec, groups):  # one elementwise product
        return x_f * spec.view(_freq_shape(c_out, nf, dim))
    y = torch.einsum("bgifr,goif->bgofr", _grouped(x_f, groups, dim), spec.view(groups, c_out // groups, cg, nf))
    y = y.reshape(x_f.shape[0], c_out, nf, -1)
    return y if dim == -2 else y.transpose(-1, -2)


_IMPL_FNS = {"spatial": parc_spatial, "fft": parc_fft}


class ParC(nn.Module):
    """Position-aware circular convolution along one axis, with a global (map-long) kernel.

    Args:
        channels: input and output channels.
        direction: 'H' (kernel along the width) or 'V' (kernel along the height), paper naming.
        base_size: stored kernel/embedding length (the feature size at the training resolution).
        groups: None for depthwise (groups=channels), 1 for dense, or any divisor of channels.
        bias: learn a per-channel bias.
        use_pe: learn a positional embedding added before the convolution.
        impl: 'spatial', 'fft' or 'auto' (see the module docstring); an attribute, changeable later.

    Parameters use conv layouts, so official checkpoints map one to one: ``weight`` is
    (C, C/groups, base_size, 1) for 'V' and (C, C/groups, 1, base_size) for 'H'; ``pe`` is
    (1, C, base_size, 1) or (1, C, 1, base_size).
    """

    auto_choices = {}  # (shape, dtype, device, grad, groups, direction) -> measured faster impl, shared

    def __init__(self, channels, direction, base_size, groups=None, bias=True, use_pe=True, impl="spatial"):
        super().__init__()
        direction = str(direction).upper()
        if direction not in ("H", "V"):
            raise ValueError(f"ParC direction must be 'H' (kernel along the width) or 'V' (along the height), got {direction!r}")
        groups = channels if groups is None else groups
        if channels % groups:
            raise ValueError(f"ParC groups={groups} must divide channels={channels}; use None for depthwise or 1 for dense")
        self.channels, self.direction, self.base_size, self.groups = channels, direction, int(base_size), groups
        self.dim = -1 if direction == "H" else -2
        shape = (1, base_size) if direction == "H" else (base_size, 1)
        self.weight = nn.Parameter(torch.empty(channels, channels // groups, *shape))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.pe = nn.Parameter(torch.empty(1, channels, *shape)) if use_pe else None
        self.impl = impl
        self.register_buffer("frozen_weight", None, persistent=False)
        self.register_buffer("frozen_pe", None, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        # trunc-normal(.02) kernel and embedding, zero bias: the official ParC ConvNets' init
        nn.init.trunc_normal_(self.weight, std=0.02)
        if self.pe is not None:
            nn.init.trunc_normal_(self.pe, std=0.02)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @property
    def impl(self):
        return self._impl

    @impl.setter
    def impl(self, value):
        if value not in IMPLS:
            raise ValueError(f"ParC impl must be one of {IMPLS}, got {value!r}")
        self._impl = value

    def kernel_and_pe(self, n):
        """Kernel and positional embedding resized to runtime length n (the stored tensors when n == base_size)."""
        pe = None if self.pe is None else _resize(self.pe, n, self.dim)
        return _resize(self.weight, n, self.dim), pe

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"ParC expects a (batch, {self.channels}, height, width) tensor, got shape {tuple(x.shape)}")
        n = x.shape[self.dim]
        if self.frozen_weight is not None:
            if n != self.frozen_weight.shape[self.dim]:
                raise ValueError(f"this ParC is frozen at length {self.frozen_weight.shape[self.dim]} by freeze() but got "
                                 f"length {n}; call unfreeze() or freeze it at the new size")
            return parc_spatial(x, self.frozen_weight, self.frozen_pe, self.bias, self.groups, self.dim)
        weight, pe = self.kernel_and_pe(n)
        impl = self._choose(x, weight, pe) if self._impl == "auto" else self._impl
        return _IMPL_FNS[impl](x, weight, pe, self.bias, self.groups, self.dim)

    def _choose(self, x, weight, pe):
        grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
        key = (tuple(x.shape), x.dtype, str(x.device), grad, self.groups, self.direction)
        choice = self.auto_choices.get(key)
        if choice is None:
            if x.device.type == "meta" or torch.jit.is_tracing() or torch.compiler.is_compiling():
                return "spatial"  # nothing to time (or timing would be traced): the exportable form
            choice = self.auto_choices[key] = self._time_both(x, weight, pe, grad)
        return choice

    def _time_both(self, x, weight, pe, grad, min_rounds=3, max_rounds=20, budget_s=0.05):
        """The faster impl: best time of each (forward, plus backward when training) on detached copies.

        The two are timed alternately, so a burst of load hits both alike, for at least `min_rounds`
        rounds and more (up to `max_rounds`) while the measurement has taken under `budget_s`, so
        cheap shapes, where noise is relatively largest, get the most samples. On CPU the clock is
        the process's CPU time, which does not count time spent waiting for a core on a busy machine.
        """
        args = [t.detach().requires_grad_(grad) if t is not None else None for t in (x, weight, pe, self.bias)]
        inputs = [a for a in args if a is not None]
        grad_out = torch.ones_like(x) if grad else None  # a dense gradient, like a real backward's
        cuda = x.device.type == "cuda"
        clock = time.perf_counter if cuda else time.process_time
        best = {"spatial": float("inf"), "fft": float("inf")}
        spent = 0.0
        for i in range(max_rounds + 1):  # the first round warms up (allocations, FFT plans)
            if i > min_rounds and spent > budget_s:
                break
            for name in best:
                if cuda:
                    torch.cuda.synchronize()
                start = clock()
                y = _IMPL_FNS[name](*args, self.groups, self.dim)
                if grad:
                    torch.autograd.grad(y, inputs, grad_out)
                if cuda:
                    torch.cuda.synchronize()
                elapsed = clock() - start
                spent += elapsed
                if i:
                    best[name] = min(best[name], elapsed)
        return min(best, key=best.get)

    @torch.no_grad()
    def freeze(self, size):
        """Fix kernel and embedding at runtime size (h, w) and run the spatial form: what ONNX export needs."""
        n = size[0] if self.dim == -2 else size[1]
        weight, pe = self.kernel_and_pe(n)
        self.frozen_weight = weight.detach().clone()
        self.frozen_pe = None if pe is None else pe.detach().clone()

    def unfreeze(self):
        self.frozen_weight = self.frozen_pe = None

    def extra_repr(self):
        return (f"{self.channels}, direction={self.direction!r}, base_size={self.base_size}, groups={self.groups}, "
                f"bias={self.bias is not None}, use_pe={self.pe is not None}, impl={self._impl!r}")


def parc_split(x, parc_v, parc_h):
    """The ParC ConvNets' token mixer: ParC-V on the first half of the channels, ParC-H on the second."""
    x1, x2 = x.chunk(2, dim=1)
    return torch.cat([parc_v(x1), parc_h(x2)], dim=1)


_OFFICIAL_PARC = re.compile(r"(?:gcc|parc)_([HW])\.(?:gcc_conv\.)?")


def map_official_parc_keys(state_dict, model):
    """Official ParC ConvNet keys -> danlu's, for a model's `checkpoint_filter_fn`.

    The official `gcc_H` / `parc_H` (kernel along the height, see the module docstring) becomes
    `parc_v`, `gcc_W` / `parc_W` becomes `parc_h`, and `.gcc_conv.weight` becomes `.weight`. Kernels
    and embeddings stored at another base size than the model's are resized like at run time.
    """
    own = model.state_dict()
    out = {}
    for key, value in state_dict.items():
        key = _OFFICIAL_PARC.sub(lambda m: "parc_v." if m.group(1) == "H" else "parc_h.", key)
        target = own.get(key)
        if (target is not None and value.ndim == 4 and value.shape != target.shape and ".parc_" in key
                and value.shape[:2] == target.shape[:2]):
            dim = -2 if key.split(".parc_")[1].startswith("v") else -1
            value = _resize(value.to(target.dtype), target.shape[dim], dim)
        out[key] = value
    return out


def parc_embedding_names(model):
    """Names of the ParC positional embeddings in `model`: kept out of weight decay, like position embeddings."""
    return {name for name, _ in model.named_parameters() if name.endswith(".pe")}


def set_parc_impl(model, impl):
    """Set `impl` ('spatial', 'fft' or 'auto') on every ParC layer of model; returns model."""
    for m in model.modules():
        if isinstance(m, ParC):
            m.impl = impl
    return model


@torch.no_grad()
def freeze_parc(model, example_input):
    """Freeze every ParC of model at the size it sees for example_input (one forward pass); returns them."""
    sizes, hooks = {}, []

    def record(module, args):
        sizes.setdefault(module, tuple(args[0].shape[-2:]))

    for m in model.modules():
        if isinstance(m, ParC):
            hooks.append(m.register_forward_pre_hook(record))
    was_training = model.training
    try:
        model.eval()
        model(example_input)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    for m, size in sizes.items():
        m.freeze(size)
    return list(sizes)


def unfreeze_parc(model):
    for m in model.modules():
        if isinstance(m, ParC):
            m.unfreeze()


@contextmanager
def export_mode(model, example_input):
    """`with export_mode(model, x): torch.onnx.export(model, x, ...)`: constant kernels, spatial form."""
    freeze_parc(model, example_input)
    try:
        yield model
    finally:
        unfreeze_parc(model)
