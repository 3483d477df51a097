"""PyramidTNT (Han et al. 2022, arXiv 2201.00978): Transformer-in-Transformer in a four-stage pyramid.

A convolutional stem cuts the image into *sentences* (tokens of the H/8 map) each made of 4x4 *words*
(pixels of the H/2 map). Every stage runs TNT blocks (an inner transformer over each sentence's words
feeding an outer transformer over the sentences, with spatial-reduction attention and a learned
relative-position bias), then words and sentences are both merged 2x2, down to H/64.

Parameter names, shapes, defaults and initialisation are those of the official code
(huawei-noah/Efficient-AI-Backbones, tnt_pytorch/pyramid_tnt.py), so its checkpoints load as they are.
Beyond it, and inert at the official sizes (outputs there are unchanged): any input size works (inputs
are zero-padded to a multiple of 8, `outer_pos` and each stage's `relative_pos` are interpolated when
the token grid differs from the one the model was built for, border windows of the key pooling are
kept), and `features_only=True` gives the four stage maps for detection. The unused SE option of the
official code is left out (no released variant enables it).
"""
import math
from functools import partial
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._base import ModelBase, tokens_as
from .layers import (
    DropPath,
    Mlp,
    SpatialReductionAttention,
    check_image,
    conv_bn_act,
    drop_path_rates,
    reduced_grid,
    resample_abs_pos_embed,
    resample_checkpoint_pos_embed,
    resample_rel_pos,
    square_grid,
    to_2tuple,
)
from .layers.weight_init import he_group_fan_out_init, init_weights, trunc_normal_init
from .registry import register_model

NUM_WORDS = 16  # 4x4 words per sentence, at every stage
WORD_GRID = (4, 4)


_RELU = partial(nn.ReLU, inplace=True)


