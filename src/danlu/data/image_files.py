"""Reading single image files (for predict, ERF, Grad-CAM, style transfer) into tensors."""
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from .augment.pipeline import pil_to_tensor
from .folder import IMAGE_SUFFIXES
from .transforms import build_transforms


def read_image(path, channels=3):
    """An image file as a uint8 (channels, H, W) tensor (RGB, or grey for channels=1)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file '{path}' does not exist; pass the path of a PNG or JPEG file")
    try:
        with Image.open(path) as img:
            return pil_to_tensor(img.convert("L" if channels == 1 else "RGB")).contiguous()
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"'{path}' is not an image file that Pillow can read ({e}); pass a PNG or JPEG") from None


def list_images(folder):
    """Sorted image files directly inside `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder '{folder}' does not exist; pass a folder of PNG or JPEG files")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in '{folder}'")
    return files


def load_images(paths, img_size, mean, std, channels=3):
    """Files resized to img_size (int or (h, w)) and normalised with mean/std: a float (N, C, H, W) batch."""
    transform = build_transforms(img_size, mean, std)
    return torch.stack([transform(read_image(p, channels)) for p in paths])
