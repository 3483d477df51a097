"""What the ParC ConvNets (ParC-ConvNeXt, ParC-ResNet-50, ParC-MobileNetV2) share: the split token
mixer, the official key mapping and the embeddings' weight-decay exemption (`ParCConvNetMixin`)."""
import re

import torch
from torch import nn

from .forms import resize_axis


def parc_split(x: torch.Tensor, parc_v: nn.Module, parc_h: nn.Module) -> torch.Tensor:
    """The ParC ConvNets' token mixer: ParC-V on the first half of the channels, ParC-H on the second."""
    x1, x2 = x.chunk(2, dim=1)
    return torch.cat([parc_v(x1), parc_h(x2)], dim=1)


_OFFICIAL_PARC = re.compile(r"(?:gcc|parc)_([HW])\.(?:gcc_conv\.)?")


def map_official_parc_keys(state_dict: dict, model: nn.Module) -> dict:
    """Official ParC ConvNet keys -> danlu's, for a model's `checkpoint_filter_fn`.

    The official `gcc_H` / `parc_H` (kernel along the height, see `danlu.models.layers.parc`) becomes
    `parc_v`, `gcc_W` / `parc_W` becomes `parc_h`, and `.gcc_conv.weight` becomes `.weight`. Kernels
    and embeddings stored at another base size than the model's are resized like at run time.
    """
    own = model.state_dict()
    out = {}
    for key, value in state_dict.items():
        key = _OFFICIAL_PARC.sub(lambda m: "parc_v." if m.group(1) == "H" else "parc_h.", key)
        target = own.get(key)
        if (target is not None and value.ndim == 4 and value.shape != target.shape and ".parc_" in key
                and value.shape[:2] == target.shape[:2]):
            dim = -2 if key.split(".parc_")[1].startswith("v") else -1
            value = resize_axis(value.to(target.dtype), target.shape[dim], dim)
        out[key] = value
    return out


def parc_embedding_names(model: nn.Module) -> set:
    """Names of the ParC positional embeddings in `model`: kept out of weight decay, like position embeddings."""
    return {name for name, _ in model.named_parameters() if name.endswith(".pe")}


class ParCConvNetMixin:
    """The ParC ConvNets' `no_weight_decay` (the ParC embeddings) and `checkpoint_filter_fn` (official keys)."""

    def no_weight_decay(self) -> set:
        return parc_embedding_names(self)

    def checkpoint_filter_fn(self, state_dict: dict) -> dict:
        return map_official_parc_keys(state_dict, self)
