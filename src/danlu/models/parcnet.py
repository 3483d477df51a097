"""ParC-Net (Zhang, Hu and Wang, ECCV 2022; first released as EdgeFormer): a MobileViT-shaped network
whose transformer blocks are ParC-MetaFormer blocks (global circular convolutions + channel attention).

Layout (official `edgeformer.py` / `outer_frame_v1`): a 3x3 stride-2 stem, MobileNetV2 inverted
residuals for the first two stages, then three stages that each start with a stride-2 inverted
residual and continue with a ParC block: a local 3x3 + 1x1 projection to the global width, n
ParC-MetaFormer blocks, a 1x1 projection back and a 3x3 fusion with the block's input (concatenated
in ParC-Net-S, added in ParC-Net-XS). A 1x1 expansion, global pooling and a linear layer classify.
Activations are swish (SiLU). The ParC kernels are stored at the feature sizes of a 256x256 input
(32/16/8) and resized to the runtime size, so any input size works. The official ParC-Net state dicts
(hkzhang91/ParC-Net, cvnets `edgeformer`) load strictly through `ParCNet.checkpoint_filter_fn` and
give the official outputs.

The official code has no stochastic depth; `drop_path_rate` adds it as timm's MobileViT does: rates rise
linearly over the ten top-level blocks (the four inverted residuals of stages 1-2, then an inverted residual
and a ParC block per stage), a ParC block gives its rate to all its residual branches, and inverted
residuals use theirs where they have a residual.
"""
import math
import re
from functools import partial
from typing import Sequence

import torch
from torch import nn

from ._base import ModelBase
from .layers import DropPath, InvertedResidual, check_image, conv_bn_act, drop_path_rates, to_2tuple
from .layers.parc import ParC, parc_embedding_names, resize_axis
from .layers.weight_init import he_group_fan_out_init, init_weights, trunc_normal_init
from .registry import register_model


