"""MobileNetV2's inverted residual block (Sandler et al. 2018), shared by MobileNetV2 and ParC-Net."""
from typing import Callable

import torch
from torch import nn

from .conv_bn_act import conv_bn_act
from .drop_path import DropPath


class InvertedResidual(nn.Module):
    """[1x1 expand] -> 3x3 depthwise (stride) -> 1x1 linear projection, + input (after drop path) when the shape
    is kept. Keys as torchvision's: `conv.0` (expand), `conv.1` (depthwise), `conv.2` / `conv.3` (projection conv, BN)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, expand_ratio: int = 6, drop_path: float = 0.0,
                 act_layer: Callable[[], nn.Module] = nn.ReLU6):
        super().__init__()
        hidden = in_chs * expand_ratio
        self.use_res = stride == 1 and in_chs == out_chs
        layers = [conv_bn_act(in_chs, hidden, 1, act_layer=act_layer)] if expand_ratio != 1 else []
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act_layer=act_layer),
                   *conv_bn_act(hidden, out_chs, 1, act_layer=None)]
        self.conv = nn.Sequential(*layers)
        if self.use_res:
            self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.conv(x)) if self.use_res else self.conv(x)
