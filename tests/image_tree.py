"""A small ImageNet-like folder for the streamed-data tests: `train/` and `val/` with a few classes of
JPEGs of varied sizes, all above the in-memory size limit, tinted per class so the classes differ."""
import numpy as np
from PIL import Image


def write_image_tree(root, classes=3, train=5, val=2, sizes=(70, 140), seed=0):
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for c in range(classes):
            folder = root / split / f"n0{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                h, w = rng.integers(*sizes, size=2)
                pixels = (rng.random((h, w, 3)) * 60 + 80 * c).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.JPEG", quality=90)
    return root
