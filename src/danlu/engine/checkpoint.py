"""Checkpoints: a directory per save holding `model.safetensors` (the weights, with what is needed to
rebuild the model in its metadata) and `training_state.pt` (optimizer, scheduler, epoch, step,
RNG states, history). A save is written file by file (each fsynced) into '.NAME.tmp', then renamed
into place (an existing NAME is first moved to '.NAME.old'), and the `LAST` pointer file is replaced
atomically: a kill at any instant leaves every checkpoint whole, and the leftovers are tidied (an
'.NAME.old' whose NAME is missing is put back) by the next save, resume or read."""
import io
import json
import os
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .atomic import OLD, TMP, disk_full, fsync_dir, is_disk_full, remove_leftovers, write_new, write_text_atomic

WEIGHTS, EMA_WEIGHTS, STATE, POINTER = "model.safetensors", "model_ema.safetensors", "training_state.pt", "LAST"
BEST, INTERRUPTED = "best", "interrupted"  # checkpoint names besides 'epoch_NNNN'


def _cpu_weights(model):
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def tidy(ckpt_root):
    """Undo what an interrupted save left: restore '.NAME.old' where NAME is missing, delete the rest."""
    ckpt_root = Path(ckpt_root)
    for old in ckpt_root.glob(f".*{OLD}"):
        final = ckpt_root / old.name[1:-len(OLD)]
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.rename(final)
    remove_leftovers(ckpt_root)


def save_checkpoint(ckpt_root, name, model, model_info, training_state, mark_last=True, ema_model=None):
    """Write checkpoint `name` under `ckpt_root` atomically (with the EMA weights, if any); returns its directory."""
    meta = {"danlu": json.dumps(model_info)}
    files = {WEIGHTS: save_safetensors(_cpu_weights(model), metadata=meta)}
    if ema_model is not None:
        files[EMA_WEIGHTS] = save_safetensors(_cpu_weights(ema_model), metadata=meta)
    state = io.BytesIO()
    torch.save(training_state, state)
    files[STATE] = state.getvalue()
    return _publish(Path(ckpt_root), name, files, mark_last)


def link_checkpoint(ckpt_root, source, name):
    """Checkpoint `name` holding the files of checkpoint `source`, as hard links (nothing written again;
    copies where the file system has no links): `best` when the epoch that improved was just saved. Files
    are never changed in place (a save writes new ones), so the two never differ."""
    source = Path(ckpt_root) / source
    return _publish(Path(ckpt_root), name, {f.name: f for f in sorted(source.iterdir())}, mark_last=False)


def _publish(ckpt_root, name, files, mark_last):
    """Fill '.NAME.tmp' with `files` (file name: bytes to write, or a path to link), each fsynced, then
    rename it to NAME (an existing NAME first to '.NAME.old'); with `mark_last`, point LAST at it."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    tidy(ckpt_root)
    final, tmp, old = ckpt_root / name, ckpt_root / f".{name}{TMP}", ckpt_root / f".{name}{OLD}"
    needed = sum(len(data) for data in files.values() if isinstance(data, bytes))
    try:
        tmp.mkdir()
        for file, data in files.items():
            if isinstance(data, bytes):
                write_new(tmp / file, data)
            else:
                _link_or_copy(data, tmp / file)
        fsync_dir(tmp)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        fsync_dir(ckpt_root)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(e):
            raise disk_full(ckpt_root, f"checkpoint '{name}'", needed) from None
        raise
    shutil.rmtree(old, ignore_errors=True)
    if mark_last:
        write_text_atomic(ckpt_root / POINTER, name)
    return final


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def resolve_checkpoint(path):
    """The checkpoint directory for a run directory, a checkpoints folder, a checkpoint dir or its weights file."""
    path = Path(path)
    for candidate in (path / "checkpoints", path):
        if (candidate / POINTER).is_file():
            tidy(candidate)
            return candidate / (candidate / POINTER).read_text().strip()
    if path.is_file() and path.name == WEIGHTS:
        return path.parent
    if (path / WEIGHTS).is_file():
        return path
    raise FileNotFoundError(f"no checkpoint found at '{path}'; give a run directory, a checkpoint directory "
                            f"or a {WEIGHTS} file")


def checkpoints_newest_first(path):
    """The checkpoint `path` names, then, when it is a run's, the run's other checkpoints, newest first:
    where `--resume` falls back to when a checkpoint cannot be read."""
    chosen = resolve_checkpoint(path)
    others = sorted((p for p in chosen.parent.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and p != chosen and (p / STATE).is_file()),
                    key=lambda p: (p / STATE).stat().st_mtime, reverse=True) if (chosen.parent / POINTER).is_file() else []
    return [chosen, *others]


def read_resumable(path):
    """(checkpoint dir, weights, EMA weights or None, training state) of the newest readable checkpoint
    for `path`, warning about (and skipping) unreadable ones."""
    problems = []
    for ckpt_dir in checkpoints_newest_first(path):
        try:
            weights = load_weights(ckpt_dir)
            ema = load_weights(ckpt_dir, EMA_WEIGHTS) if (ckpt_dir / EMA_WEIGHTS).is_file() else None
            state = load_training_state(ckpt_dir)
        except (ValueError, FileNotFoundError) as e:
            problems.append(str(e))
            continue
        for problem in problems:
            warnings.warn(f"{problem}; resuming from {ckpt_dir} instead", stacklevel=2)
        return ckpt_dir, weights, ema, state
    raise ValueError(f"no checkpoint of '{path}' can be resumed: " + "; ".join(problems))


def read_model_info(ckpt_dir):
    """The metadata saved with the weights: model name and kwargs, classes, preprocessing."""
    from safetensors import safe_open
    path = Path(ckpt_dir) / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"'{ckpt_dir}' has no {WEIGHTS}; it is not a checkpoint")
    try:
        with safe_open(str(path), "pt") as f:
            return json.loads((f.metadata() or {}).get("danlu", "{}"))
    except (SafetensorError, json.JSONDecodeError) as e:
        raise _unreadable(path, e) from None


def load_weights(ckpt_dir, file=WEIGHTS):
    path = Path(ckpt_dir) / file
    if not path.is_file():
        raise FileNotFoundError(f"'{ckpt_dir}' has no {file}; it was saved without that weights file")
    try:
        return load_safetensors(path.read_bytes())
    except SafetensorError as e:
        raise _unreadable(path, e) from None


def load_training_state(ckpt_dir):
    path = Path(ckpt_dir) / STATE
    if not path.is_file():
        raise FileNotFoundError(f"'{ckpt_dir}' has weights but no {STATE}; it cannot be resumed, only evaluated")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, ...: torch raises several types
        raise _unreadable(path, e) from None


def _unreadable(path, error):
    text = " ".join(str(error).split()) or type(error).__name__
    first = text.split(". ")[0].removesuffix(".")  # torch's messages run on for lines
    return ValueError(f"'{path}' cannot be read ({first}); it is truncated or not written by danlu")


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
