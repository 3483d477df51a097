"""The convolution -> BatchNorm -> activation unit of the ConvNets and conv stems."""
from typing import Callable

from torch import nn


def conv_bn_act(in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, groups: int = 1, bias: bool = False,
                act_layer: Callable[[], nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Conv2d ('same' padding for odd kernels) -> BatchNorm2d [-> act_layer()]; keys `.0` / `.1` / `.2` as
    torchvision's Conv2dNormActivation and cvnets' ConvLayer, so `*conv_bn_act(...)` also flattens into a list."""
    layers = [nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=bias),
              nn.BatchNorm2d(out_chs)]
    return nn.Sequential(*layers, act_layer()) if act_layer is not None else nn.Sequential(*layers)
