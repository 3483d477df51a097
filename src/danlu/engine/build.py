"""From a TrainConfig to a ready Trainer: data set, splits, transforms, model, run directory."""
import json
import time
from pathlib import Path

import torch
import yaml
from torch.utils.data import Subset

from ..data import Transformed, build_transforms, create_dataset, split_dataset
from ..models import create_model, get_model_config
from .config import TrainConfig
from .distributed import barrier, init_distributed, is_main
from .trainer import Trainer, select_device


def build_data(cfg):
    """(bundle, train set, validation set, image size or None) with transforms applied."""
    bundle = create_dataset(cfg.dataset, root=cfg.data_dir, download=cfg.download, **cfg.dataset_kwargs)
    train, val = bundle.train, bundle.test
    val_split = cfg.val_split if cfg.val_split is not None else (None if val is not None else 0.2)
    if val_split:
        train, val = split_dataset(train, val_split, cfg.seed)
    if cfg.max_train_samples and cfg.max_train_samples < len(train):
        # a seeded random subset: data sets stored in class order would otherwise lose whole classes
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))
        train = Subset(train, sorted(order[:cfg.max_train_samples].tolist()))
    img_size = None
    if bundle.input_kind == "image":
        img_size = cfg.img_size or tuple(bundle.input_size[1:])
        mean, std = bundle.meta["mean"], bundle.meta["std"]
        train = Transformed(train, build_transforms(img_size, mean, std, cfg.augment))
        val = Transformed(val, build_transforms(img_size, mean, std, "none"))
    return bundle, train, val, img_size


def model_kwargs_for(cfg, bundle, img_size):
    """Keyword arguments that fit the model to the data: classes, channels, size, vocabulary."""
    kwargs = {**bundle.meta.get("model_kwargs", {}), **cfg.model_kwargs}
    if bundle.input_kind == "image":
        kwargs.update(num_classes=len(bundle.classes), in_chans=bundle.input_size[0],
                      img_size=img_size if isinstance(img_size, int) else list(img_size))
    else:
        kwargs.setdefault("num_classes", 1 if len(bundle.classes) == 2 else len(bundle.classes))
    return kwargs


def model_info(cfg, bundle, kwargs, img_size):
    """What `evaluate` / `predict` need to rebuild the model from its weights file alone (JSON)."""
    return {"model": cfg.model, "model_kwargs": _jsonable(kwargs), "classes": list(bundle.classes),
            "input_kind": bundle.input_kind, "img_size": img_size,
            "mean": bundle.meta.get("mean"), "std": bundle.meta.get("std"), "dataset": cfg.dataset,
            "data_meta": _jsonable({k: v for k, v in bundle.meta.items() if k != "model_kwargs"})}


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


def make_run_dir(cfg):
    name = cfg.name or f"{cfg.model}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(cfg.out) / name
    if is_main():
        run_dir.mkdir(parents=True, exist_ok=cfg.name is not None)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    barrier()
    return run_dir


def load_run_config(run_dir):
    from .config import read_yaml
    return TrainConfig.from_dict(read_yaml(Path(run_dir) / "config.yaml"), f"{run_dir}/config.yaml")


def build_trainer(cfg, resume=None):
    """A Trainer for `cfg`; with `resume` (a run directory) it continues that run in place."""
    device = select_device(cfg.device)
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
