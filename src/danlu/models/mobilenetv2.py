"""MobileNetV2 (Sandler et al. 2018, torchvision layout) and ParC-MobileNetV2 (ParC-Net, ECCV 2022).

ParC-MobileNetV2 replaces the 3x3 depthwise convolution of some inverted residual blocks by a
depthwise ParC pair on the two halves of the expanded channels: the last half of the 64-channel
stage, the last third of the 96- and 160-channel stages. As in the official code, only the first
ParC block of a stage has positional embeddings. torchvision and official ParC-MobileNetV2 state
dicts (`features.N.gcc_H` ...) load with `load_pretrained`.
"""
from functools import partial
from typing import Sequence

from torch import nn

from ._base import ModelBase
from .layers import DropPath, InvertedResidual, ParC, check_image, conv_bn_act, drop_path_rates, to_2tuple
from .layers.parc import ParCConvNetMixin, parc_split
from .layers.weight_init import init_weights, kaiming_fan_out_init, normal_init
from .registry import register_model

# t (expansion), c (channels), n (blocks), s (stride of the first block), first ParC block in the stage
SETTINGS = [(1, 16, 1, 1, 1), (6, 24, 2, 2, 2), (6, 32, 3, 2, 3), (6, 64, 4, 2, 2), (6, 96, 3, 1, 2),
            (6, 160, 3, 2, 2), (6, 320, 1, 1, 1)]


_RELU6 = partial(nn.ReLU6, inplace=True)


class ParCInvertedResidual(nn.Module):
    """1x1 expand -> depthwise ParC-V | ParC-H on the channel halves -> BN -> ReLU6 -> 1x1 linear projection (+ input)."""

    def __init__(self, inp, oup, expand_ratio, parc_size, use_pe, parc_impl="spatial", drop_path=0.0):
        super().__init__()
        hidden, (h, w) = inp * expand_ratio, parc_size
        self.use_res = inp == oup
        self.pw_expand = conv_bn_act(inp, hidden, 1, act_layer=_RELU6)
        self.parc_v = ParC(hidden // 2, "V", h, use_pe=use_pe, impl=parc_impl)
        self.parc_h = ParC(hidden // 2, "H", w, use_pe=use_pe, impl=parc_impl)
        self.bn = nn.BatchNorm2d(hidden)
        self.act = nn.ReLU6(inplace=True)
        self.pw_linear = conv_bn_act(hidden, oup, 1, act_layer=None)
        if self.use_res:
            self.drop_path = DropPath(drop_path)

    def forward(self, x):
        y = self.pw_linear(self.act(self.bn(parc_split(self.pw_expand(x), self.parc_v, self.parc_h))))
        return x + self.drop_path(y) if self.use_res else y


class MobileNetV2(ParCConvNetMixin, ModelBase):
    """MobileNetV2 classifier, or with `features_only=True` a backbone returning maps at strides 2, 4, 8, 16, 32.

    Args:
        parc: use ParC blocks where the ParC-MobileNetV2 setting places them; kernels are stored for the
            feature sizes of `img_size`.
        parc_impl: 'spatial', 'fft' or 'auto' for every ParC layer.
        drop_path_rate: stochastic depth on the residual blocks, `rate * i / blocks` for block i (as timm's
            EfficientNet builder, which counts every inverted residual block).
        features_only, out_indices: see `ModelBase` (taps: the maps before each stride-2 stage and the last one).
    """

    classifier_name = "classifier"

    def __init__(self, in_chans: int = 3, num_classes: int = 1000, img_size: int | tuple = 224, drop_rate: float = 0.2,
                 parc: bool = False, parc_impl: str = "spatial", features_only: bool = False, drop_path_rate: float = 0.0,
                 out_indices: Sequence[int] | None = None):
        super().__init__()
        self.in_chans, self.num_classes, self.drop_rate = in_chans, num_classes, drop_rate
        img_h, img_w = to_2tuple(img_size)
        features, inp, reduction, taps = [conv_bn_act(in_chans, 32, 3, 2, act_layer=_RELU6)], 32, 2, []
        dpr = iter(drop_path_rates(drop_path_rate, sum(n for _, _, n, _, _ in SETTINGS), endpoint=False))
        for t, c, n, s, first_parc in SETTINGS:
            if s == 2:  # the map before a stride-2 stage is a multi-scale output
                taps.append((len(features) - 1, inp, reduction))
            reduction *= s
            for i in range(n):
                if parc and i >= first_parc:
                    size = (img_h // reduction, img_w // reduction)
                    features.append(ParCInvertedResidual(inp, c, t, size, i == first_parc, parc_impl, next(dpr)))
                else:
                    features.append(InvertedResidual(inp, c, s if i == 0 else 1, t, next(dpr), _RELU6))
                inp = c
        taps.append((len(features) - 1, inp, reduction))
        self.tap_layers = tuple(i for i, _, _ in taps)
        self.num_features = 1280
        features.append(conv_bn_act(inp, self.num_features, 1, act_layer=_RELU6))  # the 1x1 head conv, after the taps
        self.features = nn.Sequential(*features)
        self.classifier = self._classifier(num_classes)
        self.head_names = ("classifier", f"features.{len(features) - 1}")  # a backbone stops at the last tap
        self._init_features([{"num_chs": c, "reduction": r, "module": f"features.{i}"} for i, c, r in taps],
                            features_only, out_indices)
        self._init_weights()

    def _init_weights(self):  # torchvision's init; the official ParC kernels are convs, so they get it too
        init_weights(self, {(nn.Conv2d, ParC): kaiming_fan_out_init, nn.Linear: normal_init(0.01)})

    def _classifier(self, num_classes):
        if num_classes <= 0:
            return nn.Identity()
        return nn.Sequential(nn.Dropout(self.drop_rate), nn.Linear(self.num_features, num_classes))

    def _taps(self, x):
        """The maps at strides 2, 4, 8, 16, 32: the outputs of `self.tap_layers`."""
        check_image(x, self.in_chans, 1, type(self).__name__)
        for i, layer in enumerate(self.features[:self.tap_layers[-1] + 1]):
            x = layer(x)
            if i in self.tap_layers:
                yield x

    def _tap_final(self, x, complete):
        return self.features[-1](x) if complete else x  # the 1x1 head conv follows the last tap

    def forward_head(self, x, pre_logits=False):
        x = x.mean((-2, -1))
        return x if pre_logits else self.classifier(x)


_CFG = {"interpolation": "bicubic", "crop_pct": 0.875}  # timm's EfficientNet-family _cfg (the ParC code defines none)


@register_model(**_CFG)
def mobilenetv2(**kwargs):
    """MobileNetV2 1.0 (3.50M parameters), torchvision layout and keys."""
    return MobileNetV2(**kwargs)


@register_model(**_CFG)
def parc_mobilenetv2(**kwargs):
    """ParC-MobileNetV2 (3.53M): ParC blocks in the 64-, 96- and 160-channel stages."""
    return MobileNetV2(parc=True, **kwargs)
