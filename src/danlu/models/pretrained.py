"""Loading weight files into models, strictly and safely.

Reads safetensors, or PyTorch files with `weights_only=True` (never unpickles code). A state dict
wrapped under 'state_dict', 'model' or 'state_dict_ema' is unwrapped. A model whose original
implementation used other key names defines `checkpoint_filter_fn(state_dict) -> state_dict`,
which maps them onto danlu's names before the strict check.
"""
from pathlib import Path

import torch

_WRAPPERS = ("state_dict", "model", "state_dict_ema", "model_ema")


class WeightMismatchError(ValueError):
    """A weight file does not match the model: lists missing, unexpected and mis-shaped keys."""


def read_state_dict(path):
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


def check_state_dict(model, state_dict):
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


def load_pretrained(model, path_or_state_dict, strict=True):
    """Load weights into `model`; returns (missing, unexpected) key lists (empty when strict passes)."""
    sd = path_or_state_dict if isinstance(path_or_state_dict, dict) else read_state_dict(path_or_state_dict)
    filter_fn = getattr(model, "checkpoint_filter_fn", None)
    if filter_fn is not None:
        sd = filter_fn(sd)
    if strict:
        check_state_dict(model, sd)
    result = model.load_state_dict(sd, strict=strict)
    return list(result.missing_keys), list(result.unexpected_keys)
