"""TNT, Transformer in Transformer (Han et al. 2021, arXiv 2103.00112).

Each 16x16 patch (a *sentence*) is split into 4x4 *words* by a 7x7 stride-4 conv applied per patch. In
every block an inner transformer runs over each sentence's words and its output is projected into that
sentence; an outer transformer (with a class token) runs over the sentences.

Parameter names, shapes, defaults and initialisation are those of the official code
(huawei-noah/Efficient-AI-Backbones, tnt_pytorch/tnt.py), except that its unused `outer_tokens`
buffer-like parameter is left out. Official checkpoints and timm's renamed ones (`patch_pos`,
`pixel_embed`, `norm_in`, ...) load through `checkpoint_filter_fn`. Any input size works: inputs are
zero-padded to a multiple of the patch size and `outer_pos` is interpolated to the patch grid.
"""
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._base import IsotropicBase
from .layers import (
    DropPath,
    Mlp,
    block_layer_id,
    check_image,
    drop_path_rates,
    resample_abs_pos_embed,
    resample_checkpoint_pos_embed,
    scaled_dot_product,
    to_2tuple,
)
from .layers.weight_init import init_weights, trunc_normal_init
from .registry import register_model


class TNTAttention(nn.Module):
    """Multi-head self-attention with TNT's parameter layout: queries and keys from `qk`, values from `v`."""

    def __init__(self, dim, num_heads, qkv_bias=False, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} must be divisible by the number of heads {num_heads}")
        self.num_heads, self.attn_drop = num_heads, attn_drop
        self.qk = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        h = self.num_heads
        q, k = self.qk(x).reshape(B, N, 2, h, C // h).permute(2, 0, 3, 1, 4).unbind(0)
        v = self.v(x).reshape(B, N, h, C // h).transpose(1, 2)
        x = scaled_dot_product(q, k, v, None, self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))


class PatchEmbed(nn.Module):
    """Patches of `patch_size` pixels, each convolved (7x7, stride `inner_stride`, zero-padded at the patch
    border) into a grid of words: (B*N, words, inner_dim)."""

    def __init__(self, patch_size=16, in_chans=3, inner_dim=24, inner_stride=4):
        super().__init__()
        self.patch_size = to_2tuple(patch_size)
        self.unfold = nn.Unfold(kernel_size=self.patch_size, stride=self.patch_size)
        self.proj = nn.Conv2d(in_chans, inner_dim, kernel_size=7, padding=3, stride=inner_stride)

    def forward(self, x):
        B, C = x.shape[:2]
        x = self.unfold(x).transpose(1, 2).reshape(-1, C, *self.patch_size)  # (B*N, C, p, p)
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2)