class Stem(nn.Module):
    """Overlapping conv stem: words from the H/2 map (inner_dim channels), sentences from the H/8 map."""

    def __init__(self, in_chans, outer_dim, inner_dim):
        super().__init__()
        c = inner_dim
        self.common_conv = conv_bn_act(in_chans, 2 * c, 3, 2, bias=True, act_layer=_RELU)
        self.inner_convs = conv_bn_act(2 * c, c, 3, 1, bias=True)
        self.outer_convs = nn.Sequential(*conv_bn_act(2 * c, 4 * c, 3, 2, bias=True, act_layer=_RELU),
                                         *conv_bn_act(4 * c, 8 * c, 3, 2, bias=True, act_layer=_RELU),
                                         *conv_bn_act(8 * c, outer_dim, 3, 1, bias=True))
        self.unfold = nn.Unfold(kernel_size=4, stride=4)

    def forward(self, x):
        """x: (B, C, H, W) with H, W multiples of 8 -> words (B*N, 16, c), sentences (B, N, D), grid (H/8, W/8)."""
        B, _, H, W = x.shape
        grid = (H // 8, W // 8)
        x = self.common_conv(x)
        inner = self.unfold(self.inner_convs(x)).transpose(1, 2)  # (B, N, c*16), channel-major
        inner = inner.reshape(B * grid[0] * grid[1], -1, NUM_WORDS).transpose(1, 2)
        outer = self.outer_convs(x).flatten(2).transpose(1, 2)
        return inner, outer, grid


class WordAggregation(nn.Module):
    """Merge the words of each 2x2 group of sentences (an 8x8 word map) into 4x4 words by a stride-2 conv."""

    def __init__(self, dim_in, dim_out, stride=2):
        super().__init__()
        self.dim_out = dim_out
        self.norm = nn.LayerNorm(dim_in)
        self.conv = nn.Sequential(nn.Conv2d(dim_in, dim_out, 2 * stride - 1, stride, stride - 1))

    def forward(self, x, grid):
        H, W = grid
        C = x.shape[-1]
        x = self.norm(x).reshape(-1, H, W, *WORD_GRID, C)
        if H % 2 or W % 2:  # odd sentence grids (e.g. 1333x800 detection inputs) get an empty row/column
            x = F.pad(x.permute(0, 3, 4, 5, 1, 2), (0, W % 2, 0, H % 2)).permute(0, 4, 5, 1, 2, 3)
            H, W = H + H % 2, W + W % 2
        # (B, H/2, 2, W/2, 2, 4, 4, C) -> one 8x8 word map per 2x2 sentence group
        x = x.reshape(-1, H // 2, 2, W // 2, 2, *WORD_GRID, C).permute(0, 1, 3, 2, 5, 4, 6, 7)
        x = x.reshape(-1, 2 * WORD_GRID[0], 2 * WORD_GRID[1], C).permute(0, 3, 1, 2)
        return self.conv(x).reshape(-1, self.dim_out, NUM_WORDS).transpose(1, 2)


class SentenceAggregation(nn.Module):
    """Halve the sentence grid with a stride-2 conv (ceil for odd grids)."""

    def __init__(self, dim_in, dim_out, stride=2):
        super().__init__()
        self.norm = nn.LayerNorm(dim_in)
        self.conv = nn.Sequential(nn.Conv2d(dim_in, dim_out, 2 * stride - 1, stride, stride - 1))

    def forward(self, x, grid):
        B, _, C = x.shape
        x = self.conv(self.norm(x).transpose(1, 2).reshape(B, C, *grid))
        return x.flatten(2).transpose(1, 2), tuple(x.shape[-2:])


class Block(nn.Module):
    """A TNT block: optional inner (word) transformer whose output is projected into its sentence, then
    the outer (sentence) transformer with spatial-reduction attention and the stage's relative bias.

    `inner_dim <= 0` gives an outer-only block. The word norms act on all 16 words of a sentence jointly.
    """

    def __init__(self, outer_dim, inner_dim, outer_head, inner_head, mlp_ratio=4.0, qkv_bias=False, drop=0.0,
                 attn_drop=0.0, drop_path=0.0, sr_ratio=1):
        super().__init__()
        self.has_inner = inner_dim > 0
        if self.has_inner:
            words = NUM_WORDS * inner_dim
            self.inner_norm1 = nn.LayerNorm(words)
            self.inner_attn = SpatialReductionAttention(inner_dim, inner_head, qkv_bias, attn_drop, drop)
            self.inner_norm2 = nn.LayerNorm(words)
            self.inner_mlp = Mlp(inner_dim, int(inner_dim * mlp_ratio), inner_dim, drop=drop)
            self.proj_norm1 = nn.LayerNorm(words)
            self.proj = nn.Linear(words, outer_dim, bias=False)
            self.proj_norm2 = nn.LayerNorm(outer_dim)
        self.outer_norm1 = nn.LayerNorm(outer_dim)
        self.outer_attn = SpatialReductionAttention(outer_dim, outer_head, qkv_bias, attn_drop, drop, sr_ratio)
        self.drop_path = DropPath(drop_path)
        self.outer_norm2 = nn.LayerNorm(outer_dim)
        self.outer_mlp = Mlp(outer_dim, int(outer_dim * mlp_ratio), outer_dim, drop=drop)

    def forward(self, inner, outer, grid, relative_pos):
        B, N, _ = outer.shape
        if self.has_inner:
            inner = inner + self.drop_path(self.inner_attn(
                self.inner_norm1(inner.reshape(B, N, -1)).reshape(B * N, NUM_WORDS, -1), WORD_GRID))
            inner = inner + self.drop_path(self.inner_mlp(
                self.inner_norm2(inner.reshape(B, N, -1)).reshape(B * N, NUM_WORDS, -1)))
            outer = outer + self.proj_norm2(self.proj(self.proj_norm1(inner.reshape(B, N, -1))))
        outer = outer + self.drop_path(self.outer_attn(self.outer_norm1(outer), grid, relative_pos))
        outer = outer + self.drop_path(self.outer_mlp(self.outer_norm2(outer)))
        return inner, outer


class Stage(nn.Module):
    """Blocks at one resolution sharing one learned relative-position bias (heads, queries, pooled keys).

    Only the first block (and the second, in stages deeper than 6) has a word branch, as in the paper.
    The bias is built for the token grid `grid`; other grids get an interpolated copy.
    """

    def __init__(self, depth, outer_dim, inner_dim, outer_head, inner_head, grid, sr_ratio=1, mlp_ratio=4.0,
                 qkv_bias=False, drop=0.0, attn_drop=0.0, drop_path=None):
        super().__init__()
        drop_path = drop_path or [0.0] * depth
        self.grid, self.sr_ratio = tuple(grid), sr_ratio
        self.key_grid = reduced_grid(self.grid, sr_ratio)
        self.blocks = nn.ModuleList([
            Block(outer_dim, inner_dim if j == 0 or (j == 1 and depth > 6) else -1, outer_head, inner_head,
                  mlp_ratio, qkv_bias, drop, attn_drop, drop_path[j], sr_ratio) for j in range(depth)])
        queries, keys = math.prod(self.grid), math.prod(self.key_grid)
        self.relative_pos = nn.Parameter(torch.randn(1, outer_head, queries, keys))  # official: N(0, 1)

    def forward(self, inner, outer, grid):
        relative_pos = resample_rel_pos(self.relative_pos, self.grid, self.key_grid, grid,
                                        reduced_grid(grid, self.sr_ratio))
        for block in self.blocks:
            inner, outer = block(inner, outer, grid, relative_pos)
        return inner, outer


class PyramidTNT(ModelBase):
    """PyramidTNT classifier (global average pooling of the last stage), or with `features_only=True` a
    backbone whose forward returns the four stages' sentence maps (B, C, H, W) at strides 8, 16, 32, 64
    (`out_indices` picks some, see `ModelBase`).
    """

    output_fmts = ("NCHW", "NLC")

    def __init__(self, img_size: int | tuple = 256, in_chans: int = 3, num_classes: int = 1000,
                 depths: Sequence[int] = (2, 8, 4, 2), outer_dims: Sequence[int] = (128, 256, 512, 512),
                 inner_dims: Sequence[int] = (8, 16, 32, 32), outer_heads: Sequence[int] = (4, 8, 16, 16),
                 inner_heads: Sequence[int] = (2, 4, 8, 8), sr_ratios: Sequence[int] = (4, 2, 1, 1), mlp_ratio: float = 4.0,
                 qkv_bias: bool = False, drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 features_only: bool = False, out_indices: Sequence[int] | None = None):
        super().__init__()
        self.in_chans, self.num_classes = in_chans, num_classes
        self.num_features = outer_dims[-1]
        self.grid = tuple(-(-n // 8) for n in to_2tuple(img_size))  # sentence grid the position terms are built for
        grids = [self.grid]
        for _ in depths[1:]:
            grids.append(tuple(-(-n // 2) for n in grids[-1]))

        self.patch_embed = Stem(in_chans, outer_dims[0], inner_dims[0])
        self.outer_pos = nn.Parameter(torch.zeros(1, math.prod(self.grid), outer_dims[0]))
        self.inner_pos = nn.Parameter(torch.zeros(1, NUM_WORDS, inner_dims[0]))
        self.pos_drop = nn.Dropout(drop_rate)
        self.word_merges = nn.ModuleList([WordAggregation(inner_dims[i], inner_dims[i + 1])
                                          for i in range(len(depths) - 1)])
        self.sentence_merges = nn.ModuleList([SentenceAggregation(outer_dims[i], outer_dims[i + 1])
                                              for i in range(len(depths) - 1)])
        dpr = drop_path_rates(drop_path_rate, sum(depths))
        self.stages = nn.ModuleList([
            Stage(depths[i], outer_dims[i], inner_dims[i], outer_heads[i], inner_heads[i], grids[i], sr_ratios[i],
                  mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[sum(depths[:i]):sum(depths[:i + 1])])
            for i in range(len(depths))])
        self.norm = nn.LayerNorm(outer_dims[-1])
        self.head = self._classifier(num_classes)
        self._init_features([{"num_chs": outer_dims[i], "reduction": 8 * 2 ** i, "module": f"stages.{i}"}
                             for i in range(len(depths))], features_only, out_indices)
        self.num_lr_layers = sum(depths) + 1  # layer-wise lr decay: stem 0, blocks 1..sum(depths), head last
        self._init_weights()

    def _init_weights(self):
        nn.init.trunc_normal_(self.outer_pos, std=0.02)
        nn.init.trunc_normal_(self.inner_pos, std=0.02)
        init_weights(self, {nn.Linear: trunc_normal_init, nn.Conv2d: he_group_fan_out_init})

    def no_weight_decay(self):
        return {"outer_pos", "inner_pos"}  # official: relative_pos is decayed

    def layer_id(self, name: str) -> int:
        """The layer of parameter `name` for layer-wise lr decay, grouped as timm groups pyramid models: the stem
        and position embeddings 0, the k-th block of the network k (from 1; a stage's merges and relative_pos go
        with its first block, the final norm with the last block), the head `num_lr_layers`."""
        part = name.split(".")
        if part[0] in ("stages", "word_merges", "sentence_merges"):
            stage = int(part[1]) + (part[0] != "stages")  # merge i feeds stage i + 1
            first = sum(len(s.blocks) for s in self.stages[:stage]) + 1
            return first + int(part[3]) if part[0] == "stages" and part[2] == "blocks" else first
        if part[0] == "norm":
            return self.num_lr_layers - 1
        return 0 if part[0] in ("patch_embed", "outer_pos", "inner_pos") else self.num_lr_layers

    def checkpoint_filter_fn(self, state_dict):
        """Official weights load as they are; position terms trained on another (square) grid are
        interpolated to this model's grids."""
        sd = resample_checkpoint_pos_embed(dict(state_dict), "outer_pos", self.outer_pos, self.grid)
        for i, stage in enumerate(self.stages):
            key = f"stages.{i}.relative_pos"
            bias, own = sd.get(key), stage.relative_pos.shape
            if bias is None or bias.shape == own or bias.shape[:2] != own[:2]:
                continue
            queries, keys = square_grid(bias.shape[2]), square_grid(bias.shape[3])
            if queries and keys:
                sd[key] = resample_rel_pos(bias, queries, keys, stage.grid, stage.key_grid)
        return sd

    def _taps(self, x):
        """Yield each stage's sentence tokens (B, H*W, C) and their grid (H, W)."""
        check_image(x, self.in_chans, 1, type(self).__name__)
        H, W = x.shape[-2:]
        if H % 8 or W % 8:  # the stem's strided convs round up but its word unfold rounds down: pad, not crop
            x = F.pad(x, (0, -W % 8, 0, -H % 8))
        inner, outer, grid = self.patch_embed(x)
        inner = inner + self.inner_pos
        outer = outer + self.pos_drop(resample_abs_pos_embed(self.outer_pos, grid, self.grid))  # official: drop on the pos
        for i, stage in enumerate(self.stages):
            if i:
                inner = self.word_merges[i - 1](inner, grid)
                outer, grid = self.sentence_merges[i - 1](outer, grid)
            inner, outer = stage(inner, outer, grid)
            yield outer, grid

    def _tap_output(self, i, state, norm, output_fmt):
        """Stage i's sentence map: (B, C, H, W) or (B, H*W, C); the final norm applies to the last stage only."""
        t, grid = state
        if norm and i == self.num_taps - 1:
            t = self.norm(t)
        return tokens_as(t, grid, output_fmt)

    def _tap_final(self, state, complete):
        return self.norm(state[0]) if complete else state[0]

    def forward_head(self, x, pre_logits=False):
        x = x.mean(dim=1)
        return x if pre_logits else self.head(x)


def _ptnt(dim, inner_dim, depths, outer_heads, inner_heads, **kwargs):
    scale = (1, 2, 4, 4)  # per-stage widths; the last stage is not widened again
    return PyramidTNT(depths=depths, outer_dims=[dim * s for s in scale], inner_dims=[inner_dim * s for s in scale],
                      outer_heads=outer_heads, inner_heads=inner_heads, **kwargs)


_CFG = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "interpolation": "bicubic", "crop_pct": 0.9}  # official _cfg


@register_model(input_size=(3, 192, 192), **_CFG)
def ptnt_ti_patch16_192(**kwargs):
    return _ptnt(80, 5, (2, 6, 3, 2), (2, 4, 8, 8), (1, 2, 4, 4), **{"img_size": 192, **kwargs})


@register_model(input_size=(3, 256, 256), **_CFG)
def ptnt_s_patch16_256(**kwargs):
    return _ptnt(128, 8, (2, 8, 4, 2), (4, 8, 16, 16), (2, 4, 8, 8), **{"img_size": 256, **kwargs})


@register_model(input_size=(3, 256, 256), **_CFG)
def ptnt_m_patch16_256(**kwargs):
    return _ptnt(192, 12, (2, 8, 6, 2), (4, 8, 16, 16), (2, 4, 8, 8), **{"img_size": 256, **kwargs})


@register_model(input_size=(3, 256, 256), **_CFG)
def ptnt_b_patch16_256(**kwargs):
    return _ptnt(256, 16, (2, 10, 6, 2), (4, 8, 16, 16), (2, 4, 8, 8), **{"img_size": 256, **kwargs})
