"""Data set registry: `register_dataset`, `create_dataset`, `list_datasets`.

A builder `fn(root=None, download=False, **kwargs) -> DataBundle` returns the train set, the test
set when the data set has one (otherwise None: the trainer then holds out a validation split), the
class names and what kind of input the model receives.
"""
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import Dataset

from ..suggest import did_you_mean

_BUILDERS = {}


@dataclass
class DataBundle:
    train: Dataset
    test: Dataset | None
    classes: list
    input_kind: str = "image"         # 'image': (C, H, W) float tensors; 'tokens': LongTensor of ids
    input_size: tuple | None = None   # (C, H, W) of the stored images, for building a matching model
    meta: dict = field(default_factory=dict)  # e.g. the text vocabulary


def register_dataset(name: str) -> Callable[[Callable], Callable]:
    def wrap(fn):
        _BUILDERS[name] = fn
        return fn
    return wrap


def list_datasets() -> list[str]:
    return sorted(_BUILDERS)


def dataset_builder(name: str) -> Callable[..., DataBundle]:
    """The registered builder function (its signature lists the data set's keyword arguments)."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown dataset '{name}'{did_you_mean(name, _BUILDERS)}; known: {', '.join(list_datasets())}")
    return _BUILDERS[name]


def create_dataset(name: str, root: str | Path | None = None, download: bool = False, **kwargs) -> DataBundle:
    return dataset_builder(name)(root=root, download=download, **kwargs)
