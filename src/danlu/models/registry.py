"""Model registry: `register_model`, `create_model`, `list_models` and per-model default configs.

An entrypoint is a function `name(**kwargs) -> nn.Module`; `@register_model` records it under its
function name together with a default config (input size, normalisation, evaluation resize, number of
classes), the timm convention users already know.
"""
import fnmatch
from dataclasses import dataclass, field, replace
from typing import Callable

from torch import nn

from ..suggest import did_you_mean
from .layers.helpers import to_2tuple

_ENTRYPOINTS = {}
_CONFIGS = {}


@dataclass(frozen=True)
class ModelConfig:
    """What a model expects by default: used by data pipelines, `danlu models` and FLOP counting."""
    input_size: tuple = (3, 224, 224)
    num_classes: int = 1000
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)
    # evaluation: resize the short side to floor(size / crop_pct) with `interpolation`, then centre-crop size
    # (defaults: those timm's resolve_data_config falls back to)
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    input_kind: str = "image"  # 'image' or 'tokens' (text models take token ids)
    extra: dict = field(default_factory=dict)


def register_model(fn: Callable[..., nn.Module] | None = None, **cfg):
    """Decorator: `@register_model` or `@register_model(input_size=(3, 32, 32), num_classes=10)`."""
    def wrap(f):
        name = f.__name__
        if name in _ENTRYPOINTS:
            raise ValueError(f"model name '{name}' is registered twice; rename one of the entrypoints")
        _ENTRYPOINTS[name] = f
        _CONFIGS[name] = ModelConfig(**cfg)
        return f
    return wrap(fn) if fn is not None else wrap


def list_models(pattern: str | None = None) -> list:
    """Sorted registered names, optionally filtered by a shell-style pattern such as 'vit_*'."""
    names = sorted(_ENTRYPOINTS)
    if pattern:
        if not any(c in pattern for c in "*?["):
            pattern = f"*{pattern}*"
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def _check_name(name):
    if name not in _ENTRYPOINTS:
        raise ValueError(f"unknown model '{name}'{did_you_mean(name, _ENTRYPOINTS)}; danlu.list_models() lists them all")


def get_model_config(name: str) -> ModelConfig:
    """The default config of a registered model (input size, classes, normalisation)."""
    _check_name(name)
    return _CONFIGS[name]


def create_model(name: str, pretrained: bool | str = False, num_classes: int | None = None, in_chans: int | None = None,
                 img_size: int | tuple | None = None, **kwargs) -> nn.Module:
    """Build a registered model.

    `num_classes`, `in_chans` and `img_size` default to the model's config when None; any other
    keyword goes to the entrypoint (`drop_path_rate`, `features_only`, ...). `pretrained` may be a
    path to a weight file (safetensors or PyTorch), loaded strictly with `load_pretrained`; nothing
    is downloaded, so `pretrained=True` without a path is an error.
    """
    _check_name(name)
    if num_classes is not None and num_classes < 0:
        raise ValueError(f"num_classes must be 0 (a backbone) or more, got {num_classes}")
    if in_chans is not None and in_chans < 1:
        raise ValueError(f"in_chans must be at least 1, got {in_chans}")
    for key, value in (("num_classes", num_classes), ("in_chans", in_chans), ("img_size", img_size)):
        if value is not None:
            kwargs[key] = value
    model = _ENTRYPOINTS[name](**kwargs)
    cfg = _CONFIGS[name]
    model.default_cfg = replace(
        cfg,
        input_size=(kwargs.get("in_chans", cfg.input_size[0]), *to_2tuple(kwargs.get("img_size", cfg.input_size[1:]))),
        num_classes=kwargs.get("num_classes", cfg.num_classes),
    ) if cfg.input_kind == "image" else cfg
    if pretrained:
        if pretrained is True:
            raise ValueError(f"no weights can be downloaded for '{name}'; pass pretrained='path/to/weights' "
                             "(safetensors or .pth) or call danlu.load_pretrained(model, path)")
        from .pretrained import load_pretrained
        load_pretrained(model, pretrained)
    return model
