"""Colour jitter with torchvision's semantics on PIL images (the one timm uses when no auto-augment is on)."""
import random

from PIL import Image, ImageEnhance


def _adjust_hue(img: Image.Image, factor: float) -> Image.Image:
    """Rotate the HSV hue by `factor` of a turn, wrapping in uint8 as torchvision does; grey stays grey."""
    if img.mode == "L":
        return img
    shift = int(factor * 255)
    h, s, v = img.convert("HSV").split()
    h = h.point([(x + shift) % 256 for x in range(256)])
    return Image.merge("HSV", (h, s, v)).convert(img.mode)


class ColorJitter:
    """Brightness, contrast and saturation factors uniform in [max(0, 1 - x), 1 + x], hue shift uniform
    in [-hue, hue], applied in a random order; a zero strength skips that adjustment."""

    def __init__(self, brightness: float, contrast: float, saturation: float, hue: float = 0.0):
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}")
        enhancers = ((brightness, ImageEnhance.Brightness), (contrast, ImageEnhance.Contrast),
                     (saturation, ImageEnhance.Color))
        # (low, high, adjust(img, factor)) for each adjustment that is on
        self.adjustments = [(max(0.0, 1 - x), 1 + x, lambda img, f, e=e: e(img).enhance(f)) for x, e in enhancers if x]
        if hue:
            self.adjustments.append((-hue, hue, _adjust_hue))
        self.strengths = (brightness, contrast, saturation, hue)

    def __call__(self, img: Image.Image) -> Image.Image:
        steps = [(adjust, random.uniform(low, high)) for low, high, adjust in self.adjustments]
        random.shuffle(steps)
        for adjust, factor in steps:
            img = adjust(img, factor)
        return img

    def __repr__(self):
        return "ColorJitter(brightness={}, contrast={}, saturation={}, hue={})".format(*self.strengths)
