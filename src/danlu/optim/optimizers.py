"""Named optimizers. Interim: torch.optim's classes until the framework-built ones land."""
from torch.optim import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, RMSprop

__all__ = ["SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "NAdam"]
