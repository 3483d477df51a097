"""danlu.optim: optimizers on the seed's one framework, schedules, and a factory by name."""
from .factory import create_optimizer, create_scheduler, param_groups_weight_decay
from .optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, RMSprop