def feature_size(img_size, stride):
    """(h, w) of the map after log2(stride) stride-2 3x3 convolutions with padding 1: ceil(n / stride)."""
    return tuple(-(-n // stride) for n in to_2tuple(img_size))


_conv = partial(conv_bn_act, act_layer=nn.SiLU)  # cvnets' ConvLayer: conv (no bias), BatchNorm, swish
_inverted_residual = partial(InvertedResidual, act_layer=nn.SiLU)


def _conv_kernel_init(m):
    """The official meta kernels are nn.Conv2d weights: uniform(+-1/sqrt(taps)) keeps a full-length circular sum
    at unit scale, where std .02 would make the global branch nearly silent."""
    bound = 1 / math.sqrt(m.base_size)
    nn.init.uniform_(m.weight, -bound, bound)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation style gate: GAP -> 1x1 (C/16) -> BN -> hardswish -> 1x1 (C) -> BN -> hardsigmoid."""

    def __init__(self, dim, reduction=16):
        super().__init__()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(  # the official CA_layer's indices
            nn.Conv2d(dim, dim // reduction, 1, bias=False), nn.BatchNorm2d(dim // reduction), nn.Hardswish(),
            nn.Conv2d(dim // reduction, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.Hardsigmoid(),
        )

    def forward(self, x):
        return x * self.fc(self.gap(x))


class AxialEmbedding(nn.Module):
    """A learned embedding per channel and position along one axis, added to the input: (1, C, K, 1) along
    the height ('V') or (1, C, 1, K) along the width ('H'), resized to the runtime length like the ParC kernels
    (and frozen with them for export by `freeze_parc`)."""

    def __init__(self, channels, direction, base_size):
        super().__init__()
        self.dim = -2 if direction == "V" else -1
        self.pe = nn.Parameter(torch.empty(1, channels, *((base_size, 1) if direction == "V" else (1, base_size))))
        nn.init.trunc_normal_(self.pe, std=0.02)
        self.register_buffer("frozen_pe", None, persistent=False)

    def forward(self, x):
        n = x.shape[self.dim]
        if self.frozen_pe is None:
            return x + resize_axis(self.pe, n, self.dim)
        if n != self.frozen_pe.shape[self.dim]:
            raise ValueError(f"this embedding is frozen at length {self.frozen_pe.shape[self.dim]} by freeze() but got "
                             f"length {n}; call unfreeze() or freeze it at the new size")
        return x + self.frozen_pe

    @torch.no_grad()
    def freeze(self, size):
        """Fix the embedding at runtime size (h, w): an exported graph then holds a constant, not a resize."""
        self.frozen_pe = resize_axis(self.pe, size[0] if self.dim == -2 else size[1], self.dim).detach().clone()

    def unfreeze(self):
        self.frozen_pe = None


class ParCMetaFormerBlock(nn.Module):
    """Token mixing by ParC in two half-channel branches, then an FFN gated by channel attention.

    One half runs ParC-V then ParC-H, the other ParC-H then ParC-V, so after the block every position
    has seen the whole map along both axes. Each branch has its own pre-norm BatchNorm and residual; drop
    path drops the two token-mixing branches together and the FFN branch on its own. With `use_pe`, as in
    the official `gcc_ca_mf_block`, each branch adds an embedding along its first ParC's axis before its
    BatchNorm (`pos1`, `pos2`), and its second ParC adds its own before convolving.
    """

    def __init__(self, dim, ffn_dim, base_size, use_pe=False, bias=False, dropout=0.1, ffn_dropout=0.0, drop_path=0.0):
        super().__init__()
        half, (bh, bw) = dim // 2, to_2tuple(base_size)  # ParC-V kernels span the height, ParC-H the width
        self.pos1 = AxialEmbedding(half, "V", bh) if use_pe else nn.Identity()
        self.pos2 = AxialEmbedding(half, "H", bw) if use_pe else nn.Identity()
        self.norm1, self.norm2 = nn.BatchNorm2d(half), nn.BatchNorm2d(half)
        self.mixer1 = nn.Sequential(ParC(half, "V", bh, bias=bias, use_pe=False),
                                    ParC(half, "H", bw, bias=bias, use_pe=use_pe))
        self.mixer2 = nn.Sequential(ParC(half, "H", bw, bias=bias, use_pe=False),
                                    ParC(half, "V", bh, bias=bias, use_pe=use_pe))
        self.ffn = nn.Sequential(
            nn.BatchNorm2d(dim), nn.Conv2d(dim, ffn_dim, 1), nn.Hardswish(), nn.Dropout(ffn_dropout),
            nn.Conv2d(ffn_dim, dim, 1), nn.Dropout(dropout),
        )
        self.ca = ChannelAttention(dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        x1, x2 = self.mixer1(self.norm1(self.pos1(x1))), self.mixer2(self.norm2(self.pos2(x2)))
        x = x + self.drop_path(torch.cat([x1, x2], dim=1))
        return x + self.drop_path(self.ca(self.ffn(x)))


class ParCBlock(nn.Module):
    """MobileViT block with ParC-MetaFormer blocks for transformers (official `outer_frame_v1`).

    Local representation (3x3 grouped conv to `global_dim`, 1x1), `depth` ParC-MetaFormer blocks (the
    first with positional embeddings) and a BatchNorm, a grouped 1x1 back to `dim`, then a 3x3 fusion
    with the input: on their concatenation ('concat') or their sum ('add').
    """

    def __init__(self, dim, global_dim, ffn_dim, depth, base_size, fusion="concat", dropout=0.1, drop_path=0.0):
        super().__init__()
        if fusion not in ("concat", "add"):
            raise ValueError(f"ParC block fusion must be 'concat' or 'add', got {fusion!r}")
        groups = math.gcd(dim, global_dim)
        self.local_rep = nn.Sequential(_conv(dim, global_dim, 3, groups=groups),
                                       nn.Conv2d(global_dim, global_dim, 1, bias=False))
        self.global_rep = nn.Sequential(
            *[ParCMetaFormerBlock(global_dim, ffn_dim, base_size, use_pe=i == 0, dropout=dropout, drop_path=drop_path)
              for i in range(depth)],
            nn.BatchNorm2d(global_dim),
        )
        self.proj = _conv(global_dim, dim, 1, groups=groups)
        self.fusion = fusion
        self.fuse = _conv(2 * dim if fusion == "concat" else dim, dim, 3)

    def forward(self, x):
        y = self.proj(self.global_rep(self.local_rep(x)))
        return self.fuse(torch.cat([y, x], dim=1) if self.fusion == "concat" else x + y)


class ParCNet(ModelBase):
    """ParC-Net classifier.

    Args:
        dims: output channels of the five stages.
        global_dims, ffn_dims, depths: width, FFN width and number of ParC-MetaFormer blocks of stages 3-5.
        img_size: the training size (int or (h, w)); ParC kernels are stored at the feature sizes of stages
            3-5 for it (32/16/8 at the default 256, as the official meta kernels) and resized for other inputs.
        fusion: 'concat' (S) or 'add' (XS) in the ParC blocks.
        features_only, out_indices: see `ModelBase` (taps: the five stage outputs, strides 2, 4, 8, 16, 32).
        drop_path_rate: stochastic depth of the last ParC block (see the module docstring).
    """

    head_names = ("conv_head", "head")

    def __init__(self, dims: Sequence[int] = (32, 64, 96, 128, 160), global_dims: Sequence[int] = (192, 256, 320),
                 ffn_dims: Sequence[int] = (384, 512, 640), depths: Sequence[int] = (2, 4, 3), img_size: int | tuple = 256,
                 fusion: str = "concat", expand_ratio: int = 4, stem_dim: int = 16, in_chans: int = 3,
                 num_classes: int = 1000, drop_rate: float = 0.2, dropout: float = 0.1, features_only: bool = False,
                 out_indices: Sequence[int] | None = None, drop_path_rate: float = 0.0):
        super().__init__()
        self.in_chans, self.num_classes = in_chans, num_classes
        self.stem = _conv(in_chans, stem_dim, 3, stride=2)
        dpr = iter(drop_path_rates(drop_path_rate, 1 + 3 + 2 * 3))  # the top-level blocks, in order
        stages = [
            _inverted_residual(stem_dim, dims[0], 1, expand_ratio, next(dpr)),
            nn.Sequential(*[_inverted_residual(dims[0] if i == 0 else dims[1], dims[1], 2 if i == 0 else 1, expand_ratio,
                                             next(dpr)) for i in range(3)]),
        ]
        for i in range(3):
            stages.append(nn.Sequential(
                _inverted_residual(dims[i + 1], dims[i + 2], 2, expand_ratio, next(dpr)),
                ParCBlock(dims[i + 2], global_dims[i], ffn_dims[i], depths[i], feature_size(img_size, 8 << i), fusion, dropout,
                          next(dpr)),
            ))
        self.stages = nn.Sequential(*stages)
        self.num_features = min(4 * dims[-1], 960)
        self.conv_head = _conv(dims[-1], self.num_features, 1)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = self._classifier(num_classes)
        self._init_features([{"num_chs": dims[i], "reduction": 2 << i, "module": f"stages.{i}"} for i in range(len(dims))],
                            features_only, out_indices)
        self._init_weights()

    def _init_weights(self):
        init_weights(self, {nn.Conv2d: he_group_fan_out_init, nn.Linear: trunc_normal_init, ParC: _conv_kernel_init})

    def no_weight_decay(self):
        return parc_embedding_names(self)

    def checkpoint_filter_fn(self, state_dict: dict) -> dict:
        """Official ParC-Net keys mapped (`map_official_keys`)."""
        return map_official_keys(state_dict)

    def _taps(self, x):
        check_image(x, self.in_chans, model="ParC-Net")
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            yield x

    def _tap_final(self, x, complete):
        return self.conv_head(x) if complete else x

    def forward_head(self, x, pre_logits=False):
        x = self.head_drop(x.mean((2, 3)))
        return x if pre_logits else self.head(x)


# official (cvnets edgeformer) key pieces -> danlu's, applied in order to keys under an official top-level name
_OFFICIAL_TOP = ("conv_1.", "layer_", "conv_1x1_exp.", "classifier.")
_OFFICIAL_KEYS = [(re.compile(p), r) for p, r in (
    (r"^conv_1\.", "stem."),
    (r"^conv_1x1_exp\.", "conv_head."),
    (r"^classifier\.fc\.", "head."),
    (r"^layer_1\.0\.", "stages.0."),  # stage 1 is a single inverted residual here
    (r"^layer_(\d)\.", lambda m: f"stages.{int(m[1]) - 1}."),
    (r"\.block\.exp_1x1\.", ".conv.0."), (r"\.block\.conv_3x3\.", ".conv.1."),
    (r"\.block\.red_1x1\.block\.conv\.", ".conv.2."), (r"\.block\.red_1x1\.block\.norm\.", ".conv.3."),
    (r"\.dim_adaptive\.1\.block\.conv\.", ".local_rep.1."),  # a bare 1x1 conv (no norm, no activation)
    (r"\.dim_adaptive\.", ".local_rep."), (r"\.spatial_global_rep\.", ".global_rep."),
    (r"\.channel_adaptive\.", ".proj."), (r"\.local_global_fusion\.", ".fuse."),
    (r"\.block\.conv\.", ".0."), (r"\.block\.norm\.", ".1."),  # cvnets ConvLayer: conv, norm, act
    (r"\.pre_Norm_([12])\.", r".norm\1."),
    # the official 'H' kernels run along the height (danlu's 'V'): branch 1 is 1_H then 2_W, branch 2 1_W then 2_H
    (r"\.meta_kernel_1_H$", ".mixer1.0.weight"), (r"\.meta_kernel_2_W$", ".mixer1.1.weight"),
    (r"\.meta_kernel_1_W$", ".mixer2.0.weight"), (r"\.meta_kernel_2_H$", ".mixer2.1.weight"),
    (r"\.meta_pe_1_H$", ".pos1.pe"), (r"\.meta_pe_2_W$", ".mixer1.1.pe"),
    (r"\.meta_pe_1_W$", ".pos2.pe"), (r"\.meta_pe_2_H$", ".mixer2.1.pe"),
)]


def map_official_keys(state_dict: dict) -> dict:
    """Official ParC-Net (cvnets `edgeformer`) keys -> danlu's; other keys pass through. The official model
    registers its last stage's first block twice (`residual`, from `self.residual = ...`): that copy is dropped."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("residual."):
            continue
        if key.startswith(_OFFICIAL_TOP):
            for pattern, name in _OFFICIAL_KEYS:
                key = pattern.sub(name, key)
        out[key] = value
    return out


# official evaluation (data/datasets/classification/imagenet.py): bilinear resize of the short side to size + 32,
# centre crop of size: 256 / 288 at the 256 training size
_CFG = {"input_size": (3, 256, 256), "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "interpolation": "bilinear",
        "crop_pct": 256 / 288}


@register_model(**_CFG)
def parcnet_s(**kwargs):
    """ParC-Net-S (EdgeFormer-S): 5.0M parameters, 78.6% ImageNet top-1 at 256x256 in the paper."""
    return ParCNet(**kwargs)


@register_model(**_CFG)
def parcnet_xs(**kwargs):
    """ParC-Net-XS (official 'scale_xs' config; no released weights or accuracy)."""
    kwargs.setdefault("fusion", "add")
    return ParCNet(global_dims=(96, 128, 160), ffn_dims=(192, 256, 320), depths=(2, 3, 2), **kwargs)
