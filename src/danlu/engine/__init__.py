"""The training engine: config, trainer (fit / evaluate / predict), checkpoints, logging, distributed."""
from .build import build_trainer, load_run_config
from .config import TrainConfig
from .inference import evaluate, predict
from .trainer import Interrupted, NonFiniteLossError, Trainer, select_device


def train(config: TrainConfig | None = None, **overrides) -> Trainer:
    """Train from a TrainConfig (or keyword options); returns the finished Trainer."""
    cfg = (config or TrainConfig()).updated(**overrides) if overrides else (config or TrainConfig())
    trainer = build_trainer(cfg)
    trainer.fit()
    return trainer


__all__ = ["Interrupted", "NonFiniteLossError", "TrainConfig", "Trainer", "build_trainer", "evaluate", "load_run_config",
           "predict", "select_device", "train"]
