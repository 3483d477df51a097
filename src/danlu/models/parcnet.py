"""ParC-Net (Zhang, Hu and Wang, ECCV 2022; first released as EdgeFormer): a MobileViT-shaped network
whose transformer blocks are ParC-MetaFormer blocks (global circular convolutions + channel attention).

Layout (official `edgeformer.py` / `outer_frame_v1`): a 3x3 stride-2 stem, MobileNetV2 inverted
residuals for the first two stages, then three stages that each start with a stride-2 inverted
residual and continue with a ParC block: a local 3x3 + 1x1 projection to the global width, n
ParC-MetaFormer blocks, a 1x1 projection back and a 3x3 fusion with the block's input (concatenated
in ParC-Net-S, added in ParC-Net-XS). A 1x1 expansion, global pooling and a linear layer classify.
Activations are swish (SiLU). The ParC kernels are stored at the feature sizes of a 256x256 input
(32/16/8) and resized to the runtime size, so any input size works.

One deliberate difference from the official code: the positional embedding of the first ParC of a
branch is added by the ParC layer itself, i.e. after the branch's pre-norm BatchNorm instead of
before it (the official `x + pe` then BN). In eval mode the two differ only by the BatchNorm's
per-channel scale of the embedding, and no official ParC-Net checkpoint is mapped here.

The official code has no stochastic depth; `drop_path_rate` adds it as timm's MobileViT does: rates rise
linearly over the ten top-level blocks (the four inverted residuals of stages 1-2, then an inverted residual
and a ParC block per stage), a ParC block gives its rate to all its residual branches, and inverted
residuals use theirs where they have a residual.
"""
import math

import torch
from torch import nn

from .layers import DropPath, check_image, drop_path_rates, to_2tuple
from .layers.parc import ParC, parc_embedding_names
from .registry import register_model


