"""Using a trained checkpoint: rebuild its model, evaluate it on its run's validation data, predict
the classes of image files, texts or a batch. `danlu evaluate` / `danlu predict` only call these."""
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.image_files import load_images, read_image
from ..data.transforms import Normalize, ToFloat
from ..models import create_model
from . import checkpoint as ckpt
from . import precision
from .batch import BatchTransform
from .losses import compute_loss, predicted_labels, probabilities
from .metrics import Meter
from .sampler import EpochSampler
from .tta import tta_logits


def load_checkpoint_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """(model in eval mode, model info) from a run directory, checkpoint directory or weights file."""
    ckpt_dir = ckpt.resolve_checkpoint(path)
    info = ckpt.read_model_info(ckpt_dir)
    if "model" not in info:
        raise ValueError(f"'{ckpt_dir}' holds a model that danlu cannot rebuild by name (trained with danlu.Trainer "
                         f"on a model not built by create_model); build it yourself and load {ckpt.WEIGHTS} with "
                         "danlu.load_pretrained")
    model = create_model(info["model"], **info["model_kwargs"])
    model.load_state_dict(ckpt.load_weights(ckpt_dir))
    return model.to(device).eval(), info


def topk_for(model: nn.Module) -> tuple[int, ...]:
    """Top-5 accuracy too when the model has at least 5 classes."""
    return (1, 5) if getattr(model, "num_classes", 0) >= 5 else (1,)


@torch.no_grad()
def evaluate_batches(model: nn.Module, batches: Iterable, prepare: Callable, autocast: Callable,
                     ks: tuple[int, ...] = (1,), return_predictions: bool = False, tta: str = "none"
                     ) -> tuple[Meter, tuple[torch.Tensor, torch.Tensor] | None]:
    """Meter and, with `return_predictions`, (targets, probabilities) of `model` over `batches` of
    (x, y); `prepare(x, y)` moves and normalises a batch, `autocast()` is the context to run in, `tta`
    the test-time augmentation (see `tta.py`)."""
    model.eval()
    meter, targets, probs = Meter(ks), [], []
    for x, y in batches:
        x, y = prepare(x, y)
        with autocast():
            logits = tta_logits(model, x, tta)
        meter.update(compute_loss(logits, y), logits, y)
        if return_predictions:
            targets.append(y.cpu())
            probs.append(probabilities(logits.float()).cpu())
    return meter, (torch.cat(targets), torch.cat(probs)) if return_predictions else None


@dataclass
class Evaluation:
    checkpoint: Path
    metrics: dict          # loss, acc1[, acc5]
    targets: torch.Tensor
    labels: torch.Tensor   # predicted
    probs: torch.Tensor
    dataset: object        # the validation set evaluated
    info: dict             # the checkpoint's model info (classes, preprocessing)


def evaluate(run_or_checkpoint: str | Path, best: bool = False, data_dir: str | Path | None = None,
             batch_size: int = 256, device: str | torch.device = "cpu") -> Evaluation:
    """Loss and accuracy of a run's checkpoint (its last, or its best) on the run's validation data,
    built exactly as in training; no optimizer is built."""
    from .build import build_data, load_run_config

    ckpt_dir = ckpt.resolve_checkpoint(run_or_checkpoint)
    if best:
        ckpt_dir = ckpt_dir.parent / ckpt.BEST
    run_dir = ckpt_dir.parent.parent
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"'{ckpt_dir}' is not inside a run directory with config.yaml; "
                                "evaluate needs the run's data settings")
    cfg = load_run_config(run_dir).updated(batch_size=batch_size, **({"data_dir": data_dir} if data_dir else {}))
    _, _, val, _ = build_data(cfg)
    model, info = load_checkpoint_model(ckpt_dir, device)
    normalize = BatchTransform(info.get("mean"), info.get("std")).normalize
    loader = DataLoader(val, batch_size=batch_size, sampler=EpochSampler(len(val), shuffle=False, pad=False),
                        num_workers=cfg.workers)
    meter, (targets, probs) = evaluate_batches(model, loader, lambda x, y: (normalize(x.to(device)), y.to(device)),
                                               lambda: precision.autocast(torch.device(device).type, cfg.bf16), topk_for(model),
                                               return_predictions=True, tta=cfg.tta)
    return Evaluation(ckpt_dir, meter.reduced(), targets, predicted_labels(probs), probs, val, info)


def image_batch(paths: Sequence[str | Path], info: dict) -> torch.Tensor:
    """Normalised (N, C, H, W) inputs for the model from image files, prepared as its validation images
    were: resized (small in-memory sets) or resized and centre-cropped (the ImageNet pipeline)."""
    channels = info["model_kwargs"].get("in_chans", 3)
    if not info.get("eval_crop_pct"):
        return load_images(paths, info["img_size"], info["mean"], info["std"], channels)
    from ..data.augment.pipeline import build_eval_transform
    crop = build_eval_transform(info["img_size"], info["eval_crop_pct"], info.get("eval_interpolation", "bicubic"))
    prepare = _then_normalize(crop, info)
    return torch.stack([prepare(read_image(p, channels)) for p in paths])


def _then_normalize(transform, info):
    to_float, norm = ToFloat(), Normalize(info["mean"], info["std"])
    return lambda x: norm(to_float(transform(x)))


def predict(checkpoint: str | Path, files: Iterable[str | Path] | None = None, texts: Iterable[str] | None = None,
            batch: torch.Tensor | None = None, device: str | torch.device = "cpu"
            ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(predicted labels, probabilities (N, classes), class names) for image files, texts (a text
    model) or a ready input batch tensor."""
    model, info = load_checkpoint_model(checkpoint, device)
    if batch is None and info.get("input_kind") == "tokens":
        if not texts:
            raise ValueError('this is a text model: give the texts to classify (--text "...")')
        from ..data.text import encode_for_model
        batch = encode_for_model(list(texts), info.get("data_meta", {}))
    elif batch is None:
        if not files:
            raise ValueError("this is an image model: give one or more image files to classify")
        batch = image_batch(list(files), info)
    with torch.no_grad():
        probs = probabilities(model(batch.to(device)).float()).cpu()  # one logit (binary) becomes two columns
    return predicted_labels(probs), probs, info["classes"]
