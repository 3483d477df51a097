"""Layer-wise learning-rate decay for fine-tuning transformers (BEiT, Bao et al. 2022; timm's `param_groups_layer_decay`).

A model declares its layers with `layer_id(param_name) -> int` (0 for the embeddings up to `num_lr_layers` for
the final norm and head) and `num_lr_layers`; layer l then trains with lr * layer_decay ** (num_lr_layers - l),
so the head keeps the full lr and each block below it a further factor `layer_decay` less.
"""
import math
from collections.abc import Iterable

from torch import nn

from .factory import param_groups_weight_decay


def param_groups_layer_decay(model: nn.Module, lr: float, weight_decay: float, layer_decay: float,
                             no_weight_decay: Iterable[str] = ()) -> list[dict]:
    """Parameter groups, one per (layer, decayed or not), in layer order.

    Each group's `lr` is already the scaled one (so schedules, which scale every group's initial lr, need nothing
    more) and `lr_scale` says by how much. Weight decay follows `param_groups_weight_decay` (biases, 1-D params and
    `model.no_weight_decay()` get none), and the names in `no_weight_decay` get none either.
    """
    if not (hasattr(model, "layer_id") and hasattr(model, "num_lr_layers")):
        raise ValueError(f"{type(model).__name__} does not declare its layers (layer_id and num_lr_layers), so "
                         "layer-wise lr decay cannot be applied; use layer_decay=None or a ViT, TNT or PyramidTNT")
    if not (isinstance(layer_decay, (int, float)) and math.isfinite(layer_decay) and 0 < layer_decay <= 1):
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay!r}; BEiT and timm fine-tune ViTs with 0.65-0.75")
    decayed = {id(p) for p in param_groups_weight_decay(model, weight_decay)[0]["params"]}
    skip = set(no_weight_decay)
    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        layer, decay = model.layer_id(name), id(p) in decayed and name not in skip
        if (layer, decay) not in groups:
            scale = layer_decay ** (model.num_lr_layers - layer)
            groups[layer, decay] = {"params": [], "lr": lr * scale, "lr_scale": scale,
                                    "weight_decay": weight_decay if decay else 0.0}
        groups[layer, decay]["params"].append(p)
    return [groups[key] for key in sorted(groups, key=lambda k: (k[0], not k[1]))]
