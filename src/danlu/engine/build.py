"""From a TrainConfig to a ready Trainer: data set, splits, transforms, model, run directory."""
import dataclasses
import inspect
import json
import time
from pathlib import Path

import torch
from torch.utils.data import IterableDataset, Subset

from ..data import DataBundle, build_transforms, create_dataset, split_dataset
from ..data.augment.batch_crop_flip import BatchCropFlip
from ..data.augment.pipeline import build_eval_transform, build_train_transform
from ..data.datasets import SampleSeeded, with_transform
from ..data.in_memory import InMemoryImages, as_in_memory
from ..data.registry import dataset_builder
from ..data.transforms import crop_padding
from ..models import create_model, get_model_config
from .config import TrainConfig
from .distributed import barrier, configure_threads, init_distributed, is_main
from .host_memory import keep_freed_memory
from .trainer import Trainer, select_device


def is_streamed(bundle: DataBundle) -> bool:
    """Images decoded per sample at their own sizes (no one stored size)."""
    return bundle.input_size is None or None in bundle.input_size


def _model_cfg_value(cfg, key, default):
    return getattr(get_model_config(cfg.model), key, default)


def _crop_pct(cfg):
    return cfg.crop_pct or _model_cfg_value(cfg, "crop_pct", 0.875)


def _image_transforms(cfg, bundle, img_size):
    """(train, eval) per-sample transforms: danlu's tensor ones for in-memory sets, timm's PIL pipeline for
    `augment: imagenet` and for streamed images (decoded at their own size, so they must be cropped)."""
    mean, std = bundle.meta["mean"], bundle.meta["std"]
    streamed = is_streamed(bundle)
    if cfg.augment != "imagenet" and not streamed:
        if cfg.flip_mode == "alternate" and cfg.augment != "none":
            raise ValueError("flip_mode 'alternate' flips each image by epoch, which only the in-memory path does: "
                             "images stored as tensors and trained at their own size; drop --img-size or use "
                             "--flip-mode random")
        return (build_transforms(img_size, mean, std, cfg.augment, cfg.crop_padding, cfg.pad_mode),
                build_transforms(img_size, mean, std, "none"))
    if not isinstance(img_size, int):
        raise ValueError(f"the imagenet augmentation and streamed image sets need a square --img-size, got {img_size}")
    eval_transform = build_eval_transform(img_size, _crop_pct(cfg), _model_cfg_value(cfg, "interpolation", "bicubic"))
    if streamed and cfg.augment not in ("none", "imagenet"):
        raise ValueError(f"augment '{cfg.augment}' is for in-memory images; streamed images take 'imagenet' "
                         "(RandomResizedCrop ...) or 'none' (the evaluation resize and centre crop)")
    if cfg.augment != "imagenet":
        return eval_transform, eval_transform
    train_transform = build_train_transform(img_size, tuple(cfg.crop_scale), tuple(cfg.crop_ratio), cfg.hflip,
                                            cfg.color_jitter, cfg.auto_augment, cfg.train_interpolation, mean)
    return train_transform, eval_transform if streamed else build_transforms(img_size, mean, std, "none")


def _batch_augment(cfg, size, length):
    """The per-batch form of `augment` 'flip' or 'crop-flip' for a training set of `length` images."""
    if cfg.augment == "none":
        return None
    padding = crop_padding(size, cfg.crop_padding) if cfg.augment == "crop-flip" else 0
    if cfg.pad_mode == "reflect" and padding >= min(size):
        raise ValueError(f"crop_padding {padding} with pad_mode reflect must be smaller than the images "
                         f"({size[0]}x{size[1]}); lower --crop-padding or use --pad-mode zeros")
    return BatchCropFlip(padding, cfg.pad_mode, cfg.flip_mode, length, cfg.seed)


