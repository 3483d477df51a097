import pytest
import torch
import torch.nn.functional as F

from danlu.models.layers import SpatialReductionAttention, fused_attn, reduced_grid


def _reference(m, x, grid, bias, pooled):
    """softmax(q k^T / sqrt(d) + bias) v with keys/values from `pooled` (B, M, C) tokens."""
    B, N, C = x.shape
    h = m.num_heads
    q = F.linear(x, m.q.weight).reshape(B, N, h, -1).transpose(1, 2)
    if m.sr_ratio > 1:
        pooled = F.layer_norm(F.linear(pooled, m.linear.weight, m.linear.bias), (C,), m.norm.weight, m.norm.bias)
    k, v = F.linear(pooled, m.kv.weight).reshape(B, -1, 2, h, C // h).permute(2, 0, 3, 1, 4)
    a = (q @ k.transpose(-2, -1)) * (C // h) ** -0.5 + bias
    out = (a.softmax(-1) @ v).transpose(1, 2).reshape(B, N, C)
    return F.linear(out, m.proj.weight, m.proj.bias)


def _window_means(x, grid, sr):
    """Average of the tokens in each sr x sr window, border windows holding fewer tokens (loop oracle)."""
    B, _, C = x.shape
    t = x.reshape(B, *grid, C)
    kh, kw = reduced_grid(grid, sr)
    return torch.stack([t[:, i * sr:(i + 1) * sr, j * sr:(j + 1) * sr].mean((1, 2))
                        for i in range(kh) for j in range(kw)], dim=1)


@pytest.mark.parametrize("grid,sr", [((4, 6), 2), ((5, 7), 2), ((6, 6), 1)])
def test_matches_reference_fused_and_explicit(grid, sr):
    m = SpatialReductionAttention(16, num_heads=4, sr_ratio=sr).eval()
    x = torch.randn(2, grid[0] * grid[1], 16)
    keys = reduced_grid(grid, sr)
    assert keys == tuple(-(-n // sr) for n in grid)
    bias = torch.randn(1, 4, x.shape[1], keys[0] * keys[1])
    expected = _reference(m, x, grid, bias, _window_means(x, grid, sr))
    with torch.no_grad():
        torch.testing.assert_close(m(x, grid, bias), expected, rtol=0, atol=1e-5)
        with fused_attn(False):
            torch.testing.assert_close(m(x, grid, bias), expected, rtol=0, atol=1e-5)


def test_parameter_names_are_pyramid_tnt_ones():
    names = [n for n, _ in SpatialReductionAttention(8, 2, sr_ratio=2).named_parameters()]
    assert names == ["q.weight", "kv.weight", "proj.weight", "proj.bias", "linear.weight", "linear.bias",
                     "norm.weight", "norm.bias"]
    assert [n for n, _ in SpatialReductionAttention(8, 2).named_parameters()] == names[:4]


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="divisible by the number of heads 3"):
        SpatialReductionAttention(8, 3)
