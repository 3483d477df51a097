"""RandomResizedCrop with timm's semantics (`RandomResizedCropAndInterpolation`): a random area and aspect
ratio crop resized to the output size, on a PIL image that may still be undecoded.

The crop and the resize are one PIL `resize(box=...)` pass, and a JPEG is decoded by libjpeg at 1/2, 1/4 or
1/8 scale (`draft`) when the scaled crop still covers the output size, so the result is always a downscale
from at least the output resolution."""
import math
import random

from PIL import Image

INTERPOLATIONS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                  "bicubic": Image.Resampling.BICUBIC}
RANDOM_INTERPOLATION = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)  # timm's 'random'
DRAFT_SCALES = (8, 4, 2)  # the reductions libjpeg decodes directly


def resampling(interpolation: str) -> Image.Resampling | tuple[Image.Resampling, ...]:
    """The PIL filter for a timm interpolation name; 'random' gives the pair timm chooses from per call."""
    if interpolation == "random":
        return RANDOM_INTERPOLATION
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation '{interpolation}'; use one of {', '.join(INTERPOLATIONS)} or random")
    return INTERPOLATIONS[interpolation]


def rgb_or_grey(img: Image.Image) -> Image.Image:
    """`img` itself if it is RGB or L (both resize channel by channel), else converted to RGB (palette,
    alpha and CMYK images must be converted before they are resampled, as timm does)."""
    return img if img.mode in ("RGB", "L") else img.convert("RGB")


def _range(name, value):
    lo, hi = value
    if not 0 < lo <= hi:
        raise ValueError(f"{name} must be (min, max) with 0 < min <= max, got {value}")
    return float(lo), float(hi)


class RandomResizedCrop:
    """Crop a random area fraction in `scale` with aspect ratio (w / h) log-uniform in `ratio`, resized
    to `size` (an int, or (h, w) as timm)."""

    def __init__(self, size: int | tuple[int, int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), interpolation: str = "bicubic"):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be a positive int or (h, w), got {size}")
        self.scale = _range("scale", scale)
        self.ratio = _range("ratio", ratio)
        self.interpolation = resampling(interpolation)

    @staticmethod
    def get_params(img_size: tuple[int, int], scale: tuple[float, float],
                   ratio: tuple[float, float]) -> tuple[int, int, int, int]:
        """timm's crop (top, left, height, width) for an image of img_size (width, height): up to 10 random
        tries that fit, else the whole image centre-cropped to the nearest ratio in range."""
        img_w, img_h = img_size
        area = img_w * img_h
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = random.uniform(*scale) * area
            aspect_ratio = math.exp(random.uniform(*log_ratio))
            w = round(math.sqrt(target_area * aspect_ratio))
            h = round(math.sqrt(target_area / aspect_ratio))
            if w <= img_w and h <= img_h:
                return random.randint(0, img_h - h), random.randint(0, img_w - w), h, w
        in_ratio = img_w / img_h
        if in_ratio < ratio[0]:
            w, h = img_w, round(img_w / ratio[0])
        elif in_ratio > ratio[1]:
            w, h = round(img_h * ratio[1]), img_h
        else:
            w, h = img_w, img_h
        return (img_h - h) // 2, (img_w - w) // 2, h, w

    def __call__(self, img: Image.Image) -> Image.Image:
        """The crop of `img` (any mode, decoded or not) at `size`, in RGB or L."""
        top, left, h, w = self.get_params(img.size, self.scale, self.ratio)
        resample = random.choice(self.interpolation) if isinstance(self.interpolation, tuple) else self.interpolation
        out_h, out_w = self.size
        box = (left, top, left + w, top + h)
        reduction = next((s for s in DRAFT_SCALES if w >= s * out_w and h >= s * out_h), 1)
        if reduction > 1:
            full_w = img.width
            drafted = img.draft("RGB", (img.width // reduction, img.height // reduction))
            if drafted is not None:  # None: not a JPEG, or already decoded or drafted
                scale = full_w / drafted[1][2]  # draft's box is the full image in decoded pixels
                box = tuple(b / scale for b in box)
        return rgb_or_grey(img).resize((out_w, out_h), resample, box=box)

    def __repr__(self):
        return (f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio}, "
                f"interpolation={self.interpolation})")
