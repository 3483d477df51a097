"""Random erasing (Zhong et al. 2017) on a whole normalised batch on the training device, with the
semantics of timm's `RandomErasing`. timm loops over samples and attempts in Python; here every
attempt of every sample is drawn at once and the first valid one is picked with tensor ops, so the
op never waits on the device and costs the same few kernels for any batch size."""
import math

import torch

ATTEMPTS = 10  # timm's tries per rectangle; a rectangle with no valid try is skipped
MODES = ("pixel", "rand", "const")


class RandomErasing:
    """Per sample, with probability `probability`, replace `count` rectangles (uniform in
    [min_count, max_count]) of area fraction in [min_area, max_area] / count and log-uniform aspect
    h/w in [min_aspect, max_aspect] by per-pixel N(0, 1) ('pixel'), per-channel N(0, 1) ('rand') or
    zeros ('const'). Draws from torch's global RNG of the batch's device."""

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
        """Erase a batch (N, C, H, W); returns a new tensor of the same dtype and device."""
        n, _, img_h, img_w = x.shape
        k, dev = self.max_count, x.device
        count = torch.randint(self.min_count, self.max_count + 1, (n, 1), device=dev)
        # (n, k, ATTEMPTS): every try of every rectangle of every sample
        area = torch.empty(n, k, ATTEMPTS, device=dev).uniform_(self.min_area, self.max_area)
        area = area * (img_h * img_w) / count[..., None]
        aspect = torch.empty(n, k, ATTEMPTS, device=dev).uniform_(*self.log_aspect).exp()
        h = torch.sqrt(area * aspect).round().long()
        w = torch.sqrt(area / aspect).round().long()
        valid = (h < img_h) & (w < img_w)
        first = valid.int().argmax(-1, keepdim=True)  # argmax gives the first of tied maxima
        h, w = h.gather(-1, first)[..., 0], w.gather(-1, first)[..., 0]
        erase = (valid.any(-1) & (torch.arange(k, device=dev) < count)
                 & (torch.rand(n, 1, device=dev) < self.probability))
        # top in [0, H - h] inclusive as timm's randint; the minimum guards float rounding up to H - h + 1
        top = torch.minimum((torch.rand(n, k, device=dev) * (img_h - h + 1)).long(), img_h - h)
        left = torch.minimum((torch.rand(n, k, device=dev) * (img_w - w + 1)).long(), img_w - w)
        rows = torch.arange(img_h, device=dev)
        cols = torch.arange(img_w, device=dev)
        in_rows = (rows >= top[..., None]) & (rows < (top + h)[..., None]) & erase[..., None]
        in_cols = (cols >= left[..., None]) & (cols < (left + w)[..., None])
        mask = in_rows[..., :, None] & in_cols[..., None, :]  # (n, k, H, W)
        fill = self._fill(x, k)
        for j in range(k):  # later rectangles paint over earlier ones, as in timm's sequential loop
            x = torch.where(mask[:, j, None], fill[:, j], x)
        return x

    def _fill(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Fill values broadcastable to (N, k, C, H, W)."""
        n, c, img_h, img_w = x.shape
        if self.mode == "pixel":
            return torch.randn(n, 1, c, img_h, img_w, dtype=x.dtype, device=x.device).expand(n, k, -1, -1, -1)
        if self.mode == "rand":
            return torch.randn(n, k, c, 1, 1, dtype=x.dtype, device=x.device)
        return x.new_zeros(()).expand(n, k, 1, 1, 1)

