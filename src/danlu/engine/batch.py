"""Per-batch input work on the training device, after the loader: uint8 images become normalised
floats (4x less to move from the workers than floats), then, in training only, random erasing and
Mixup / CutMix. Doing these per batch keeps per-sample Python out of the loader workers."""
import torch

from ..data.augment.mixup import Mixup
from ..data.augment.random_erasing import RandomErasing


class BatchTransform:
    """`(x, y) -> (inputs, loss target, labels for accuracy)`; the loss target is soft when mixing."""

    def __init__(self, mean=None, std=None, erasing=None, mixup=None):
        self.mean = torch.tensor(mean or (0.0,), dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std or (1.0,), dtype=torch.float32).view(1, -1, 1, 1)
        self.erasing, self.mixup = erasing, mixup

    @classmethod
    def from_config(cls, cfg, mean, std, num_classes):
        erasing = RandomErasing(cfg.reprob, mode=cfg.remode, max_count=cfg.recount) if cfg.reprob > 0 else None
        mixup = None
        if cfg.mixup > 0 or cfg.cutmix > 0:
            mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, prob=cfg.mixup_prob,
                          switch_prob=cfg.mixup_switch_prob, label_smoothing=cfg.label_smoothing,
                          num_classes=num_classes)
        return cls(mean, std, erasing, mixup)

    def normalize(self, x):
        if x.dtype != torch.uint8:
            return x
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        # the per-sample ToFloat + Normalize, op for op, so both paths give the same bits; in place: a
        # fresh temporary per op page-faults on CPU
        return x.float().div_(255).sub_(self.mean).div_(self.std)

    def __call__(self, x, y):
        x = self.normalize(x)
        if self.erasing is not None and x.ndim == 4:
            x = self.erasing(x)
        if self.mixup is None:
            return x, y, y
        x, soft = self.mixup(x, y)
        return x, soft, soft.argmax(dim=-1)  # accuracy against the label that dominates the mix

