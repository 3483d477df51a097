"""Export freezing: fix every resized kernel and embedding at the size one example input gives.

`freeze_parc` / `unfreeze_parc` (or the context manager `export_mode`) act on every module with
`freeze(size)` and `unfreeze()` methods (ParC layers and the ParC-Net embeddings), so an exported
graph holds constant tensors and no interpolation.
"""
from contextlib import contextmanager

import torch
from torch import nn


def _freezable(model):
    return [m for m in model.modules() if callable(getattr(m, "freeze", None)) and callable(getattr(m, "unfreeze", None))]


@torch.no_grad()
def freeze_parc(model: nn.Module, example_input: torch.Tensor) -> list:
    """Freeze every freezable module of model at the (h, w) its input has for example_input (one forward pass);
    returns the modules frozen."""
    sizes, hooks = {}, []

    def record(module, args):
        sizes.setdefault(module, tuple(args[0].shape[-2:]))

    for m in _freezable(model):
        hooks.append(m.register_forward_pre_hook(record))
    was_training = model.training
    try:
        model.eval()
        model(example_input)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    for m, size in sizes.items():
        m.freeze(size)
    return list(sizes)


def unfreeze_parc(model: nn.Module) -> None:
    for m in _freezable(model):
        m.unfreeze()


@contextmanager
def export_mode(model: nn.Module, example_input: torch.Tensor):
    """`with export_mode(model, x): torch.onnx.export(model, x, ...)`: constant kernels, spatial form."""
    freeze_parc(model, example_input)
    try:
        yield model
    finally:
        unfreeze_parc(model)
