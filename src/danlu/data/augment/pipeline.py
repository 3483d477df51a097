"""Per-sample train and eval transforms with timm's semantics (`transforms_imagenet_train` / `_eval`).

In: a PIL image, possibly opened but not decoded (the first step decodes it, at reduced scale where it
can), or a uint8 (C, H, W) tensor with C = 1 or 3. Out: a uint8 (C, H, W) tensor, C = 3 for PIL inputs and
the input's C for tensors. Normalisation, random erasing and Mixup run later, per batch on the device.
All randomness comes from Python's `random`, which the data set seeds per sample."""
import math
import random
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from .color_jitter import ColorJitter
from .rand_augment import rand_augment_transform
from .random_resized_crop import RandomResizedCrop, resampling, rgb_or_grey


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """A uint8 (1, H, W) tensor as an L image, (3, H, W) as RGB."""
    if x.dtype != torch.uint8 or x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected a uint8 (C, H, W) tensor with C = 1 or 3, got {x.dtype} {tuple(x.shape)}")
    return Image.fromarray(x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).contiguous().numpy())


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """An L or RGB image as a uint8 (C, H, W) tensor: for RGB a view of the (H, W, C) pixels, as timm's, since
    stacking the batch copies it anyway."""
    x = torch.from_numpy(np.array(img))
    return x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if random.random() < self.p else img

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class ResizeCenterCrop:
    """timm's eval geometry: the short side resized to floor(img_size / crop_pct) (the long side truncated,
    as torchvision's Resize), then the centre img_size square (rounded as torchvision's CenterCrop)."""

    def __init__(self, img_size: int, crop_pct: float = 0.875, interpolation: str = "bicubic"):
        if not 0 < crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
        self.img_size = img_size
        self.scale_size = math.floor(img_size / crop_pct)
        if interpolation == "random":
            raise ValueError("eval interpolation must be fixed; use bicubic, bilinear or nearest, not random")
        self.interpolation = resampling(interpolation)

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        long = int(self.scale_size * max(w, h) / min(w, h))
        w, h = (self.scale_size, long) if w <= h else (long, self.scale_size)
        img = rgb_or_grey(img).resize((w, h), self.interpolation)
        top, left = round((h - self.img_size) / 2.0), round((w - self.img_size) / 2.0)
        return img.crop((left, top, left + self.img_size, top + self.img_size))

    def __repr__(self):
        return f"ResizeCenterCrop({self.img_size}, scale_size={self.scale_size}, interpolation={self.interpolation})"


class ImageTransform:
    """`resize` (which decodes and gives RGB or L), then the PIL `steps`, then a uint8 tensor."""

    def __init__(self, resize: Callable[[Image.Image], Image.Image], steps: list[Callable[[Image.Image], Image.Image]]):
        self.resize = resize
        self.steps = steps

    def __call__(self, img: Image.Image | torch.Tensor) -> torch.Tensor:
        mode = "RGB"
        if isinstance(img, torch.Tensor):
            img = tensor_to_pil(img)
            mode = img.mode
        img = self.resize(img)
        if img.mode != mode:  # after the resize: converting fewer pixels
            img = img.convert(mode)
        for step in self.steps:
            img = step(img)
        return pil_to_tensor(img)

    def __repr__(self):
        return f"ImageTransform({', '.join(map(repr, [self.resize, *self.steps]))})"


def build_train_transform(img_size: int, scale: tuple[float, float] = (0.08, 1.0),
                          ratio: tuple[float, float] = (3 / 4, 4 / 3), hflip: float = 0.5,
                          color_jitter: float | tuple[float, ...] | None = 0.4, auto_augment: str | None = None,
                          interpolation: str = "random",
                          mean: tuple[float, ...] = (0.485, 0.456, 0.406)) -> ImageTransform:
    """RandomResizedCrop, flip, then RandAugment (`auto_augment`, e.g. 'rand-m9-mstd0.5-inc1') or colour
    jitter: never both, as in timm (its '3a' exception cannot occur with a RandAugment string). A float
    color_jitter is brightness = contrast = saturation; a tuple is (b, c, s) or (b, c, s, hue)."""
    steps = []
    if hflip > 0:
        steps.append(RandomHorizontalFlip(hflip))
    if auto_augment:
        if not auto_augment.startswith("rand"):
            raise ValueError(f"auto_augment '{auto_augment}' is not supported; use a RandAugment string 'rand-...'")
        hparams = {"translate_const": int(img_size * 0.45), "img_mean": tuple(min(255, round(255 * m)) for m in mean)}
        if interpolation != "random":  # else RandAugment picks bilinear or bicubic per op, as timm
            hparams["interpolation"] = resampling(interpolation)
        steps.append(rand_augment_transform(auto_augment, hparams))
    if color_jitter and not auto_augment:
        strengths = (float(color_jitter),) * 3 if isinstance(color_jitter, (int, float)) else tuple(color_jitter)
        if len(strengths) not in (3, 4):
            raise ValueError(f"color_jitter must be a float or (b, c, s[, hue]), got {color_jitter}")
        steps.append(ColorJitter(*strengths))
    return ImageTransform(RandomResizedCrop(img_size, scale, ratio, interpolation), steps)


def build_eval_transform(img_size: int, crop_pct: float = 0.875, interpolation: str = "bicubic") -> ImageTransform:
    """Resize the short side to floor(img_size / crop_pct), centre-crop img_size."""
    return ImageTransform(ResizeCenterCrop(img_size, crop_pct, interpolation), [])