class Block(nn.Module):
    """Inner transformer over each sentence's words, their projection added to the sentence, then the
    outer transformer over the class token and sentences."""

    def __init__(self, outer_dim, inner_dim, outer_heads, inner_heads, num_words, mlp_ratio=4.0, qkv_bias=False,
                 drop=0.0, attn_drop=0.0, drop_path=0.0):
        super().__init__()
        self.inner_norm1 = nn.LayerNorm(inner_dim)
        self.inner_attn = TNTAttention(inner_dim, inner_heads, qkv_bias, attn_drop, drop)
        self.inner_norm2 = nn.LayerNorm(inner_dim)
        self.inner_mlp = Mlp(inner_dim, int(inner_dim * mlp_ratio), inner_dim, drop=drop)
        self.proj_norm1 = nn.LayerNorm(num_words * inner_dim)
        self.proj = nn.Linear(num_words * inner_dim, outer_dim, bias=False)
        self.proj_norm2 = nn.LayerNorm(outer_dim)
        self.outer_norm1 = nn.LayerNorm(outer_dim)
        self.outer_attn = TNTAttention(outer_dim, outer_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.outer_norm2 = nn.LayerNorm(outer_dim)
        self.outer_mlp = Mlp(outer_dim, int(outer_dim * mlp_ratio), outer_dim, drop=drop)

    def forward(self, inner, outer):
        inner = inner + self.drop_path(self.inner_attn(self.inner_norm1(inner)))
        inner = inner + self.drop_path(self.inner_mlp(self.inner_norm2(inner)))
        B, N, _ = outer.shape
        words = self.proj_norm2(self.proj(self.proj_norm1(inner.reshape(B, N - 1, -1))))
        outer = torch.cat([outer[:, :1], outer[:, 1:] + words], dim=1)  # class token gets no words
        outer = outer + self.drop_path(self.outer_attn(self.outer_norm1(outer)))
        outer = outer + self.drop_path(self.outer_mlp(self.outer_norm2(outer)))
        return inner, outer


class TNT(IsotropicBase):
    """TNT classifier; its feature taps (`forward_intermediates`, `features_only`) are the blocks' sentence maps."""


    def __init__(self, img_size: int | tuple = 224, patch_size: int | tuple = 16, in_chans: int = 3,
                 num_classes: int = 1000, outer_dim: int = 384, inner_dim: int = 24, depth: int = 12,
                 outer_heads: int = 6, inner_heads: int = 4, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 inner_stride: int = 4, drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 features_only: bool = False, out_indices: Sequence[int] | None = None):
        super().__init__()
        self.in_chans, self.num_classes = in_chans, num_classes
        self.num_features, self.num_prefix_tokens = outer_dim, 1  # the class token
        patch_size = to_2tuple(patch_size)
        self.grid = tuple(-(-n // p) for n, p in zip(to_2tuple(img_size), patch_size))
        num_words = math.ceil(patch_size[0] / inner_stride) * math.ceil(patch_size[1] / inner_stride)

        self.patch_embed = PatchEmbed(patch_size, in_chans, inner_dim, inner_stride)
        self.proj_norm1 = nn.LayerNorm(num_words * inner_dim)
        self.proj = nn.Linear(num_words * inner_dim, outer_dim)
        self.proj_norm2 = nn.LayerNorm(outer_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, outer_dim))
        self.outer_pos = nn.Parameter(torch.zeros(1, math.prod(self.grid) + 1, outer_dim))
        self.inner_pos = nn.Parameter(torch.zeros(1, num_words, inner_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList([Block(outer_dim, inner_dim, outer_heads, inner_heads, num_words, mlp_ratio,
                                           qkv_bias, drop_rate, attn_drop_rate, dpr[i]) for i in range(depth)])
        self.norm = nn.LayerNorm(outer_dim)
        self.head = self._classifier(num_classes)
        self.num_lr_layers = depth + 1  # layer-wise lr decay: embeddings 0, blocks 1..depth, head depth + 1
        self._init_block_taps(depth, outer_dim, patch_size[0], features_only, out_indices)
        self._init_weights()

    def _init_weights(self):
        for p in (self.cls_token, self.outer_pos, self.inner_pos):
            nn.init.trunc_normal_(p, std=0.02)
        init_weights(self, {nn.Linear: trunc_normal_init})  # the patch conv keeps PyTorch's default, as officially

    def no_weight_decay(self):
        return {"outer_pos", "inner_pos", "cls_token"}

    def layer_id(self, name: str) -> int:
        """The layer of parameter `name` for layer-wise lr decay: the word and sentence embeddings 0 (timm's TNT
        stem), block i i + 1 (the final norm with the last block), the head `num_lr_layers`."""
        stem = ("patch_embed.", "proj_norm1.", "proj.", "proj_norm2.", "cls_token", "outer_pos", "inner_pos")
        return block_layer_id(name, stem, len(self.blocks))

    def checkpoint_filter_fn(self, state_dict):
        """Map official and timm TNT checkpoints onto this model: drop the unused `outer_tokens`, undo
        timm's renaming, and interpolate `outer_pos` trained on another (square) patch grid."""
        sd = {k: v for k, v in state_dict.items() if k != "outer_tokens"}
        if "patch_pos" in sd:  # timm layout
            sd = {".".join(_TIMM_NAMES.get(part, part) for part in k.split(".")): v for k, v in sd.items()}
            if sd["inner_pos"].ndim == 4:  # timm keeps the word embedding as a (1, c, 4, 4) map
                sd["inner_pos"] = sd["inner_pos"].flatten(2).transpose(1, 2)
        return resample_checkpoint_pos_embed(sd, "outer_pos", self.outer_pos, self.grid, num_prefix_tokens=1)

    def _taps(self, x):
        """Each block's class token and sentences, with the (padded) patch grid."""
        check_image(x, self.in_chans, 1, type(self).__name__)
        ph, pw = self.patch_embed.patch_size
        H, W = x.shape[-2:]
        if H % ph or W % pw:  # pad rather than crop the last partial patches
            x = F.pad(x, (0, -W % pw, 0, -H % ph))
        grid = (x.shape[-2] // ph, x.shape[-1] // pw)
        B = x.shape[0]
        inner = self.patch_embed(x) + self.inner_pos
        outer = self.proj_norm2(self.proj(self.proj_norm1(inner.reshape(B, grid[0] * grid[1], -1))))
        outer = torch.cat([self.cls_token.expand(B, -1, -1), outer], dim=1)
        outer = self.pos_drop(outer + resample_abs_pos_embed(self.outer_pos, grid, self.grid, num_prefix_tokens=1))
        for block in self.blocks:
            inner, outer = block(inner, outer)
            yield outer, grid

    def forward_head(self, x, pre_logits=False):
        x = x[:, 0]
        return x if pre_logits else self.head(x)


# timm's names for TNT modules and parameters (timm/models/tnt.py) -> the official names used here
_TIMM_NAMES = {
    "patch_pos": "outer_pos", "pixel_pos": "inner_pos", "pixel_embed": "patch_embed",
    "norm1_proj": "proj_norm1", "norm2_proj": "proj_norm2",
    "norm_in": "inner_norm1", "attn_in": "inner_attn", "norm_mlp_in": "inner_norm2", "mlp_in": "inner_mlp",
    "norm_out": "outer_norm1", "attn_out": "outer_attn", "norm_mlp": "outer_norm2", "mlp": "outer_mlp",
}

# the official `default_cfgs` (tnt_pytorch/tnt.py), which timm's match
_CFG = {"input_size": (3, 224, 224), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "interpolation": "bicubic",
        "crop_pct": 0.9}


@register_model(**_CFG)
def tnt_s_patch16_224(**kwargs):
    return TNT(**{"patch_size": 16, "outer_dim": 384, "inner_dim": 24, "depth": 12, "outer_heads": 6,
                  "inner_heads": 4, **kwargs})


@register_model(**_CFG)
def tnt_b_patch16_224(**kwargs):
    return TNT(**{"patch_size": 16, "outer_dim": 640, "inner_dim": 40, "depth": 12, "outer_heads": 10,
                  "inner_heads": 4, **kwargs})
