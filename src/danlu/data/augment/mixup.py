"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) on a whole batch on the training device,
as timm's `Mixup` in 'batch' mode: one mixing ratio per batch, sample i mixed with sample N-1-i (the
batch flipped), targets the same mix of the label-smoothed one-hots. The ratio, the Mixup/CutMix
switch and the box are drawn on the host with Python's `random` (saved in checkpoints with the other
RNG states), so slicing uses Python ints and nothing waits on the device."""
import math
import random

import torch


def mixup_target(target: torch.Tensor, num_classes: int, lam: float = 1.0, smoothing: float = 0.0) -> torch.Tensor:
    """Soft targets (N, num_classes) float32: `lam` of each sample's smoothed one-hot plus `1 - lam`
    of its partner's in the flipped batch; `lam=1` is plain label smoothing."""
    off = smoothing / num_classes
    y = torch.full((len(target), num_classes), off, device=target.device)
    y.scatter_(1, target.long().view(-1, 1), 1.0 - smoothing + off)
    return y * lam + y.flip(0) * (1.0 - lam)


class Mixup:
    """`(x, target) -> (mixed x, soft targets)`. With probability `prob` a batch is mixed: by CutMix
    with probability `switch_prob` when both alphas are positive, otherwise by whichever is on. Mixup's
    ratio is Beta(mixup_alpha, mixup_alpha); CutMix pastes the partner's box of area about 1 - lam
    (`cutmix_minmax`: box sides uniform in that fraction of the image sides instead), and with
    `correct_lam` the ratio becomes the exact unpasted fraction after clipping at the border."""

    def __init__(self, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0,
                 cutmix_minmax: tuple[float, float] | None = None, prob: float = 1.0, switch_prob: float = 0.5,
                 mode: str = "batch", correct_lam: bool = True, label_smoothing: float = 0.1,
                 num_classes: int = 1000):
        if mode != "batch":
            raise ValueError(f"Mixup mode '{mode}' is not supported; use mode='batch' (one ratio per batch)")
        if cutmix_minmax is not None:
            if len(cutmix_minmax) != 2:
                raise ValueError(f"cutmix_minmax must be (min, max) fractions of the image side, got {cutmix_minmax}")
            cutmix_alpha = 1.0  # as timm: the box comes from minmax, the alpha only turns CutMix on
        if mixup_alpha <= 0 and cutmix_alpha <= 0:
            raise ValueError("Mixup needs mixup_alpha > 0, cutmix_alpha > 0 or cutmix_minmax; "
                             "set one of them or do not build a Mixup")
        self.mixup_alpha, self.cutmix_alpha, self.cutmix_minmax = mixup_alpha, cutmix_alpha, cutmix_minmax
        self.prob, self.switch_prob, self.correct_lam = prob, switch_prob, correct_lam
        self.label_smoothing, self.num_classes = label_smoothing, num_classes

    def _params(self) -> tuple[float, bool]:
        """The batch's (lam, use_cutmix); lam = 1 leaves the batch unmixed."""
        if random.random() >= self.prob:
            return 1.0, False
        # the switch is drawn only when both are on, as in timm
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or random.random() < self.switch_prob)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        return random.betavariate(alpha, alpha), use_cutmix

    def _box(self, img_h: int, img_w: int, lam: float) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of the pasted box, timm's `rand_bbox` / `rand_bbox_minmax`."""
        if self.cutmix_minmax is not None:
            lo, hi = self.cutmix_minmax
            cut_h = random.randrange(int(img_h * lo), int(img_h * hi))
            cut_w = random.randrange(int(img_w * lo), int(img_w * hi))
            top, left = random.randrange(img_h - cut_h + 1), random.randrange(img_w - cut_w + 1)
            return top, top + cut_h, left, left + cut_w
        ratio = math.sqrt(1.0 - lam)
        cut_h, cut_w = int(img_h * ratio), int(img_w * ratio)
        cy, cx = random.randrange(img_h), random.randrange(img_w)  # the centre may sit near a border: clip
        return (max(cy - cut_h // 2, 0), min(cy + (cut_h + 1) // 2, img_h),
                max(cx - cut_w // 2, 0), min(cx + (cut_w + 1) // 2, img_w))

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(x) < 2:
            raise ValueError(f"Mixup/CutMix needs at least 2 samples per batch, got {len(x)}; "
                             "raise the batch size or turn mixup/cutmix off")
        lam, use_cutmix = self._params()
        if lam < 1.0 and use_cutmix:
            img_h, img_w = x.shape[-2:]
            top, bottom, left, right = self._box(img_h, img_w, lam)
            mixed = x.clone()
            mixed[..., top:bottom, left:right] = x[..., top:bottom, left:right].flip(0)
            x = mixed
            if self.correct_lam or self.cutmix_minmax is not None:
                lam = 1.0 - (bottom - top) * (right - left) / (img_h * img_w)
        elif lam < 1.0:
            x = x * lam + x.flip(0) * (1.0 - lam)
        return x, mixup_target(target, self.num_classes, lam, self.label_smoothing)
