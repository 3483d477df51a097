"""Spatial-reduction attention (PVT, Wang et al. 2021) in its pooled "linear" form, with an additive bias.

Keys and values come from an average-pooled copy of the token grid (`sr_ratio` times fewer tokens per
side), which keeps global attention affordable on high-resolution grids. An additive bias, such as
PyramidTNT's learned relative-position term, is added to the scaled logits before the softmax; it is
handed to `scaled_dot_product` as the `attn_mask` of the fused kernel.
"""
from torch import nn

from .attention import scaled_dot_product


def reduced_grid(grid, sr_ratio):
    """The key/value grid left after pooling an (H, W) token grid by `sr_ratio` (border windows kept)."""
    return tuple(-(-n // sr_ratio) for n in grid)


class SpatialReductionAttention(nn.Module):
    """Attention of (B, H*W, dim) tokens over a pooled copy of themselves.

    Parameter names (`q`, `kv`, `proj`, and `linear`, `norm` when `sr_ratio > 1`) are PyramidTNT's.
    """

    def __init__(self, dim, num_heads=8, qkv_bias=False, attn_drop=0.0, proj_drop=0.0, sr_ratio=1):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} must be divisible by the number of heads {num_heads}")
        self.num_heads, self.sr_ratio, self.attn_drop = num_heads, sr_ratio, attn_drop
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            # ceil_mode averages the partial windows at the border of grids that sr_ratio does not divide,
            # instead of dropping those tokens; on divisible grids it is the plain pool.
            self.pool = nn.AvgPool2d(sr_ratio, sr_ratio, ceil_mode=True)
            self.linear = nn.Linear(dim, dim)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x, grid, attn_bias=None):
        """x: (B, H*W, dim) on the row-major grid (H, W); attn_bias broadcasts to (B, heads, H*W, keys)."""
        B, N, C = x.shape
        h = self.num_heads
        q = self.q(x).reshape(B, N, h, C // h).transpose(1, 2)
        if self.sr_ratio > 1:
            x = self.pool(x.transpose(1, 2).reshape(B, C, *grid)).flatten(2).transpose(1, 2)
            x = self.norm(self.linear(x))
        k, v = self.kv(x).reshape(B, -1, 2, h, C // h).permute(2, 0, 3, 1, 4).unbind(0)
        x = scaled_dot_product(q, k, v, attn_bias, self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))