def feature_size(img_size, stride):
    """(h, w) of the map after log2(stride) stride-2 3x3 convolutions with padding 1: ceil(n / stride)."""
    return tuple(-(-n // stride) for n in to_2tuple(img_size))


def conv_bn_act(cin, cout, kernel_size=3, stride=1, groups=1, act=True):
    """Conv (no bias) + BatchNorm (+ SiLU): cvnets' ConvLayer."""
    layers = [nn.Conv2d(cin, cout, kernel_size, stride, kernel_size // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (stride), 1x1 linear projection, residual when shapes allow."""

    def __init__(self, cin, cout, stride=1, expand_ratio=4, drop_path=0.0):
        super().__init__()
        hidden = cin * expand_ratio
        self.conv = nn.Sequential(
            *([conv_bn_act(cin, hidden, 1)] if expand_ratio != 1 else []),
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
            conv_bn_act(hidden, cout, 1, act=False),
        )
        self.use_res = stride == 1 and cin == cout
        if self.use_res:
            self.drop_path = DropPath(drop_path)

    def forward(self, x):
        return x + self.drop_path(self.conv(x)) if self.use_res else self.conv(x)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation style gate: GAP -> 1x1 (C/16) -> BN -> hardswish -> 1x1 (C) -> BN -> hardsigmoid."""

    def __init__(self, dim, reduction=16):
        super().__init__()
        self.fc = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(dim, dim // reduction, 1, bias=False), nn.BatchNorm2d(dim // reduction), nn.Hardswish(),
            nn.Conv2d(dim // reduction, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.Hardsigmoid(),
        )

    def forward(self, x):
        return x * self.fc(x)


class ParCMetaFormerBlock(nn.Module):
    """Token mixing by ParC in two half-channel branches, then an FFN gated by channel attention.

    One half runs ParC-V then ParC-H, the other ParC-H then ParC-V, so after the block every position
    has seen the whole map along both axes. Each branch has its own pre-norm BatchNorm and residual; drop
    path drops the two token-mixing branches together and the FFN branch on its own.
    """

    def __init__(self, dim, ffn_dim, base_size, use_pe=False, bias=False, dropout=0.1, ffn_dropout=0.0, drop_path=0.0):
        super().__init__()
        half, (bh, bw) = dim // 2, to_2tuple(base_size)  # ParC-V kernels span the height, ParC-H the width
        self.norm1, self.norm2 = nn.BatchNorm2d(half), nn.BatchNorm2d(half)
        self.mixer1 = nn.Sequential(ParC(half, "V", bh, bias=bias, use_pe=use_pe),
                                    ParC(half, "H", bw, bias=bias, use_pe=use_pe))
        self.mixer2 = nn.Sequential(ParC(half, "H", bw, bias=bias, use_pe=use_pe),
                                    ParC(half, "V", bh, bias=bias, use_pe=use_pe))
        self.ffn = nn.Sequential(
            nn.BatchNorm2d(dim), nn.Conv2d(dim, ffn_dim, 1), nn.Hardswish(), nn.Dropout(ffn_dropout),
            nn.Conv2d(ffn_dim, dim, 1), nn.Dropout(dropout),
        )
        self.ca = ChannelAttention(dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        x = x + self.drop_path(torch.cat([self.mixer1(self.norm1(x1)), self.mixer2(self.norm2(x2))], dim=1))
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
        self.local_rep = nn.Sequential(conv_bn_act(dim, global_dim, 3, groups=groups),
                                       nn.Conv2d(global_dim, global_dim, 1, bias=False))
        self.global_rep = nn.Sequential(
            *[ParCMetaFormerBlock(global_dim, ffn_dim, base_size, use_pe=i == 0, dropout=dropout, drop_path=drop_path)
              for i in range(depth)],
            nn.BatchNorm2d(global_dim),
        )
        self.proj = conv_bn_act(global_dim, dim, 1, groups=groups)
        self.fusion = fusion
        self.fuse = conv_bn_act(2 * dim if fusion == "concat" else dim, dim, 3)

    def forward(self, x):
        y = self.proj(self.global_rep(self.local_rep(x)))
        return self.fuse(torch.cat([y, x], dim=1) if self.fusion == "concat" else x + y)


class ParCNet(nn.Module):
    """ParC-Net classifier.

    Args:
        dims: output channels of the five stages.
        global_dims, ffn_dims, depths: width, FFN width and number of ParC-MetaFormer blocks of stages 3-5.
        img_size: the training size (int or (h, w)); ParC kernels are stored at the feature sizes of stages
            3-5 for it (32/16/8 at the default 256, as the official meta kernels) and resized for other inputs.
        fusion: 'concat' (S) or 'add' (XS) in the ParC blocks.
        features_only: return the five stage outputs (strides 2, 4, 8, 16, 32) instead of logits.
        drop_path_rate: stochastic depth of the last ParC block (see the module docstring).
    """

    def __init__(self, dims=(32, 64, 96, 128, 160), global_dims=(192, 256, 320), ffn_dims=(384, 512, 640),
                 depths=(2, 4, 3), img_size=256, fusion="concat", expand_ratio=4, stem_dim=16,
                 in_chans=3, num_classes=1000, drop_rate=0.2, dropout=0.1, features_only=False, out_indices=(0, 1, 2, 3, 4),
                 drop_path_rate=0.0):
        super().__init__()
        self.in_chans, self.num_classes, self.features_only = in_chans, num_classes, features_only
        self.stem = conv_bn_act(in_chans, stem_dim, 3, stride=2)
        dpr = iter(drop_path_rates(drop_path_rate, 1 + 3 + 2 * 3))  # the top-level blocks, in order
        stages = [
            InvertedResidual(stem_dim, dims[0], 1, expand_ratio, next(dpr)),
            nn.Sequential(*[InvertedResidual(dims[0] if i == 0 else dims[1], dims[1], 2 if i == 0 else 1, expand_ratio,
                                             next(dpr)) for i in range(3)]),
        ]
        for i in range(3):
            stages.append(nn.Sequential(
                InvertedResidual(dims[i + 1], dims[i + 2], 2, expand_ratio, next(dpr)),
                ParCBlock(dims[i + 2], global_dims[i], ffn_dims[i], depths[i], feature_size(img_size, 8 << i), fusion, dropout,
                          next(dpr)),
            ))
        self.stages = nn.Sequential(*stages)
        reductions = (2, 4, 8, 16, 32)
        self.out_indices = tuple(out_indices)
        self.feature_info = [{"num_chs": dims[i], "reduction": reductions[i], "module": f"stages.{i}"} for i in self.out_indices]
        if not features_only:  # a backbone for detection/segmentation has no classifier parameters
            self.num_features = min(4 * dims[-1], 960)
            self.conv_head = conv_bn_act(dims[-1], self.num_features, 1)
            self.head_drop = nn.Dropout(drop_rate)
            self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # He init on fan-out per group (as MobileNet/EfficientNet do): plain fan_out counts every output
                # channel of a depthwise conv and shrinks activations ~channels-fold per block at initialisation
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, std=math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, ParC):
                # the official meta kernels are nn.Conv2d weights: uniform(+-1/sqrt(taps)) keeps a full-length
                # circular sum at unit scale, where std .02 would make the global branch nearly silent
                bound = 1 / math.sqrt(m.base_size)
                nn.init.uniform_(m.weight, -bound, bound)

    def no_weight_decay(self):
        return parc_embedding_names(self)

    def forward_features(self, x):
        check_image(x, self.in_chans, model="ParC-Net")
        x = self.stages(self.stem(x))
        return x if self.features_only else self.conv_head(x)

    def forward_head(self, x, pre_logits=False):
        x = self.head_drop(x.mean((2, 3)))
        return x if pre_logits else self.head(x)

    def forward(self, x):
        if self.features_only:
            check_image(x, self.in_chans, model="ParC-Net")
            x, out = self.stem(x), []
            for i, stage in enumerate(self.stages):
                x = stage(x)
                if i in self.out_indices:
                    out.append(x)
            return out
        return self.forward_head(self.forward_features(x))


# official evaluation (data/datasets/classification/imagenet.py): bilinear resize of the short side to size + 32,
# centre crop of size: 256 / 288 at the 256 training size
_CFG = dict(input_size=(3, 256, 256), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear",
            crop_pct=256 / 288)


@register_model(**_CFG)
def parcnet_s(**kwargs):
    """ParC-Net-S (EdgeFormer-S): 5.0M parameters, 78.6% ImageNet top-1 at 256x256 in the paper."""
    return ParCNet(**kwargs)


@register_model(**_CFG)
def parcnet_xs(**kwargs):
    """ParC-Net-XS (official 'scale_xs' config; no released weights or accuracy)."""
    kwargs.setdefault("fusion", "add")
    return ParCNet(global_dims=(96, 128, 160), ffn_dims=(192, 256, 320), depths=(2, 3, 2), **kwargs)
