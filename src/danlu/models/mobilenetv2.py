"""MobileNetV2 (Sandler et al. 2018, torchvision layout) and ParC-MobileNetV2 (ParC-Net, ECCV 2022).

ParC-MobileNetV2 replaces the 3x3 depthwise convolution of some inverted residual blocks by a
depthwise ParC pair on the two halves of the expanded channels: the last half of the 64-channel
stage, the last third of the 96- and 160-channel stages. As in the official code, only the first
ParC block of a stage has positional embeddings. torchvision and official ParC-MobileNetV2 state
dicts (`features.N.gcc_H` ...) load with `load_pretrained`.
"""
from torch import nn

from .layers import DropPath, ParC, check_image, drop_path_rates, to_2tuple
from .layers.parc import map_official_parc_keys, parc_embedding_names, parc_split
from .registry import register_model

# t (expansion), c (channels), n (blocks), s (stride of the first block), first ParC block in the stage
SETTINGS = [(1, 16, 1, 1, 1), (6, 24, 2, 2, 2), (6, 32, 3, 2, 3), (6, 64, 4, 2, 2), (6, 96, 3, 1, 2),
            (6, 160, 3, 2, 2), (6, 320, 1, 1, 1)]


def conv_bn(inp, oup, kernel=1, stride=1, groups=1, act=True):
    """Conv (no bias) -> BN [-> ReLU6], keys `.0` / `.1` as torchvision's Conv2dNormActivation."""
    layers = [nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(oup)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """[1x1 expand] -> 3x3 depthwise -> 1x1 linear projection, + input (after drop path) when the shape is kept."""

    def __init__(self, inp, oup, stride, expand_ratio, drop_path=0.0):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res = stride == 1 and inp == oup
        layers = [conv_bn(inp, hidden)] if expand_ratio != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), *conv_bn(hidden, oup, act=False)]
        self.conv = nn.Sequential(*layers)
        if self.use_res:
            self.drop_path = DropPath(drop_path)

    def forward(self, x):
        return x + self.drop_path(self.conv(x)) if self.use_res else self.conv(x)


class ParCInvertedResidual(nn.Module):
    """1x1 expand -> depthwise ParC-V | ParC-H on the channel halves -> BN -> ReLU6 -> 1x1 linear projection (+ input)."""

    def __init__(self, inp, oup, expand_ratio, parc_size, use_pe, parc_impl="spatial", drop_path=0.0):
        super().__init__()
        hidden, (h, w) = inp * expand_ratio, parc_size
        self.use_res = inp == oup
        self.pw_expand = conv_bn(inp, hidden)
        self.parc_v = ParC(hidden // 2, "V", h, use_pe=use_pe, impl=parc_impl)
        self.parc_h = ParC(hidden // 2, "H", w, use_pe=use_pe, impl=parc_impl)
        self.bn = nn.BatchNorm2d(hidden)
        self.act = nn.ReLU6(inplace=True)
        self.pw_linear = conv_bn(hidden, oup, act=False)
        if self.use_res:
            self.drop_path = DropPath(drop_path)

    def forward(self, x):
        y = self.pw_linear(self.act(self.bn(parc_split(self.pw_expand(x), self.parc_v, self.parc_h))))
        return x + self.drop_path(y) if self.use_res else y


class MobileNetV2(nn.Module):
    """MobileNetV2 classifier, or with `features_only=True` a backbone returning maps at strides 2, 4, 8, 16, 32.

    Args:
        parc: use ParC blocks where the ParC-MobileNetV2 setting places them; kernels are stored for the
            feature sizes of `img_size`.
        parc_impl: 'spatial', 'fft' or 'auto' for every ParC layer.
        drop_path_rate: stochastic depth on the residual blocks, `rate * i / blocks` for block i (as timm's
            EfficientNet builder, which counts every inverted residual block).
    """

    def __init__(self, in_chans=3, num_classes=1000, img_size=224, drop_rate=0.2, parc=False, parc_impl="spatial",
                 features_only=False, drop_path_rate=0.0):
        super().__init__()
        self.in_chans, self.num_classes, self.features_only = in_chans, num_classes, features_only
        img_h, img_w = to_2tuple(img_size)
        features, inp, reduction, self.feature_info = [conv_bn(in_chans, 32, 3, 2)], 32, 2, []
        dpr = iter(drop_path_rates(drop_path_rate, sum(n for _, _, n, _, _ in SETTINGS), endpoint=False))
        for t, c, n, s, first_parc in SETTINGS:
            if s == 2:  # the map before a stride-2 stage is a multi-scale output
                self.feature_info.append({"num_chs": inp, "reduction": reduction, "module": f"features.{len(features) - 1}"})
            reduction *= s
            for i in range(n):
                if parc and i >= first_parc:
                    size = (img_h // reduction, img_w // reduction)
                    features.append(ParCInvertedResidual(inp, c, t, size, i == first_parc, parc_impl, next(dpr)))
                else:
                    features.append(InvertedResidual(inp, c, s if i == 0 else 1, t, next(dpr)))
                inp = c
        self.feature_info.append({"num_chs": inp, "reduction": reduction, "module": f"features.{len(features) - 1}"})
        self.num_features = 1280
        if not features_only:  # a backbone stops at the last inverted residual (the 1x1 head conv is dropped)
            features.append(conv_bn(inp, self.num_features))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Identity() if features_only or num_classes <= 0 else nn.Sequential(
            nn.Dropout(drop_rate), nn.Linear(self.num_features, num_classes))
        self._init_weights()

    def _init_weights(self):  # torchvision's init; the official ParC kernels are convs, so they get it too
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, ParC)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def no_weight_decay(self):
        return parc_embedding_names(self)

    def checkpoint_filter_fn(self, state_dict):
        sd = map_official_parc_keys(state_dict, self)
        if self.features_only:
            head = f"features.{len(self.features)}."
            sd = {k: v for k, v in sd.items() if not k.startswith(("classifier.", head))}
        return sd

    def forward_intermediates(self, x):
        """The maps listed in `feature_info` (strides 2, 4, 8, 16, 32)."""
        check_image(x, self.in_chans, 1, type(self).__name__)
        taps = {int(f["module"].split(".")[1]) for f in self.feature_info}
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in taps:
                outs.append(x)
        return outs

    def forward_features(self, x):
        check_image(x, self.in_chans, 1, type(self).__name__)
        return self.features(x)

    def forward_head(self, x, pre_logits=False):
        x = x.mean((-2, -1))
        return x if pre_logits else self.classifier(x)

    def forward(self, x):
        if self.features_only:
            return self.forward_intermediates(x)
        return self.forward_head(self.forward_features(x))


_CFG = {"interpolation": "bicubic", "crop_pct": 0.875}  # timm's EfficientNet-family _cfg (the ParC code defines none)


@register_model(**_CFG)
def mobilenetv2(**kwargs):
    """MobileNetV2 1.0 (3.50M parameters), torchvision layout and keys."""
    return MobileNetV2(**kwargs)


@register_model(**_CFG)
def parc_mobilenetv2(**kwargs):
    """ParC-MobileNetV2 (3.53M): ParC blocks in the 64-, 96- and 160-channel stages."""
    return MobileNetV2(parc=True, **kwargs)
