"""Checkpoints: a directory per save holding `model.safetensors` (the weights, with what is needed to
rebuild the model in its metadata) and `training_state.pt` (optimizer, scheduler, epoch, step,
RNG states, history). A save is written to a temporary directory and renamed into place, and the
`LAST` pointer file is replaced atomically, so a crash never leaves a half-written checkpoint."""
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

WEIGHTS, EMA_WEIGHTS, STATE, POINTER = "model.safetensors", "model_ema.safetensors", "training_state.pt", "LAST"
BEST, INTERRUPTED = "best", "interrupted"  # checkpoint names besides 'epoch_NNNN'


def _write_pointer(ckpt_root, name):
    tmp = ckpt_root / f".{POINTER}.tmp"
    tmp.write_text(name)
    os.replace(tmp, ckpt_root / POINTER)


def _cpu_weights(model):
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(ckpt_root, name, model, model_info, training_state, mark_last=True, ema_model=None):
    """Write checkpoint `name` under `ckpt_root` atomically (with the EMA weights, if any); returns its directory."""
    ckpt_root = Path(ckpt_root)
    final, tmp = ckpt_root / name, ckpt_root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_cpu_weights(model), str(tmp / WEIGHTS), metadata={"danlu": json.dumps(model_info)})
    if ema_model is not None:
        save_file(_cpu_weights(ema_model), str(tmp / EMA_WEIGHTS), metadata={"danlu": json.dumps(model_info)})
    torch.save(training_state, tmp / STATE)
    old = ckpt_root / f".{name}.old"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    if mark_last:
        _write_pointer(ckpt_root, name)
    return final


def resolve_checkpoint(path):
    """The checkpoint directory for a run directory, a checkpoints folder, a checkpoint dir or its weights file."""
    path = Path(path)
    for candidate in (path / "checkpoints", path):
        if (candidate / POINTER).is_file():
            return candidate / (candidate / POINTER).read_text().strip()
    if path.is_file() and path.name == WEIGHTS:
        return path.parent
    if (path / WEIGHTS).is_file():
        return path
    raise FileNotFoundError(f"no checkpoint found at '{path}'; give a run directory, a checkpoint directory "
                            f"or a {WEIGHTS} file")


def read_model_info(ckpt_dir):
    """The metadata saved with the weights: model name and kwargs, classes, preprocessing."""
    from safetensors import safe_open
    with safe_open(str(Path(ckpt_dir) / WEIGHTS), "pt") as f:
        return json.loads((f.metadata() or {}).get("danlu", "{}"))


def load_weights(ckpt_dir, file=WEIGHTS):
    path = Path(ckpt_dir) / file
    if not path.is_file():
        raise FileNotFoundError(f"'{ckpt_dir}' has no {file}; it was saved without that weights file")
    return load_file(str(path))


def load_training_state(ckpt_dir):
    path = Path(ckpt_dir) / STATE
    if not path.is_file():
        raise FileNotFoundError(f"'{ckpt_dir}' has weights but no {STATE}; it cannot be resumed, only evaluated")
    return torch.load(path, map_location="cpu", weights_only=True)


def prune_checkpoints(ckpt_root, keep, protect=(BEST,)):
    """Delete all but the newest `keep` epoch checkpoints (names 'epoch_NNNN')."""
    epochs = sorted(p for p in Path(ckpt_root).glob("epoch_*") if p.is_dir())
    for p in epochs[:-keep] if keep > 0 else epochs:
        if p.name not in protect:
            shutil.rmtree(p, ignore_errors=True)


def rng_state():
    return {"torch": torch.get_rng_state(), "numpy": json.dumps(_np_state()), "python": json.dumps(_py_state()),
            **({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {})}


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = json.loads(state["numpy"])
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _np_state():
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _py_state():
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]
