"""Image transforms written on tensors (no torchvision): uint8 (C, H, W) in, float (C, H, W) out.

Random transforms draw from torch's global generator, so a seeded run (and a resumed one, whose
RNG state is restored) sees the same crops and flips."""
import torch
import torch.nn.functional as F


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        return f"Compose({', '.join(map(repr, self.transforms))})"


class ToFloat:
    """uint8 [0, 255] -> float32 [0, 1]."""

    def __call__(self, x):
        return x.float().div_(255) if x.dtype == torch.uint8 else x.float()

    def __repr__(self):
        return "ToFloat()"


class Normalize:
    def __init__(self, mean, std):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, x):
        return (x - self.mean) / self.std

    def __repr__(self):
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


class Resize:
    """Bilinear (antialiased when shrinking) resize to (h, w); a no-op at that size already."""

    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, x):
        if tuple(x.shape[-2:]) == self.size:
            return x
        dtype = x.dtype
        y = F.interpolate(x.unsqueeze(0).float(), size=self.size, mode="bilinear", antialias=True, align_corners=False)[0]
        return y.round_().clamp_(0, 255).to(dtype) if dtype == torch.uint8 else y

    def __repr__(self):
        return f"Resize({self.size})"


class RandomCrop:
    """Pad by `padding` on each side (with zeros, or `pad_mode` 'reflect'), then crop a random (h, w)
    window (the CIFAR augmentation)."""

    def __init__(self, size, padding=0, pad_mode="zeros"):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding, self.pad_mode = padding, pad_mode

    def __call__(self, x):
        if self.padding:
            x = F.pad(x, (self.padding,) * 4, mode="reflect" if self.pad_mode == "reflect" else "constant")
        h, w = self.size
        top = int(torch.randint(0, x.shape[-2] - h + 1, ()))
        left = int(torch.randint(0, x.shape[-1] - w + 1, ()))
        return x[..., top:top + h, left:left + w]

    def __repr__(self):
        return f"RandomCrop({self.size}, padding={self.padding}, pad_mode={self.pad_mode!r})"


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, x):
        return x.flip(-1) if float(torch.rand(())) < self.p else x

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


def crop_padding(img_size, padding=None):
    """`padding`, or by default an eighth of the image's height (at least 1): CIFAR's 4 pixels at 32."""
    return padding if padding is not None else max(1, (img_size if isinstance(img_size, int) else img_size[0]) // 8)


def build_transforms(img_size, mean, std, augment="none", padding=None, pad_mode="zeros"):
    """The pipeline for one split: resize, optional 'flip' or 'crop-flip' augmentation (`crop_padding`),
    to float, normalise."""
    if augment not in ("none", "crop-flip", "flip"):
        raise ValueError(f"unknown augmentation '{augment}'; use 'none', 'flip' or 'crop-flip'")
    steps = [Resize(img_size)]
    if augment == "crop-flip":
        size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        steps.append(RandomCrop(size, crop_padding(size, padding), pad_mode))
    if augment in ("crop-flip", "flip"):
        steps.append(RandomHorizontalFlip())
    return Compose(steps + [ToFloat(), Normalize(mean, std)])
