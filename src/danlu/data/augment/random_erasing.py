"""Random erasing (Zhong et al. 2017) on a whole normalised batch on the training device, with the
semantics of timm's `RandomErasing`. As timm's batch mode does on the device, the rectangles are drawn
on the host with Python's `random` in timm's order (per sample, then per rectangle and try: host
arithmetic only, so nothing waits on the device) and tensor ops run only to write each erased patch, so
the cost is proportional to the erased area rather than to the whole batch."""
import math
import random

import torch

ATTEMPTS = 10  # timm's tries per rectangle; a rectangle with no valid try is skipped
MODES = ("pixel", "rand", "const")


class RandomErasing:
    """Per sample, with probability `probability`, replace `count` rectangles (uniform in
    [min_count, max_count]) of area fraction in [min_area, max_area] / count and log-uniform aspect
    h/w in [min_aspect, max_aspect] by per-pixel N(0, 1) ('pixel'), per-channel N(0, 1) ('rand') or
    zeros ('const'). Rectangles come from Python's `random`, fills from torch's RNG of the batch's
    device."""

    def __init__(self, probability: float = 0.25, mode: str = "pixel", min_area: float = 0.02,
                 max_area: float = 1 / 3, min_aspect: float = 0.3, max_aspect: float | None = None,
                 min_count: int = 1, max_count: int | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown random erasing mode '{mode}'; use one of {', '.join(MODES)}")
        self.probability, self.mode = probability, mode
        self.min_area, self.max_area = min_area, max_area
        self.log_aspect = (math.log(min_aspect), math.log(max_aspect or 1 / min_aspect))
        self.min_count, self.max_count = min_count, max_count or min_count

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Erase a batch (N, C, H, W) in place (the caller passes a fresh normalised batch) and return it."""
        n, c, img_h, img_w = x.shape
        for i in range(n):
            for top, left, h, w in self._rectangles(img_h, img_w):
                patch = x[i, :, top:top + h, left:left + w]
                if self.mode == "pixel":  # a fresh contiguous draw: normal_ on a strided view is slow on CPU
                    patch.copy_(torch.randn(c, h, w, dtype=x.dtype, device=x.device))
                elif self.mode == "rand":
                    patch.copy_(torch.randn(c, 1, 1, dtype=x.dtype, device=x.device))
                else:
                    patch.zero_()
        return x

    def _rectangles(self, img_h: int, img_w: int) -> list[tuple[int, int, int, int]]:
        """(top, left, h, w) of one sample's rectangles, drawn as timm's `_erase` draws them."""
        if random.random() > self.probability:
            return []
        # timm draws the count only when it can vary, which keeps its stream of draws
        count = self.min_count if self.min_count == self.max_count else random.randint(self.min_count, self.max_count)
        boxes = []
        for _ in range(count):
            for _ in range(ATTEMPTS):
                area = random.uniform(self.min_area, self.max_area) * (img_h * img_w) / count
                aspect = math.exp(random.uniform(*self.log_aspect))
                h, w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
                if w < img_w and h < img_h:
                    boxes.append((random.randint(0, img_h - h), random.randint(0, img_w - w), h, w))
                    break
        return boxes