def _in_memory(cfg, bundle, train, val, img_size):
    """(train, val) as InMemoryImages when the training images are stored tensors at the size trained
    and the augmentation is one the in-memory path does per batch; else None. Their items are the
    validation pipeline's (normalised), as the DataLoader path's validation items are."""
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if cfg.augment == "imagenet" or is_streamed(bundle) or size != tuple(bundle.input_size[1:]):
        return None
    stored, held_out = as_in_memory(train), as_in_memory(val)
    if stored is None or held_out is None:
        return None
    items = build_transforms(img_size, bundle.meta["mean"], bundle.meta["std"], "none")
    return (InMemoryImages(stored.images, stored.labels, _batch_augment(cfg, size, len(stored)), items),
            InMemoryImages(held_out.images, held_out.labels, None, items))


def build_data(cfg: TrainConfig) -> tuple:
    """(bundle, train set, validation set, image size or None) with transforms applied: in-memory image
    sets as InMemoryImages (the trainer draws their batches by index), others per sample."""
    kwargs = dict(cfg.dataset_kwargs)
    if cfg.img_size and "img_size" in inspect.signature(dataset_builder(cfg.dataset)).parameters:
        kwargs.setdefault("img_size", (cfg.img_size, cfg.img_size))  # in-memory folders resize while decoding
    bundle = create_dataset(cfg.dataset, root=cfg.data_dir, download=cfg.download, **kwargs)
    if len(bundle.classes) < 2:
        raise ValueError(f"data set '{cfg.dataset}' has {len(bundle.classes)} class(es) "
                         f"({', '.join(map(str, bundle.classes))}); a classifier needs at least two: add a class "
                         "(a folder or label value) to the data")
    if len(bundle.train) == 0:
        raise ValueError(f"the training set of '{cfg.dataset}' at '{cfg.data_dir}' is empty; check --data-dir")
    if bundle.input_kind == "image" and is_streamed(bundle):
        # photographs have no normalisation of their own: use the model's, as timm's resolve_data_config does
        model_cfg = get_model_config(cfg.model)
        bundle = dataclasses.replace(bundle, meta={**bundle.meta, "mean": model_cfg.mean, "std": model_cfg.std})
    train, val = bundle.train, bundle.test
    if isinstance(train, IterableDataset):  # a stream orders itself: from the run's seed, a batch per worker in turn
        train.seed, train.batch_size = cfg.seed, cfg.batch_size
    val_split = cfg.val_split if cfg.val_split is not None else (None if val is not None else 0.2)
    if val_split:
        train, val = split_dataset(train, val_split, cfg.seed)
    if cfg.max_train_samples and cfg.max_train_samples < len(train):
        # a seeded random subset: data sets stored in class order would otherwise lose whole classes
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))
        train = Subset(train, sorted(order[:cfg.max_train_samples].tolist()))
    img_size = None
    if bundle.input_kind == "image":
        stored = None if is_streamed(bundle) else tuple(bundle.input_size[1:])
        img_size = cfg.img_size or stored or get_model_config(cfg.model).input_size[-1]
        in_memory = _in_memory(cfg, bundle, train, val, img_size)
        if in_memory is not None:
            return bundle, *in_memory, img_size
        train_transform, eval_transform = _image_transforms(cfg, bundle, img_size)
        train, val = with_transform(train, train_transform), with_transform(val, eval_transform)
        if not isinstance(train, IterableDataset):
            train = SampleSeeded(train)  # augmentations draw from `random` and torch: seeded per sample
    return bundle, train, val, img_size


def model_kwargs_for(cfg: TrainConfig, bundle: DataBundle, img_size) -> dict:
    """Keyword arguments that fit the model to the data: classes, channels and size of images; for
    tokens the vocabulary's size and its word vectors (`embedding`) when the data set has them, and one
    logit for two classes. `cfg.model_kwargs` override what the data implies."""
    if bundle.input_kind == "image":
        channels = bundle.input_size[0] if bundle.input_size else 3
        kwargs = {**cfg.model_kwargs, "num_classes": len(bundle.classes), "in_chans": channels,
                  "img_size": img_size if isinstance(img_size, int) else list(img_size)}
    else:
        meta = bundle.meta
        kwargs = {"num_classes": 1 if len(bundle.classes) == 2 else len(bundle.classes)}
        if "vocab" in meta:
            kwargs["vocab_size"] = len(meta["vocab"])
        if meta.get("embedding") is not None:  # the width is the vectors' (saved, so predict rebuilds the shapes)
            kwargs.update(embedding=meta["embedding"], embed_dim=meta["embedding"].shape[1])
        kwargs.update(cfg.model_kwargs)
    if cfg.drop_path is not None:
        kwargs["drop_path_rate"] = cfg.drop_path
    return kwargs


