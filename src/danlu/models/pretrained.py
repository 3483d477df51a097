"""Loading weight files into models, strictly and safely.

Reads safetensors, or PyTorch files with `weights_only=True` (never unpickles code). A state dict
wrapped under 'state_dict', 'model' or 'state_dict_ema' is unwrapped. A model whose original
implementation used other key names defines `checkpoint_filter_fn(state_dict) -> state_dict`,
which maps them onto danlu's names before the strict check.
"""
import warnings
from pathlib import Path

import torch
from torch import nn

_WRAPPERS = ("state_dict", "model", "state_dict_ema", "model_ema")


class WeightMismatchError(ValueError):
    """A weight file does not match the model: lists missing, unexpected and mis-shaped keys."""


def read_state_dict(path) -> dict:
    """A flat {name: tensor} dict from a safetensors or PyTorch weight file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file '{path}' does not exist; check the path")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own error types for corrupt headers
            raise ValueError(f"weight file '{path}' is not a valid safetensors file ({e}); re-download or re-export it") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"weight file '{path}' could not be read as a PyTorch state dict ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); it may be corrupt or need trusted loading") from None
    for key in _WRAPPERS:
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"weight file '{path}' holds no state dict of tensors (found {type(obj).__name__})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def check_state_dict(model: nn.Module, state_dict: dict) -> None:
    """Raise WeightMismatchError naming every missing, unexpected or mis-shaped key."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                parts.append(f"{label}: {shown}")
        raise WeightMismatchError(f"weights do not match {type(model).__name__}: " + "; ".join(parts))


def _drop_heads(model, sd):
    """sd without the weights of heads the model has not got: those of the modules a features_only model
    removed, silently, and a classifier whose shape differs (another num_classes, or none), with a warning;
    the model then keeps its own classifier, as timm's `load_pretrained(..., num_classes)`."""
    pruned = getattr(model, "pruned_prefixes", tuple)()
    sd = {k: v for k, v in sd.items() if not k.startswith(pruned)} if pruned else sd
    name = getattr(model, "classifier_name", None)
    if name is None or f"{name}." in pruned:
        return sd
    prefix, own = f"{name}.", model.state_dict()
    theirs = {k: v for k, v in sd.items() if k.startswith(prefix)}
    mine = {k: v for k, v in own.items() if k.startswith(prefix)}
    if theirs and {k: v.shape for k, v in theirs.items()} != {k: v.shape for k, v in mine.items()}:
        warnings.warn(f"the weights' classifier '{name}' ({_classes(theirs)} classes) does not fit the model's "
                      f"({model.num_classes} classes): it is not loaded and the model's own is kept", stacklevel=3)
        sd = {**{k: v for k, v in sd.items() if not k.startswith(prefix)}, **mine}
    return sd


def _classes(tensors):
    bias = [v for k, v in tensors.items() if k.endswith("bias")]
    return bias[0].shape[0] if bias else "?"


def load_pretrained(model: nn.Module, path_or_state_dict, strict: bool = True) -> tuple:
    """Load weights into `model`; returns (missing, unexpected) key lists (empty when strict passes).

    `path_or_state_dict`: a weight file (safetensors or PyTorch) or a state dict. The model's
    `checkpoint_filter_fn` maps the original implementation's names; the weights of heads the model has
    not got are dropped (see `_drop_heads`); then every key must match when strict.
    """
    sd = path_or_state_dict if isinstance(path_or_state_dict, dict) else read_state_dict(path_or_state_dict)
    filter_fn = getattr(model, "checkpoint_filter_fn", None)
    if filter_fn is not None:
        sd = filter_fn(sd)
    sd = _drop_heads(model, sd)
    if strict:
        check_state_dict(model, sd)
    result = model.load_state_dict(sd, strict=strict)
    return list(result.missing_keys), list(result.unexpected_keys)
