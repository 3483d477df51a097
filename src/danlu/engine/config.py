"""The training configuration: one dataclass, filled from defaults, a recipe or YAML file, then
command-line options, and saved as `config.yaml` in every run directory.

Each field carries its command-line help; `danlu train`'s flags are generated from these fields, so a
name, type, default or description is written here once. Names follow timm's `train.py` where the
option is timm's (`--reprob`, `--mixup`, `--model-ema-decay`, ...)."""
import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from ..suggest import did_you_mean


def option(default: object, help: str, **kw) -> dataclasses.Field:
    """A config field with its command-line help."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    # what to train on
    model: str = option("mlp", "registered model name (danlu models lists them)")
    dataset: str = option("digits", "digits (offline default), mnist, cifar10, image-folder, shards, rt-polarity, text-csv")
    data_dir: str | None = option(None, "folder, tarball or shard pattern holding the data set files")
    download: bool = option(False, "download missing data set files")
    img_size: int | None = option(None, "train and evaluate at this image size (default: the data set's, or the model's for streamed images)")
    val_split: float | None = option(None, "hold out this fraction of the training set for validation "
                                           "(default: the test split when the data set has one, else 0.2)")
    max_train_samples: int | None = option(None, "train on a seeded random subset of N samples (quick runs)")
    model_kwargs: dict = option({}, "YAML mapping of extra model arguments, e.g. '{drop_rate: 0.1}'")
    dataset_kwargs: dict = option({}, "YAML mapping of data set arguments, e.g. '{in_memory: false}'")
    pretrained: str | None = option(None, "weights file to start from")
    drop_path: float | None = option(None, "stochastic depth rate (the model's drop_path_rate)")
    # how to train
    epochs: int = option(25, "number of epochs")
    batch_size: int = option(32, "batch size per process; the global batch is this x processes x accum-steps")
    accum_steps: int = option(1, "accumulate gradients over N batches before each optimizer step")
    optimizer: str = option("adamw", "sgd, sgdm, nag, adagrad, adadelta, rmsprop, adam, adamw, amsgrad, nadam, swats")
    lr: float | None = option(3e-3, "learning rate (with --lr-base-batch: the rate at that global batch)")
    lr_base_batch: int | None = option(None, "scale lr by global batch / N, as DeiT (512) does")
    weight_decay: float = option(0.01, "weight decay (biases, norms and position embeddings are exempt)")
    layer_decay: float | None = option(None, "layer-wise lr decay for fine-tuning ViTs, e.g. 0.65")
    optimizer_kwargs: dict = option({}, "YAML mapping of optimizer arguments, e.g. '{momentum: 0.9}'")
    schedule: str = option("cosine", "learning-rate schedule: none, step, multistep, cosine, linear, plateau")
    warmup_epochs: int = option(0, "linear warm-up epochs")
    warmup_lr: float | None = option(None, "learning rate at the start of warm-up (default: lr / (warm-up steps + 1))")
    min_lr: float | None = option(None, "learning rate at the end of the cosine or linear schedule (default 0)")
    schedule_kwargs: dict = option({}, "YAML mapping of schedule arguments")
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy (folded into Mixup's soft targets)")
    clip_grad: float | None = option(None, "clip the global gradient norm to this value")
    # augmentation: per batch on the training device for in-memory sets, else per sample in the loader workers
    augment: str = option("none", "none, flip, crop-flip, or imagenet (timm's RandomResizedCrop pipeline, set by the options below)")
    crop_padding: int | None = option(None, "crop-flip: pad by N pixels, then crop back (a random translate by up to N); "
                                            "default: an eighth of the image size")
    pad_mode: str = option("zeros", "crop-flip padding: zeros or reflect")
    flip_mode: str = option("random", "flip, crop-flip: random (each image, each epoch, with probability 1/2) or "
                                      "alternate (airbench: each image flipped in every other epoch; in-memory sets)")
    crop_scale: list = option([0.08, 1.0], "RandomResizedCrop area range (YAML list)")
    crop_ratio: list = option([0.75, 4 / 3], "RandomResizedCrop aspect-ratio range (YAML list)")
    hflip: float = option(0.5, "horizontal flip probability (imagenet augment)")
    color_jitter: float = option(0.4, "colour jitter strength (imagenet augment; off when --auto-augment is set, as timm)")
    auto_augment: str | None = option(None, "RandAugment config string, e.g. rand-m9-mstd0.5-inc1")
    train_interpolation: str = option("random", "RandomResizedCrop interpolation: random, bilinear, bicubic")
    crop_pct: float | None = option(None, "evaluation centre-crop fraction (default: the model's)")
    repeated_aug: bool = option(False, "repeated augmentation: each image 3 times per epoch (DeiT's RASampler)")
    # augmentation: per batch on the training device
    reprob: float = option(0.0, "random erasing probability per image")
    remode: str = option("pixel", "random erasing fill: pixel, rand or const")
    recount: int = option(1, "random erasing rectangles per erased image")
    mixup: float = option(0.0, "Mixup alpha (0: off)")
    cutmix: float = option(0.0, "CutMix alpha (0: off)")
    mixup_prob: float = option(1.0, "probability of applying Mixup or CutMix to a batch")
    mixup_switch_prob: float = option(0.5, "probability of CutMix instead of Mixup when both are on")
    # weights averaging
    model_ema: bool = option(False, "keep an exponential moving average of the weights, evaluated each epoch")
    model_ema_decay: float = option(0.9998, "EMA decay per optimizer step")
    model_ema_warmup: bool = option(False, "EMA decay warm-up min(decay, (1 + t) / (10 + t))")
    model_ema_interval: int = option(1, "average every N optimizer steps, with decay ** N")
    model_ema_ramp: float = option(0.0, "scale the EMA decay by (step / total steps) ** this power (airbench: 3)")
    model_ema_lookahead: bool = option(False, "copy the EMA back into the trained weights at each update and "
                                              "at the end (airbench's lookahead)")
    tta: str = option("none", "test-time augmentation of the last validation (val_tta_* metrics) and of "
                              "evaluate: none, flip, or flip-translate (airbench's)")
    # speed
    bf16: bool = option(False, "bfloat16 autocast")
    fp16: bool = option(False, "float16 autocast with a gradient scaler")
    compile: bool = option(False, "torch.compile the model (before the DDP wrap)")
    channels_last: bool = option(False, "channels-last memory format")
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    workers: int = option(0, "DataLoader worker processes (files and shards; in-memory sets need none)")
    log_interval: int = option(50, "steps between progress updates and non-finite loss checks (host syncs)")
    seed: int = option(0, "random seed")
    # where results go
    out: str = option("runs", "folder for run directories")
    name: str | None = option(None, "run directory name (default: model-dataset-time)")
    keep_last: int = option(2, "epoch checkpoints kept besides the best one")
    checkpoint_interval: int = option(1, "write the epoch checkpoint every N epochs (the last one and the best are always written)")
    plot_interval: int | None = option(None, "redraw curves.png every N epochs (default: at the end of the run only)")
    progress: bool = option(True, "progress bar")
    threads: int | None = option(None, "torch CPU threads (default: the cores / processes on this machine, "
                                       "unless OMP_NUM_THREADS is set)")
    keep_freed_memory: bool = option(True, "on the CPU, keep freed memory for reuse instead of returning it to the OS at "
                                           "every step (glibc malloc; 1.1-1.3x faster CPU training, the process keeps "
                                           "its peak memory)")

    @classmethod
    def fields(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        unknown = sorted(set(values) - set(cls.fields()))
        if unknown:
            raise ValueError(f"{source}: unknown option(s) {', '.join(_hints(unknown, cls.fields()))}")
        cfg = cls(**values)
        try:
            cfg.check()
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None
        return cfg

    def check(self) -> None:
        """Reject values and combinations that cannot mean what was asked: one sentence naming the option,
        the value and what is accepted. Called by `from_dict` and `updated` (the CLI and Python alike)."""
        from ..data.augment.batch_crop_flip import FLIP_MODES, PAD_MODES
        _check_types(self)
        for name, low in (("epochs", 1), ("batch_size", 1), ("accum_steps", 1), ("img_size", 1), ("recount", 1),
                          ("max_train_samples", 1), ("lr_base_batch", 1), ("log_interval", 1), ("threads", 1),
                          ("model_ema_interval", 1), ("warmup_epochs", 0), ("model_ema_ramp", 0), ("workers", 0),
                          ("keep_last", 0), ("crop_padding", 0), ("checkpoint_interval", 1), ("plot_interval", 1)):
            _at_least(name, getattr(self, name), low)
        for name in ("lr", "clip_grad", "crop_pct", "layer_decay"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be above 0, got {value}")
        for name in ("weight_decay", "warmup_lr", "min_lr", "color_jitter", "mixup", "cutmix"):
            _at_least(name, getattr(self, name), 0)
        for name in ("hflip", "reprob", "mixup_prob", "mixup_switch_prob", "crop_pct", "layer_decay"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name} is a fraction in [0, 1], got {value}")
        for name in ("label_smoothing", "model_ema_decay", "val_split", "drop_path"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        _one_of("augment", self.augment, ("none", "flip", "crop-flip", "imagenet"))
        _one_of("pad_mode", self.pad_mode, PAD_MODES)
        _one_of("flip_mode", self.flip_mode, FLIP_MODES)
        _one_of("tta", self.tta, ("none", "flip", "flip-translate"))
        _one_of("remode", self.remode, ("pixel", "rand", "const"))
        _one_of("train_interpolation", self.train_interpolation, ("random", "bilinear", "bicubic"))
        _check_range_pair("crop_scale", self.crop_scale, high=1.0)
        _check_range_pair("crop_ratio", self.crop_ratio)
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) is longer than the run (epochs {self.epochs}); "
                             "lower --warmup-epochs or raise --epochs")
        if self.bf16 and self.fp16:
            raise ValueError("bf16 and fp16 are both on; choose one autocast dtype")
        if (self.mixup > 0 or self.cutmix > 0) and self.batch_size < 2:
            raise ValueError(f"Mixup/CutMix mix each batch with itself flipped, so they need a batch size of at least 2, "
                             f"got {self.batch_size}; raise --batch-size or set --mixup 0 --cutmix 0")
        _check_names(self)
        if self.device != "auto":
            _check_device(self.device)
        if Path(self.out).is_file():
            raise ValueError(f"out '{self.out}' is a file; --out names the folder that holds run directories")
        _check_kwargs(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def updated(self, **changes) -> "TrainConfig":
        unknown = sorted(set(changes) - set(self.fields()))
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(_hints(unknown, self.fields()))}")
        cfg = dataclasses.replace(self, **changes)
        cfg.check()
        return cfg


# options a resumed run cannot change: its model, data, batches and state were built from them
FIXED_ON_RESUME = ("model", "dataset", "dataset_kwargs", "model_kwargs", "img_size", "val_split", "max_train_samples",
                   "batch_size", "accum_steps", "seed", "drop_path", "pretrained", "model_ema", "repeated_aug",
                   "optimizer", "layer_decay", "schedule", "out", "name")
KWARGS = ("model_kwargs", "dataset_kwargs", "optimizer_kwargs", "schedule_kwargs")


def _hints(unknown, valid):
    return [f"{k}{did_you_mean(k, valid)}" for k in unknown]


def _check_types(cfg):
    hints = typing.get_type_hints(TrainConfig)
    for name in TrainConfig.fields():
        value, kinds = getattr(cfg, name), typing.get_args(hints[name]) or (hints[name],)
        if value is None and type(None) in kinds:
            continue
        ok = any(isinstance(value, k) and not (isinstance(value, bool) and k is not bool) for k in kinds if k is not type(None))
        ok = ok or (float in kinds and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            wanted = " or ".join("null" if k is type(None) else {dict: "a mapping", list: "a list"}.get(k, k.__name__)
                                 for k in kinds)
            raise ValueError(f"{name} must be {wanted}, got {value!r}")


def _at_least(name, value, low):
    if value is not None and value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")


def _one_of(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} '{value}'{did_you_mean(value, choices)} is not one of {', '.join(choices)}")


def _check_range_pair(name, value, high=None):
    ok = (len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
          and 0 < value[0] <= value[1] and (high is None or value[1] <= high))
    if not ok:
        limit = f" <= {high}" if high else ""
        raise ValueError(f"{name} must be a list [low, high] with 0 < low <= high{limit}, got {value}")


def _check_device(name):
    import torch
    try:
        torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"device '{name}' is not a device name; use auto, cpu, cuda or cuda:N") from None


def _check_names(cfg):
    """Model, data set, optimizer and schedule names (each registry's own sentence, with close names)."""
    from ..data.registry import dataset_builder
    from ..models import get_model_config
    from ..optim import OPTIMIZERS, SCHEDULES
    get_model_config(cfg.model)
    dataset_builder(cfg.dataset)
    _one_of("optimizer", cfg.optimizer.lower(), list(OPTIMIZERS))
    _one_of("schedule", cfg.schedule.lower(), SCHEDULES)


def _check_kwargs(cfg):
    """Unknown keys in the *_kwargs mappings, against the signature of what receives them."""
    from ..optim import OPTIMIZERS, SCHEDULES
    checks = (("model_kwargs", cfg.model_kwargs, lambda: _model_parameters(cfg.model)),
              ("dataset_kwargs", cfg.dataset_kwargs, lambda: _dataset_parameters(cfg.dataset)),
              ("optimizer_kwargs", cfg.optimizer_kwargs,
               lambda: _parameters(OPTIMIZERS[cfg.optimizer.lower()][0], ("params", "lr", "weight_decay"))
               if cfg.optimizer.lower() in OPTIMIZERS else None),
              ("schedule_kwargs", cfg.schedule_kwargs,
               lambda: _schedule_parameters(cfg.schedule) if cfg.schedule.lower() in SCHEDULES else None))
    for option, given, valid in checks:
        if not given:
            continue
        valid = valid()
        unknown = sorted(set(given) - set(valid)) if valid is not None else []
        if unknown:
            raise ValueError(f"{option}: unknown key(s) {', '.join(_hints(unknown, valid))}; "
                             f"accepted: {', '.join(sorted(valid)) or 'none'}")


def _parameters(fn, exclude=()):
    """Keyword parameters of `fn` (a class: its __init__), or None when it takes any (**kwargs)."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name not in ("self", *exclude) and p.kind is not p.VAR_POSITIONAL]


@functools.cache
def _model_parameters(name):
    import torch

    from ..models import create_model
    from ..models.registry import _ENTRYPOINTS, get_model_config
    get_model_config(name)  # an unknown name: its own sentence
    own = _parameters(_ENTRYPOINTS[name])
    if own is not None:
        return own
    with torch.device("meta"):
        return _parameters(type(create_model(name)))


def _dataset_parameters(name):
    from ..data.registry import dataset_builder
    return _parameters(dataset_builder(name), ("root", "download"))


def _schedule_parameters(name):
    from ..optim import schedules
    fn = {"none": None, "step": schedules.step_decay, "multistep": schedules.multistep_decay,
          "cosine": schedules.cosine_decay, "linear": schedules.linear_decay, "plateau": schedules.Plateau}[name.lower()]
    fixed = ("optimizer", "epochs", "steps_per_epoch", "warmup_epochs", "warmup_start")
    return [] if fn is None else _parameters(fn, fixed)


def merge_options(base: dict, given: dict) -> dict:
    """`given` over `base`, the *_kwargs mappings key by key (a recipe's keys stay unless given)."""
    merged = {**base, **given}
    for key in KWARGS:
        if isinstance(base.get(key), dict) and isinstance(given.get(key), dict):
            merged[key] = {**base[key], **given[key]}
    return merged


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file '{path}' does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"config file '{path}' is not valid YAML ({e})") from None
    if not isinstance(values, dict):
        raise ValueError(f"config file '{path}' must hold a mapping of option: value")
    return values


def read_options(path: str | Path) -> dict:
    """The options in a recipe or config file; `extends: RECIPE` starts from that recipe's options."""
    values = read_yaml(path)
    parent = values.pop("extends", None)
    if parent is None:
        return values
    if not isinstance(parent, str):
        raise ValueError(f"'{path}': extends must name a recipe (danlu train --list-recipes), got {parent!r}")
    return merge_options(read_options(recipe_path(parent)), values)


def list_recipes(hidden: bool = False) -> list[str]:
    """Recipe names; those starting with '_' only hold settings that others extend."""
    return sorted(p.name.removesuffix(".yaml") for p in resources.files("danlu.recipes").iterdir()
                  if p.name.endswith(".yaml") and (hidden or not p.name.startswith("_")))


def recipe_path(name: str) -> Path:
    path = resources.files("danlu.recipes") / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown recipe '{name}'{did_you_mean(name, list_recipes(hidden=True))}; "
                         f"known: {', '.join(list_recipes()) or 'none'}")
    return Path(str(path))


def resolve_config(recipe: str | None = None, config_file: str | Path | None = None, resume: str | Path | None = None,
                   **given) -> TrainConfig:
    """The run's config: defaults < recipe < config file < options given; with `resume`, the run's
    saved config < options given."""
    if resume:
        from .build import load_run_config
        saved = load_run_config(resume)
        changes = merge_options(saved.to_dict(), given)
        fixed = [k for k in FIXED_ON_RESUME if k in given and changes[k] != getattr(saved, k)]
        if fixed:
            raise ValueError(f"a resumed run keeps its {', '.join(fixed)} (the run was built with "
                             f"{', '.join(f'{k}={getattr(saved, k)!r}' for k in fixed)}); drop those options, "
                             "or start a new run without --resume")
        if saved.schedule == "plateau" and changes["lr"] != saved.lr:
            raise ValueError("the plateau schedule's reduced rates are part of the run's state, so --lr cannot "
                             "change on --resume; start a new run instead")
        return saved.updated(**{k: changes[k] for k in given})
    values = {}
    if recipe:
        values = merge_options(values, read_options(recipe_path(recipe)))
    if config_file:
        values = merge_options(values, read_options(config_file))
    return TrainConfig.from_dict(merge_options(values, given), config_file or recipe or "options")
