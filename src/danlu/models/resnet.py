"""ResNet-50 (He et al. 2016, torchvision layout: stride on the 3x3 conv) and ParC-ResNet-50 (ParC-Net, ECCV 2022).

ParC-ResNet-50 replaces the 3x3 convolution of layer3 blocks 3-5 and layer4 block 2 by a ParC pair on
the two halves of the bottleneck width. Unlike the other ParC ConvNets these ParCs are dense
(groups=1, a full width/2 -> width/2 convolution with a global kernel), which is what the official
code does and what its 23.74M parameters count. torchvision and official ParC-ResNet-50 state dicts
(`parc_H`/`parc_W`) load with `load_pretrained`.
"""
from typing import Sequence

from torch import nn

from ._base import ModelBase
from .layers import DropPath, ParC, check_image, drop_path_rates, to_2tuple
from .layers.parc import ParCConvNetMixin, parc_split
from .layers.weight_init import init_weights, kaiming_fan_out_init
from .registry import register_model


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (or a dense ParC pair when parc_size is given) -> 1x1 expand, drop path, + shortcut, ReLU."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, parc_size=None, parc_impl="spatial", drop_path=0.0):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        if parc_size is None:
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        else:
            h, w = parc_size
            self.parc_v = ParC(width // 2, "V", h, groups=1, impl=parc_impl)
            self.parc_h = ParC(width // 2, "H", w, groups=1, impl=parc_impl)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.conv2(y) if hasattr(self, "conv2") else parc_split(y, self.parc_v, self.parc_h)
        y = self.relu(self.bn2(y))
        y = self.bn3(self.conv3(y))
        return self.relu(self.drop_path(y) + identity)


class ResNet(ParCConvNetMixin, ModelBase):
    """Bottleneck ResNet classifier, or with `features_only=True` a backbone returning the four layer maps.

    Args:
        parc_insert_locs: per layer, the index of the first ParC block (blocks j >= loc are ParC);
            `None` gives plain ResNet. ParC kernels are stored for the feature sizes of `img_size`.
        parc_impl: 'spatial', 'fft' or 'auto' for every ParC layer.
        drop_path_rate: stochastic depth of the last block, linear from 0 over all blocks (as timm's ResNet).
        features_only, out_indices: see `ModelBase` (taps: layer1-4).
    """

    classifier_name, head_names = "fc", ("fc",)

    def __init__(self, layers: Sequence[int] = (3, 4, 6, 3), in_chans: int = 3, num_classes: int = 1000,
                 img_size: int | tuple = 224, parc_insert_locs: Sequence[int] | None = None, parc_impl: str = "spatial",
                 features_only: bool = False, drop_path_rate: float = 0.0, out_indices: Sequence[int] | None = None):
        super().__init__()
        self.in_chans, self.num_classes = in_chans, num_classes
        img_h, img_w = to_2tuple(img_size)
        self.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        dpr = iter(drop_path_rates(drop_path_rate, sum(layers)))
        for i, depth in enumerate(layers):
            planes, stride = 64 * 2 ** i, 1 if i == 0 else 2
            reduction = 4 * 2 ** i
            parc_size = (img_h // reduction, img_w // reduction)
            first_parc = depth if parc_insert_locs is None else parc_insert_locs[i]
            blocks = []
            for j in range(depth):
                downsample = None
                if j == 0 and (stride != 1 or inplanes != planes * Bottleneck.expansion):
                    downsample = nn.Sequential(nn.Conv2d(inplanes, planes * Bottleneck.expansion, 1, stride, bias=False),
                                               nn.BatchNorm2d(planes * Bottleneck.expansion))
                blocks.append(Bottleneck(inplanes, planes, stride if j == 0 else 1, downsample,
                                         parc_size if j >= first_parc else None, parc_impl, next(dpr)))
                inplanes = planes * Bottleneck.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = inplanes
        self.fc = self._classifier(num_classes)
        self._init_features([{"num_chs": 256 * 2 ** i, "reduction": 4 * 2 ** i, "module": f"layer{i + 1}"}
                             for i in range(len(layers))], features_only, out_indices)
        self._init_weights()

    def _init_weights(self):
        # torchvision's init; the official ParC kernels are convs, so they get it too
        init_weights(self, {(nn.Conv2d, ParC): kaiming_fan_out_init})

    def _taps(self, x):
        """The output maps (B, C, H, W) of layer1-4, at strides 4, 8, 16, 32."""
        check_image(x, self.in_chans, 1, type(self).__name__)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_taps):
            x = getattr(self, f"layer{i + 1}")(x)
            yield x

    def forward_head(self, x, pre_logits=False):
        x = x.mean((-2, -1))
        return x if pre_logits else self.fc(x)


_CFG = {"interpolation": "bilinear", "crop_pct": 0.875}  # timm's ResNet _cfg (the ParC code defines none)


@register_model(**_CFG)
def resnet50(**kwargs):
    """ResNet-50 (25.56M parameters), torchvision layout and keys."""
    return ResNet((3, 4, 6, 3), **kwargs)


@register_model(**_CFG)
def parc_resnet50(**kwargs):
    """ParC-ResNet-50 (23.74M): dense ParC pairs in layer3 blocks 3-5 (the last half) and layer4 block 2."""
    return ResNet((3, 4, 6, 3), parc_insert_locs=(3, 4, 3, 2), **kwargs)
