"""Stochastic depth (Huang et al. 2016): drop a residual branch per sample while training."""
from torch import nn


def drop_path(x, p=0.0, training=False):
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask.div_(keep)


class DropPath(nn.Module):
    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        return drop_path(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


def drop_path_rates(rate: float, depth: int, endpoint: bool = True) -> list[float]:
    """The linear stochastic-depth schedule: 0 for the first block up to `rate` for the last.

    `endpoint=False` gives `rate * i / depth` (as numpy's linspace), the rule of timm's EfficientNet /
    MobileNet builder, where the last block stays below `rate`.
    """
    return [rate * i / (max(depth - 1, 1) if endpoint else depth) for i in range(depth)]
