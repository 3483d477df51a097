"""Learning-rate schedules on torch's scheduler protocol.

Every schedule here is a `torch.optim.lr_scheduler.LRScheduler` (or `ReduceLROnPlateau`), so it has `step()`,
`get_last_lr()`, `state_dict()` / `load_state_dict()` and mixes with torch's own schedulers. Each also carries
`interval`: `'step'` means call `.step()` after every optimizer step, `'epoch'` means once per epoch (a plateau
schedule gets `.step(val_loss)`). Step-interval schedules count optimizer steps but are specified in epochs, so
decays land on epoch boundaries whatever the batch size.
"""
import math
from collections.abc import Callable, Iterable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau


def _check_nonneg_int(name, value):
    if not (isinstance(value, int) and value >= 0):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")


class WarmupDecay(LRScheduler):
    """Linear warm-up over `warmup_steps`, then `factor(t)` times the base lr, `t` counted after warm-up.

    The warm-up starts at `warmup_start` x base lr (not 0, so the first step already moves the weights) and
    reaches the base lr at step `warmup_steps`.
    """

    interval = "step"

    def __init__(self, optimizer: Optimizer, factor: Callable[[int], float], warmup_steps: int = 0,
                 warmup_start: float = 0.0, last_epoch: int = -1) -> None:
        _check_nonneg_int("warmup_steps", warmup_steps)
        self.factor = factor
        self.warmup_steps = warmup_steps
        self.warmup_start = warmup_start
        super().__init__(optimizer, last_epoch)

    def lr_factor(self, t: int) -> float:
        if t < self.warmup_steps:
            return self.warmup_start + (1.0 - self.warmup_start) * (t + 1) / (self.warmup_steps + 1)
        return self.factor(t - self.warmup_steps)

    def get_lr(self):
        f = self.lr_factor(self.last_epoch)
        return [base * f for base in self.base_lrs]

    def state_dict(self):
        # `factor` is a closure; it is rebuilt by the constructor, so only the counters are saved.
        return {k: v for k, v in super().state_dict().items() if k != "factor"}


def step_decay(optimizer: Optimizer, step_size: int, gamma: float = 0.1, steps_per_epoch: int = 1,
               warmup_epochs: int = 0, warmup_start: float = 0.0) -> WarmupDecay:
    """lr x gamma every `step_size` epochs (after warm-up)."""
    _check_nonneg_int("step_size", step_size)
    if step_size == 0:
        raise ValueError("step_size must be at least 1 epoch.")
    span = step_size * steps_per_epoch
    return WarmupDecay(optimizer, lambda t: gamma ** (t // span), warmup_epochs * steps_per_epoch, warmup_start)


def multistep_decay(optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, steps_per_epoch: int = 1,
                    warmup_epochs: int = 0, warmup_start: float = 0.0) -> WarmupDecay:
    """lr x gamma at each epoch in `milestones` (epochs counted from the start of training, warm-up included)."""
    milestones = sorted(int(m) for m in milestones)
    warm = warmup_epochs * steps_per_epoch
    bounds = [m * steps_per_epoch - warm for m in milestones]
    return WarmupDecay(optimizer, lambda t: gamma ** sum(t >= b for b in bounds), warm, warmup_start)


def cosine_decay(optimizer: Optimizer, epochs: int, steps_per_epoch: int = 1, warmup_epochs: int = 0,
                 min_lr_ratio: float = 0.0, warmup_start: float = 0.0, cooldown_epochs: int = 0) -> WarmupDecay:
    """Linear warm-up, then half a cosine from the base lr down to `min_lr_ratio` x base lr, reached at the
    last step or `cooldown_epochs` before it (timm's cool-down: the last epochs run at the minimum)."""
    warm = warmup_epochs * steps_per_epoch
    span = max((epochs - cooldown_epochs) * steps_per_epoch - warm, 1)

    def factor(t):
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, span) / span))

    return WarmupDecay(optimizer, factor, warm, warmup_start)


def linear_decay(optimizer: Optimizer, epochs: int, steps_per_epoch: int = 1, warmup_epochs: int = 0,
                 min_lr_ratio: float = 0.0, warmup_start: float = 0.0) -> WarmupDecay:
    """Linear warm-up, then a straight line from the base lr down to `min_lr_ratio` x base lr at the last step:
    with a warm-up, the triangular schedule of fast CIFAR-10 training (airbench: from 0.2 up to 1 over 23% of
    the steps, then down to 0.07)."""
    warm = warmup_epochs * steps_per_epoch
    span = max(epochs * steps_per_epoch - warm, 1)
    return WarmupDecay(optimizer, lambda t: 1.0 - (1.0 - min_lr_ratio) * min(t, span) / span, warm, warmup_start)


class Plateau(ReduceLROnPlateau):
    """torch's ReduceLROnPlateau, stepped once per epoch with the validation loss."""

    interval = "epoch"