def model_info(cfg: TrainConfig, bundle: DataBundle, kwargs: dict, img_size) -> dict:
    """What `evaluate` / `predict` need to rebuild the model from its weights file alone (JSON)."""
    evaluation = {}
    if bundle.input_kind == "image" and is_streamed(bundle):  # validation images were resized and centre-cropped
        evaluation = {"eval_crop_pct": _crop_pct(cfg), "eval_interpolation": _model_cfg_value(cfg, "interpolation", "bicubic")}
    return {**evaluation, "model": cfg.model, "model_kwargs": _jsonable(kwargs), "classes": list(bundle.classes),
            "input_kind": bundle.input_kind, "img_size": img_size,
            "mean": bundle.meta.get("mean"), "std": bundle.meta.get("std"), "dataset": cfg.dataset,
            "data_meta": _jsonable(bundle.meta)}


def _jsonable(d):
    # tensors (e.g. word vectors passed as an embedding) live in the weights, not in the metadata
    out = {}
    for k, v in d.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            continue
    return out


def make_run_dir(cfg: TrainConfig) -> Path:
    """A new run directory under `cfg.out` (config.yaml is written when training starts); a name that
    already holds a run's checkpoints is refused, never overwritten."""
    name = cfg.name or f"{cfg.model}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(cfg.out) / name
    if any((run_dir / "checkpoints").glob("*/model.safetensors")):
        raise ValueError(f"run directory '{run_dir}' already holds a run; continue it with --resume {run_dir} "
                         "or choose another --name")
    if is_main():
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ValueError(f"cannot create the run directory '{run_dir}': a file is in the way; "
                             "choose another --out or --name") from None
    barrier()
    return run_dir


def load_run_config(run_dir) -> TrainConfig:
    from .config import read_yaml
    values = read_yaml(Path(run_dir) / "config.yaml")
    if values.get("custom_model"):
        raise ValueError(f"run '{run_dir}' trained a custom model ({values['custom_model']}) that danlu cannot rebuild "
                         "by name; build it yourself, load the weights with danlu.load_pretrained and use "
                         "danlu.Trainer(...).resume(run_dir)")
    return TrainConfig.from_dict(values, f"{run_dir}/config.yaml")


def build_trainer(cfg: TrainConfig, resume=None) -> Trainer:
    """A Trainer for `cfg`; with `resume` (a run directory) it continues that run in place."""
    if cfg.threads:
        configure_threads(cfg.threads)
    device = select_device(cfg.device)
    if device.type == "cpu" and cfg.keep_freed_memory:
        keep_freed_memory()
    _, _, local_rank = init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    torch.manual_seed(cfg.seed)
    bundle, train, val, img_size = build_data(cfg)
    if get_model_config(cfg.model).input_kind != bundle.input_kind:
        raise ValueError(f"model '{cfg.model}' takes {get_model_config(cfg.model).input_kind} but data set "
                         f"'{cfg.dataset}' gives {bundle.input_kind}; pick a matching model or data set")
    kwargs = model_kwargs_for(cfg, bundle, img_size)
    model = create_model(cfg.model, pretrained=cfg.pretrained or False, **kwargs)
    run_dir = Path(resume) if resume else make_run_dir(cfg)
    trainer = Trainer(model, train, val, cfg, run_dir, model_info(cfg, bundle, kwargs, img_size), device=device)
    if resume:
        trainer.resume(resume)
    return trainer
