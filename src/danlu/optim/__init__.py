"""danlu.optim: optimizers on the seed's one framework, SWATS, schedules, and a factory by name.

Each optimizer is a `torch.optim.Optimizer` (torch's class names, arguments and defaults) built as a chain of the
pieces in `framework`: weight decay -> first moment m_t -> second moment V_t -> descent w -= lr m_t / sqrt(V_t).
"""
from . import framework
from .factory import OPTIMIZERS, SCHEDULES, create_optimizer, create_scheduler, param_groups_weight_decay
from .framework import ChainOptimizer
from .layer_decay import param_groups_layer_decay
from .optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, RMSprop
from .schedules import Plateau, WarmupDecay, cosine_decay, multistep_decay, step_decay
from .swats import SWATS

__all__ = ["SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "NAdam", "SWATS", "ChainOptimizer",
           "framework", "create_optimizer", "create_scheduler", "param_groups_weight_decay",
           "param_groups_layer_decay", "OPTIMIZERS",
           "SCHEDULES", "WarmupDecay", "Plateau", "step_decay", "multistep_decay", "cosine_decay"]
