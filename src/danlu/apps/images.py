"""Reading image files into normalised model inputs (PIL for decoding, danlu's tensor transforms after)."""
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def read_image(path):
    """An image file as a uint8 (3, H, W) RGB tensor."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist; pass the path of a PNG or JPEG file")
    with Image.open(path) as img:
        return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).contiguous()


def list_images(folder):
    """Sorted image files directly inside `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist; pass a folder of PNG or JPEG files")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def load_images(paths, img_size, mean, std):
    """Files resized to img_size (int or (h, w)) and normalised with mean/std: a float (N, 3, H, W) batch."""
    from ..data.transforms import build_transforms

    transform = build_transforms(img_size, mean, std)
    return torch.stack([transform(read_image(p)) for p in paths])
