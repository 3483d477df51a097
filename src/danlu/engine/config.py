"""The training configuration: one dataclass, filled from defaults, a recipe or YAML file, then
command-line options, and saved as `config.yaml` in every run directory.

Each field carries its command-line help; `danlu train`'s flags are generated from these fields, so a
name, type, default or description is written here once. Names follow timm's `train.py` where the
option is timm's (`--reprob`, `--mixup`, `--model-ema-decay`, ...)."""
import dataclasses
import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml


def option(default, help, **kw):
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
    schedule: str = option("cosine", "learning-rate schedule: none, step, multistep, cosine, plateau")
    warmup_epochs: int = option(0, "linear warm-up epochs")
    warmup_lr: float | None = option(None, "learning rate at the start of warm-up (default: lr / (warm-up steps + 1))")
    min_lr: float | None = option(None, "learning rate at the end of the cosine schedule (default 0)")
    schedule_kwargs: dict = option({}, "YAML mapping of schedule arguments")
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy (folded into Mixup's soft targets)")
    clip_grad: float | None = option(None, "clip the global gradient norm to this value")
    # augmentation: per sample in the loader workers
    augment: str = option("none", "none, flip, crop-flip, or imagenet (timm's RandomResizedCrop pipeline, set by the options below)")
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
    # speed
    bf16: bool = option(False, "bfloat16 autocast")
    fp16: bool = option(False, "float16 autocast with a gradient scaler")
    compile: bool = option(False, "torch.compile the model (before the DDP wrap)")
    channels_last: bool = option(False, "channels-last memory format")
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    workers: int = option(0, "DataLoader worker processes")
    log_interval: int = option(50, "steps between progress updates and non-finite loss checks (host syncs)")
    seed: int = option(0, "random seed")
    # where results go
    out: str = option("runs", "folder for run directories")
    name: str | None = option(None, "run directory name (default: model-dataset-time)")
    keep_last: int = option(2, "epoch checkpoints kept besides the best one")
    progress: bool = option(True, "progress bar")

    @classmethod
    def fields(cls):
        return {f.name: f for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values, source="config"):
        unknown = sorted(set(values) - set(cls.fields()))
        if unknown:
            hints = [f"{k} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(k, cls.fields(), 1)) else k
                     for k in unknown]
            raise ValueError(f"{source}: unknown option(s) {', '.join(hints)}")
        cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self):
        """Reject combinations that cannot mean what was asked."""
        if self.accum_steps < 1:
            raise ValueError(f"accum_steps must be at least 1, got {self.accum_steps}; use 1 for no accumulation")
        if self.bf16 and self.fp16:
            raise ValueError("bf16 and fp16 are both on; choose one autocast dtype")
        if (self.mixup > 0 or self.cutmix > 0) and self.batch_size < 2:
            raise ValueError(f"Mixup/CutMix mix each batch with itself flipped, so they need a batch size of at least 2, "
                             f"got {self.batch_size}; raise --batch-size or set --mixup 0 --cutmix 0")
        if self.log_interval < 1:
            raise ValueError(f"log_interval must be at least 1, got {self.log_interval}")

    def to_dict(self):
        return dataclasses.asdict(self)

    def updated(self, **changes):
        cfg = dataclasses.replace(self, **changes)
        cfg.check()
        return cfg


def read_yaml(path):
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


def read_options(path):
    """The options in a recipe or config file; `extends: RECIPE` starts from that recipe's options."""
    values = read_yaml(path)
    parent = values.pop("extends", None)
    if parent is None:
        return values
    if not isinstance(parent, str):
        raise ValueError(f"'{path}': extends must name a recipe (danlu train --list-recipes), got {parent!r}")
    return {**read_options(recipe_path(parent)), **values}


def list_recipes(hidden=False):
    """Recipe names; those starting with '_' only hold settings that others extend."""
    return sorted(p.name.removesuffix(".yaml") for p in resources.files("danlu.recipes").iterdir()
                  if p.name.endswith(".yaml") and (hidden or not p.name.startswith("_")))


def recipe_path(name):
    path = resources.files("danlu.recipes") / f"{name}.yaml"
    if not path.is_file():
        close = difflib.get_close_matches(name, list_recipes(hidden=True), n=3, cutoff=0.4)
        raise ValueError(f"unknown recipe '{name}'" + (f"; did you mean {', '.join(close)}?" if close else "")
                         + f" (known: {', '.join(list_recipes()) or 'none'})")
    return Path(str(path))


def resolve_config(recipe=None, config_file=None, resume=None, **given):
    """The run's config: defaults < recipe < config file < options given; with `resume`, the run's
    saved config < options given."""
    if resume:
        from .build import load_run_config
        return load_run_config(resume).updated(**given)
    values = {}
    if recipe:
        values.update(read_options(recipe_path(recipe)))
    if config_file:
        values.update(read_options(config_file))
    return TrainConfig.from_dict({**values, **given}, config_file or recipe or "options")
