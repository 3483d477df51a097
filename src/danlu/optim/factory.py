"""Optimizers and schedules by name: `create_optimizer(model, 'adamw', lr=1e-3, weight_decay=0.05)`."""
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from torch.optim.optimizer import ParamsT

from ..suggest import did_you_mean
from . import optimizers as _opt
from . import schedules as _sched
from .swats import SWATS

# The seed's names (sgd, sgdm, nag, ...) and torch's class names, lower-cased, to (class, preset kwargs).
OPTIMIZERS = {
    "sgd": (_opt.SGD, {}),
    "sgdm": (_opt.SGD, {"momentum": 0.9}),
    "momentum": (_opt.SGD, {"momentum": 0.9}),
    "nag": (_opt.SGD, {"momentum": 0.9, "nesterov": True}),
    "nesterov": (_opt.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (_opt.Adagrad, {}),
    "adadelta": (_opt.Adadelta, {}),
    "rmsprop": (_opt.RMSprop, {}),
    "adam": (_opt.Adam, {}),
    "adamw": (_opt.AdamW, {}),
    "amsgrad": (_opt.Adam, {"amsgrad": True}),
    "nadam": (_opt.NAdam, {}),
    "swats": (SWATS, {}),
}

SCHEDULES = ("none", "step", "multistep", "cosine", "linear", "plateau")


def _unknown(kind: str, name: str, choices: list[str]) -> ValueError:
    return ValueError(f"unknown {kind} '{name}'{did_you_mean(name, choices)}; choose one of: {', '.join(choices)}")


def param_groups_weight_decay(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: decayed weights first, then biases / 1-D params (norm weights) / `model.no_weight_decay()`."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") or name in skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def create_optimizer(model_or_params: nn.Module | ParamsT, name: str = "sgd", lr: float | None = None,
                     weight_decay: float = 0.0, layer_decay: float | None = None, **kwargs) -> torch.optim.Optimizer:
    """Build the optimizer `name` (case-insensitive) over a module's parameters or an iterable of params/groups.

    Given an `nn.Module` and `weight_decay > 0`, biases, 1-D parameters and the names in `model.no_weight_decay()`
    go into a group with weight decay 0. `layer_decay` (fine-tuning, BEiT / timm) gives each layer of a model that
    declares its layers the lr `lr * layer_decay ** (num_lr_layers - layer_id)`, see `param_groups_layer_decay`.
    A model with `param_groups(weight_decay)` gives its own groups instead, each with an `lr_scale`.
    `lr=None` keeps the optimizer's own default; other keyword arguments (momentum, betas, eps, ...) go to the
    optimizer and override the name's presets (e.g. 'sgdm' is momentum 0.9).
    """
    key = name.lower()
    if key not in OPTIMIZERS:
        raise _unknown("optimizer", name, list(OPTIMIZERS))
    cls, preset = OPTIMIZERS[key]
    if layer_decay is not None:
        if not isinstance(model_or_params, nn.Module) or lr is None:
            raise ValueError("layer_decay needs the model itself (an nn.Module, not a list of parameters) and an "
                             "explicit lr; pass create_optimizer(model, name, lr=..., layer_decay=...)")
        # imported here because layer_decay imports this module
        from .layer_decay import param_groups_layer_decay
        params = param_groups_layer_decay(model_or_params, lr, weight_decay, layer_decay)
    elif hasattr(model_or_params, "param_groups"):  # the model's own groups (airbench's scaled-up norm biases)
        if lr is None:
            raise ValueError(f"{type(model_or_params).__name__} scales the lr per parameter group, so it needs an "
                             "explicit lr; pass create_optimizer(model, name, lr=...)")
        params = [{**g, "lr": lr * g["lr_scale"]} for g in model_or_params.param_groups(weight_decay)]
    elif isinstance(model_or_params, nn.Module):
        params = (param_groups_weight_decay(model_or_params, weight_decay) if weight_decay
                  else [p for p in model_or_params.parameters() if p.requires_grad])
    else:
        params = model_or_params
    opts = {**preset, **kwargs, "weight_decay": weight_decay}
    if lr is not None:
        opts["lr"] = lr
    return cls(params, **opts)


def create_scheduler(optimizer: torch.optim.Optimizer, name: str, epochs: int, steps_per_epoch: int = 1,
                     warmup_epochs: int = 0, warmup_lr: float | None = None, min_lr: float | None = None,
                     **kwargs) -> LRScheduler | ReduceLROnPlateau | None:
    """Build a schedule on torch's protocol; its `interval` says whether to step it per 'step' or per 'epoch'.

    - 'none': returns None.
    - 'step': kwargs `step_size` (epochs, default max(epochs // 3, 1)), `gamma` (0.1).
    - 'multistep': kwargs `milestones` (epochs, default [epochs/2, 3*epochs/4]), `gamma` (0.1).
    - 'cosine': linear warm-up for `warmup_epochs`, then cosine to `min_lr_ratio` (0) x lr at the end.
    - 'linear': linear warm-up, then a straight line to `min_lr_ratio` (0) x lr at the end.
    - 'plateau': torch's ReduceLROnPlateau kwargs (mode, factor, patience, ...); step it with the validation loss.

    `warmup_lr` and `min_lr` are absolute rates, as timm's `--warmup-lr` / `--min-lr`: the warm-up starts
    at `warmup_lr` and the cosine ends at `min_lr` (relative to the lr before any group's `lr_scale`, so
    groups with layer-wise decay or airbench's scaled-up biases keep their ratios).
    """
    key = name.lower()
    if key not in SCHEDULES:
        raise _unknown("schedule", name, list(SCHEDULES))
    if key == "none":
        return None
    if key == "plateau":
        if warmup_epochs:
            raise ValueError("The plateau schedule has no warm-up; use warmup_epochs=0 or the cosine schedule.")
        return _sched.Plateau(optimizer, **kwargs)
    base = max(group["lr"] / group.get("lr_scale", 1.0) for group in optimizer.param_groups)  # the unscaled lr
    if min_lr is not None:
        if key not in ("cosine", "linear"):
            raise ValueError(f"min_lr applies to the cosine and linear schedules, not '{name}'; drop min_lr or use "
                             "--schedule cosine")
        kwargs["min_lr_ratio"] = min_lr / base
    common = {"steps_per_epoch": steps_per_epoch, "warmup_epochs": warmup_epochs,
              "warmup_start": warmup_lr / base if warmup_lr is not None else 0.0}
    if key == "step":
        return _sched.step_decay(optimizer, kwargs.pop("step_size", max(epochs // 3, 1)), **kwargs, **common)
    if key == "multistep":
        milestones = kwargs.pop("milestones", [epochs // 2, (3 * epochs) // 4])
        return _sched.multistep_decay(optimizer, milestones, **kwargs, **common)
    if key == "linear":
        return _sched.linear_decay(optimizer, epochs, **kwargs, **common)
    return _sched.cosine_decay(optimizer, epochs, **kwargs, **common)


__all__ = ["OPTIMIZERS", "SCHEDULES", "create_optimizer", "create_scheduler", "param_groups_weight_decay"]
