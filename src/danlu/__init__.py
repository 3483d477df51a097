"""danlu (丹炉): global-receptive-field vision models, optimizers on one framework, a training engine."""
from .engine import TrainConfig, Trainer, evaluate, predict, train
from .models import ViT, create_model, get_model_config, list_models, load_pretrained, register_model
from .optim import create_optimizer, create_scheduler

__version__ = "0.1.0"

__all__ = ["TrainConfig", "Trainer", "ViT", "create_model", "create_optimizer", "create_scheduler", "evaluate",
           "get_model_config", "list_models", "load_pretrained", "predict", "register_model", "train"]
