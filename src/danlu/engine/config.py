"""The training configuration: one dataclass, filled from defaults, a recipe or YAML file, then
command-line options, and saved as `config.yaml` in every run directory."""
import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml


@dataclass
class TrainConfig:
    # what to train on
    model: str = "mlp"
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    img_size: int | None = None          # None: the data set's own image size
    val_split: float | None = None       # None: the test set when the data set has one, else 0.2 of train
    max_train_samples: int | None = None  # cap the training set (quick runs, tests)
    model_kwargs: dict = field(default_factory=dict)
    dataset_kwargs: dict = field(default_factory=dict)
    pretrained: str | None = None
    # how to train
    epochs: int = 25
    batch_size: int = 32                 # per process; under torchrun the global batch is this x world size
    optimizer: str = "adamw"
    lr: float | None = 3e-3
    weight_decay: float = 0.01
    optimizer_kwargs: dict = field(default_factory=dict)
    schedule: str = "cosine"
    warmup_epochs: int = 0
    schedule_kwargs: dict = field(default_factory=dict)
    augment: str = "none"                # 'none', 'flip' or 'crop-flip'
    label_smoothing: float = 0.0
    clip_grad: float | None = None       # max global gradient norm
    bf16: bool = False
    channels_last: bool = False
    device: str = "auto"
    workers: int = 0
    seed: int = 0
    # where results go
    out: str = "runs"
    name: str | None = None
    keep_last: int = 2                   # epoch checkpoints kept besides the best one
    progress: bool = True

    @classmethod
    def fields(cls):
        return {f.name: f for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values, source="config"):
        unknown = sorted(set(values) - set(cls.fields()))
        if unknown:
            import difflib
            hints = [f"{k} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(k, cls.fields(), 1)) else k
                     for k in unknown]
            raise ValueError(f"{source}: unknown option(s) {', '.join(hints)}")
        return cls(**values)

    def to_dict(self):
        return dataclasses.asdict(self)

    def updated(self, **changes):
        return dataclasses.replace(self, **changes)


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


def list_recipes():
    return sorted(p.name.removesuffix(".yaml") for p in resources.files("danlu.recipes").iterdir()
                  if p.name.endswith(".yaml"))


def recipe_path(name):
    path = resources.files("danlu.recipes") / f"{name}.yaml"
    if not path.is_file():
        import difflib
        close = difflib.get_close_matches(name, list_recipes(), n=3, cutoff=0.4)
        raise ValueError(f"unknown recipe '{name}'" + (f"; did you mean {', '.join(close)}?" if close else "")
                         + f" (known: {', '.join(list_recipes()) or 'none'})")
    return Path(str(path))
