"""Weight initialisation: one dispatch over a model's modules, and the initialisers the models use."""
import math
from typing import Callable

from torch import nn


def init_weights(model: nn.Module, rules: dict) -> nn.Module:
    """Apply to every module of model the initialiser of the first `rules` entry (type or tuple of types ->
    fn(module)) it is an instance of, in module order; returns model."""
    for m in model.modules():
        init = next((fn for types, fn in rules.items() if isinstance(m, types)), None)
        if init is not None:
            init(m)
    return model


def trunc_normal_init(m: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal weight, zero bias: the transformers' (timm's) Linear init."""
    nn.init.trunc_normal_(m.weight, std=std)
    if getattr(m, "bias", None) is not None:
        nn.init.zeros_(m.bias)


def normal_init(std: float) -> Callable[[nn.Module], None]:
    """Normal(0, std) weight, zero bias (torchvision's classifier init with std 0.01)."""
    def init(m):
        nn.init.normal_(m.weight, 0.0, std)
        nn.init.zeros_(m.bias)
    return init


def kaiming_fan_out_init(m: nn.Module) -> None:
    """He-normal on the fan-out as torch counts it (every output channel): torchvision's ConvNet init."""
    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def he_group_fan_out_init(m: nn.Conv2d) -> None:
    """He-normal on the fan-out per group, zero bias (MobileNet/EfficientNet, PyramidTNT's official code): plain
    fan-out counts every output channel of a depthwise conv and shrinks activations ~channels-fold per block."""
    fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
    nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
    if m.bias is not None:
        nn.init.zeros_(m.bias)
