"""Writes an ImageNet-like image-folder tree, for benchmarking the streamed data path.

`OUT/train/nXXXXXXXX/nXXXXXXXX_K.JPEG` (and with --val, `OUT/val/nXXXXXXXX/ILSVRC2012_val_K.JPEG`):
JPEGs at quality 85 of 200-600 px on the long side with aspect ratios from 1:2 to 2:1, cut from the
photographs and textures in ../shared/data/images (smooth random patterns when that folder is
absent) and tinted per class so that the classes differ. Two processes write about 50,000 images in
a few minutes.

    python benchmarks/make_imagenet_like.py 50000 /tmp/imagenet-like --classes 100 --val 5000
"""
import argparse
import math
import multiprocessing
import time
from pathlib import Path

import numpy as np
from PIL import Image

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images"
_sources = []  # the source pictures, loaded once per process


def _load_sources(folder):
    if folder.is_dir():
        _sources.extend(Image.open(p).convert("RGB") for p in sorted(folder.iterdir())
                        if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _content(rng, size):
    w, h = size
    if not _sources:  # a 4x4 random pattern blown up: smooth, and about as costly to encode as a photo
        return Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)
    src = _sources[rng.integers(len(_sources))]
    scale = min(src.width / w, src.height / h) * rng.uniform(0.4, 1.0)  # a crop of the target's shape
    cw, ch = max(1, int(w * scale)), max(1, int(h * scale))
    x, y = rng.integers(src.width - cw + 1), rng.integers(src.height - ch + 1)
    return src.resize(size, Image.BILINEAR, box=(x, y, x + cw, y + ch))


def _write(job):
    path, label, seed = job
    rng = np.random.default_rng(seed)
    long_side, ratio = int(rng.integers(200, 601)), math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
    size = (long_side, round(long_side / ratio)) if ratio >= 1 else (round(long_side * ratio), long_side)
    gains = np.random.default_rng(label).uniform(0.6, 1.2, 3)  # the class's tint
    table = [min(255, int(v * g)) for g in gains for v in range(256)]
    _content(rng, size).point(table).save(path, "JPEG", quality=85)
    return path.stat().st_size


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int, help="training images")
    p.add_argument("out", type=Path, help="folder to write train/ (and val/) into")
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--val", type=int, default=0, help="validation images (default none)")
    p.add_argument("--images", type=Path, default=IMAGES, help="pictures to cut the images from")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    wnids = [f"n{1440764 + 7919 * c:08d}" for c in range(args.classes)]  # synset-like folder names
    jobs = []
    for split, count, name in (("train", args.n, "{wnid}_{k}.JPEG"), ("val", args.val, "ILSVRC2012_val_{k:08d}.JPEG")):
        for wnid in wnids[:count]:
            (args.out / split / wnid).mkdir(parents=True, exist_ok=True)
        jobs += [(args.out / split / wnids[k % args.classes] / name.format(wnid=wnids[k % args.classes], k=k),
                  k % args.classes, (args.seed, split == "val", k)) for k in range(count)]
    start = time.perf_counter()
    with multiprocessing.Pool(args.processes, _load_sources, (args.images,)) as pool:
        total = sum(pool.imap_unordered(_write, jobs, chunksize=64))
    seconds = time.perf_counter() - start
    print(f"wrote {len(jobs)} JPEGs ({total / 2**20:.0f} MiB, {args.classes} classes) to {args.out} in "
          f"{seconds:.1f} s with {args.processes} processes: {len(jobs) / seconds:.0f} images/s; "
          f"content: {args.images if args.images.is_dir() else 'random patterns'}")


if __name__ == "__main__":
    main()
