"""Input pipeline throughput, danlu vs timm: images per second on one core for JPEG decode + the DeiT train
transform at 224 (RandomResizedCrop with random bilinear/bicubic, flip, RandAugment rand-m9-mstd0.5-inc1).

timm: `Image.open(f).convert("RGB")` then `create_transform(224, is_training=True, auto_augment=...,
re_prob=0.25, re_mode="pixel", interpolation="random")`, which ends in ToTensor + Normalize + RandomErasing per
sample (pixel fill as the DeiT / PyramidTNT commands' `--remode pixel`; timm's own default is const)
(its 0-bit posterize, which Pillow >= 11 rejects, patched to give black as older Pillow did).
danlu: the lazily-opened file through `build_train_transform` to a uint8 tensor; its normalise + random
erasing (`engine.batch.BatchTransform`) run per batch on the training device, but here their CPU cost
(with the stacking of the batch, which timm's count leaves out) is measured and charged per image.
Also shown: danlu's per-sample part alone, and danlu with the JPEG draft (reduced-scale decoding) off.

The JPEGs (quality 90, sides in [--min-side, --max-side], varied aspect) are crops and resizes of the
real images in ../shared/data/images, written to a temp dir. The pipelines are interleaved over rounds
(order rotated per round) so machine load hits all alike; time is this process's CPU time.
Runs in the side venv, which has timm (danlu is imported from src/):

    /work/side-venv/bin/python benchmarks/bench_input_pipeline.py --images 200 [--rounds 5]
"""
import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from danlu.data.augment import random_resized_crop  # noqa: E402
from danlu.data.augment.pipeline import build_train_transform  # noqa: E402
from danlu.data.augment.random_erasing import MODES, RandomErasing  # noqa: E402
from danlu.engine.batch import BatchTransform  # noqa: E402

AA = "rand-m9-mstd0.5-inc1"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def patch_timm_posterize():
    """timm calls ImageOps.posterize with 0 bits at high magnitudes, which Pillow >= 11 rejects; give the
    black image older Pillow gave (as danlu's RandAugment does)."""
    from PIL import ImageOps
    from timm.data import auto_augment

    def posterize(img, bits_to_keep, **_):
        if bits_to_keep >= 8:
            return img
        return Image.new(img.mode, img.size) if bits_to_keep < 1 else ImageOps.posterize(img, bits_to_keep)

    for name in ("Posterize", "PosterizeIncreasing", "PosterizeOriginal"):
        auto_augment.NAME_TO_OP[name] = posterize


def make_jpegs(folder, n, min_side, max_side, source):
    """n JPEGs: random crops of the real images, resized to a random size in [min_side, max_side]."""
    rng = random.Random(0)
    images = [Image.open(p).convert("RGB") for p in sorted(source.iterdir())]
    paths = []
    for i in range(n):
        img = rng.choice(images)
        w, h = img.size
        cw, ch = rng.randint(w // 2, w), rng.randint(h // 2, h)
        left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
        size = (rng.randint(min_side, max_side), rng.randint(min_side, max_side))
        path = folder / f"{i}.jpg"
        img.crop((left, top, left + cw, top + ch)).resize(size, Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def run_danlu(transform, paths, draft=True):
    scales = random_resized_crop.DRAFT_SCALES
    random_resized_crop.DRAFT_SCALES = scales if draft else ()
    try:
        out = []
        for i, p in enumerate(paths):
            random.seed(i)
            out.append(transform(Image.open(p)))
        return out
    finally:
        random_resized_crop.DRAFT_SCALES = scales


def run_timm(transform, paths):
    out = []
    for i, p in enumerate(paths):
        random.seed(i)
        out.append(transform(Image.open(p).convert("RGB")))
    return out


def danlu_batch_step(images, batch, batch_transform):
    """The loader's stacking of the batch, then what the trainer does per batch on the device."""
    labels = torch.zeros(batch, dtype=torch.long)
    for k in range(0, len(images), batch):
        batch_transform(torch.stack(images[k:k + batch]), labels[:len(images) - k])


def cpu_time(fn):
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-side", type=int, default=200)
    ap.add_argument("--max-side", type=int, default=600)
    ap.add_argument("--re-mode", default="pixel", choices=MODES,
                    help="random erasing fill, both pipelines (the DeiT recipe's: pixel; timm's default: const)")
    ap.add_argument("--batch", type=int, default=64, help="batch size of danlu's per-batch step")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "images")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    from timm.data import create_transform
    patch_timm_posterize()
    timm_tf = create_transform(224, is_training=True, auto_augment=AA, re_prob=0.25, re_mode=args.re_mode,
                               interpolation="random")
    danlu_tf = build_train_transform(224, auto_augment=AA, interpolation="random", mean=MEAN)
    batch_transform = BatchTransform(MEAN, STD, erasing=RandomErasing(0.25, mode=args.re_mode))

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), args.images, args.min_side, args.max_side, args.data)
        uint8_batch = run_danlu(danlu_tf, paths)  # warm-up, and the input of the batch step
        run_timm(timm_tf, paths)
        cases = {
            "timm": lambda: run_timm(timm_tf, paths),
            "danlu": lambda: run_danlu(danlu_tf, paths),
            "danlu_no_draft": lambda: run_danlu(danlu_tf, paths, draft=False),
            "danlu_batch_step": lambda: danlu_batch_step(uint8_batch, args.batch, batch_transform),
        }
        times = {k: [] for k in cases}
        names = list(cases)
        for r in range(args.rounds):
            for k in names[r % len(names):] + names[:r % len(names)]:
                times[k].append(cpu_time(cases[k]))

    n = args.images
    per_round = {"timm": times["timm"], "danlu_per_sample": times["danlu"],
                 "danlu": [a + b for a, b in zip(times["danlu"], times["danlu_batch_step"])],
                 "danlu_no_draft": [a + b for a, b in zip(times["danlu_no_draft"], times["danlu_batch_step"])]}
    print(f"{n} JPEGs, sides {args.min_side}-{args.max_side}, {args.rounds} rounds, 1 thread, CPU time; "
          f"danlu includes its per-batch stack+normalise+erase ({args.re_mode}), "
          f"{1e3 * statistics.median(times['danlu_batch_step']) / n:.2f} ms/image")
    print(f"{'pipeline':<18}{'min img/s':>11}{'median img/s':>14}")
    for k, ts in per_round.items():
        print(f"{k:<18}{n / max(ts):>11.1f}{n / statistics.median(ts):>14.1f}")
    ratio = [t / d for t, d in zip(per_round["timm"], per_round["danlu"])]
    draft = [t / d for t, d in zip(per_round["danlu_no_draft"], per_round["danlu"])]
    print(f"danlu / timm speed: median {statistics.median(ratio):.3f} (min {min(ratio):.3f}); "
          f"draft speed-up: median {statistics.median(draft):.3f}")


if __name__ == "__main__":
    main()
