"""Multi-head attention: fused (`F.scaled_dot_product_attention`) with an explicit fallback.

Both paths take an optional additive bias (relative position bias, masks) so that models with a
bias still get the fused kernel. The explicit path is what `torch.utils.flop_counter` can count
(it counts nothing for the CPU kernel behind SDPA), so FLOP counting switches it on with
`fused_attn(False)`. bfloat16 on CPU also takes the explicit path, which is faster there.
"""
import contextlib

import torch
import torch.nn.functional as F
from torch import nn

_FUSED = True


def use_fused_attn():
    return _FUSED


@contextlib.contextmanager
def fused_attn(enabled):
    """Temporarily choose the fused (True) or explicit (False) attention path everywhere."""
    global _FUSED
    previous, _FUSED = _FUSED, enabled
    try:
        yield
    finally:
        _FUSED = previous


def _slow_fused_kernel(q):
    # In bfloat16 the CPU flash kernel is 2-3x slower than two bf16 matmuls and a softmax, forward and
    # backward, at ViT-S/16 shapes (benchmarks/bench_attention.py), so bf16 on CPU takes the explicit
    # path; fp32 and CUDA keep the fused kernel.
    return q.device.type == "cpu" and q.dtype == torch.bfloat16


def scaled_dot_product(q, k, v, attn_bias=None, dropout_p=0.0, scale=None):
    """softmax(q k^T * scale + attn_bias) v over the last two dims; q, k, v are (B, heads, N, d)."""
    if _FUSED and not _slow_fused_kernel(q):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, dropout_p=dropout_p, scale=scale)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    attn = (q * scale) @ k.transpose(-2, -1)
    if attn_bias is not None:
        attn = attn + attn_bias
    attn = attn.softmax(dim=-1)
    if dropout_p:
        attn = F.dropout(attn, p=dropout_p)
    return attn @ v


class Attention(nn.Module):
    """Self-attention over tokens (B, N, dim) with `heads` heads of width `dim_head`.

    `dim_head` defaults to dim // heads (timm); vit-pytorch sets it independently.
    """

    def __init__(self, dim, heads=8, dim_head=None, qkv_bias=False, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        dim_head = dim_head or dim // heads
        self.heads, self.dim_head = heads, dim_head
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=qkv_bias)
        self.proj = nn.Linear(heads * dim_head, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, attn_bias=None):
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4).unbind(0)
        x = scaled_dot_product(q, k, v, attn_bias, self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, -1)))
