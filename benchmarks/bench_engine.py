"""The engine's overhead: `danlu.train()` with no options (the default job: MLP 64-128-10 on digits, 25
epochs, batch 32, AdamW + cosine, per-epoch validation, its run directory written into a temp dir)
against a minimal hand-written PyTorch loop doing the same training over in-memory float tensors
(same model, init, split, batch size, epochs, torch.optim.AdamW with the same lr / weight decay /
exempt biases, the same per-step cosine, validation loss and accuracy after every epoch).

Both run in this process, alternated (one untimed warm-up of each first, which pays the imports), at 1
and at 2 torch threads; the figure is this process's CPU time (all threads), with wall time beside it.

Then the data path alone, images/s over one training epoch with the crop-flip augmentation and the
normalisation (what the trainer gets from each path): the in-memory fast path against the per-sample
DataLoader path it replaced, on CIFAR-10 (../shared/data/cifar10) and MNIST (../shared/data/mnist)
when they are there, or on --subset images of them.

    python benchmarks/bench_engine.py [--rounds 3] [--subset 10000]
"""
import argparse
import contextlib
import functools
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import danlu  # noqa: E402
from danlu.data import create_dataset  # noqa: E402
from danlu.data.augment.batch_crop_flip import BatchCropFlip  # noqa: E402
from danlu.data.datasets import SampleSeeded, TensorImageDataset, Transformed  # noqa: E402
from danlu.data.in_memory import InMemoryImages, InMemoryLoader  # noqa: E402
from danlu.data.transforms import build_transforms, crop_padding  # noqa: E402
from danlu.engine.batch import BatchTransform  # noqa: E402
from danlu.engine.sampler import EpochSampler  # noqa: E402

DATA = REPO.parent / "shared" / "data"


def hand_loop(epochs=25, batch=32, lr=3e-3, weight_decay=0.01, seed=0):
    """The default job by hand; returns the last validation accuracy (%)."""
    from sklearn.datasets import load_digits

    torch.manual_seed(seed)
    digits = load_digits()
    images = torch.from_numpy(digits.images * (255 / 16)).round().div(255).sub(0.3).div(0.37).float().unsqueeze(1)
    labels = torch.from_numpy(digits.target).long()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))  # danlu's 20% split
    n_val = round(0.2 * len(images))
    x_val, y_val, x, y = images[order[:n_val]], labels[order[:n_val]], images[order[n_val:]], labels[order[n_val:]]
    model = danlu.create_model("mlp", num_classes=10, in_chans=1, img_size=8)
    decay = [p for p in model.parameters() if p.ndim > 1]
    exempt = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}],
                            lr=lr)
    steps = math.ceil(len(x) / batch)
    shuffle = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=shuffle)
        for k in range(steps):
            idx = perm[k * batch:(k + 1) * batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (epoch * steps + k + 1) / (epochs * steps)))
        model.eval()
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        with torch.no_grad():
            for k in range(0, n_val, batch):
                logits = model(x_val[k:k + batch])
                loss_sum += F.cross_entropy(logits, y_val[k:k + batch], reduction="sum")
                correct += (logits.argmax(-1) == y_val[k:k + batch]).sum()
        history.append((loss_sum.item() / n_val, 100.0 * correct.item() / n_val))
    return history[-1][1]


def danlu_default(**options):
    """`danlu.train()` with no options (or `options`), in a fresh temp dir (its run directory goes to ./runs)."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as null:
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
                trainer = danlu.train(**options)
        finally:
            os.chdir(here)
    return trainer.history[-1]["val_acc1"]


def timed(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    acc = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, acc


def engine_overhead(rounds, thread_counts, options):
    print(f"default job{f' with {options}' if options else ''} vs hand loop: {rounds} rounds alternated, after one "
          "warm-up of each; CPU s (wall s)")
    for threads in thread_counts:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # danlu.train() keeps the process's threads when this is set
        torch.set_num_threads(threads)
        job = functools.partial(danlu_default, **options)
        hand_loop(), job()
        ratios = []
        for r in range(rounds):
            runs = {}
            for name, fn in (("hand", hand_loop), ("danlu", job))[::1 if r % 2 == 0 else -1]:
                runs[name] = timed(fn)
            ratio = runs["danlu"][0] / runs["hand"][0]
            ratios.append(ratio)
            print(f"  {threads} thread(s) run {r + 1}: hand {runs['hand'][0]:.3f} ({runs['hand'][1]:.3f}) acc "
                  f"{runs['hand'][2]:.2f}% | danlu {runs['danlu'][0]:.3f} ({runs['danlu'][1]:.3f}) acc "
                  f"{runs['danlu'][2]:.2f}% | danlu/hand {ratio:.2f}")
        print(f"  {threads} thread(s): median danlu/hand CPU {statistics.median(ratios):.2f}")


def data_paths(name, bundle, subset):
    """Images/s of one epoch of crop-flip batches (normalised) through each path."""
    base = bundle.train
    n = min(subset or len(base), len(base))
    images, labels = base.images[:n], base.labels[:n]
    size, mean, std = tuple(images.shape[-2:]), bundle.meta["mean"], bundle.meta["std"]
    batch_transform = BatchTransform(mean, std)
    fast = InMemoryLoader(InMemoryImages(images, labels, BatchCropFlip(crop_padding(size), length=n)), 128,
                          EpochSampler(n), torch.device("cpu"))
    per_sample = SampleSeeded(Transformed(TensorImageDataset(images, labels), build_transforms(size, mean, std, "crop-flip")))
    old = torch.utils.data.DataLoader(per_sample, batch_size=128, sampler=EpochSampler(n, sample_seeds=True))

    def epoch(loader):
        for x, y in loader:
            batch_transform(x, y)
        return None
    for loader in (fast, old):
        epoch(loader)
    times = {"fast": [], "DataLoader": []}
    for _ in range(3):
        times["fast"].append(timed(lambda: epoch(fast))[0])
        times["DataLoader"].append(timed(lambda: epoch(old))[0])
    fast_rate, old_rate = n / statistics.median(times["fast"]), n / statistics.median(times["DataLoader"])
    print(f"  {name} ({n} images {size[0]}x{size[1]}, batch 128, crop-flip, 1 thread, median of 3): in-memory "
          f"{fast_rate:,.0f} img/s, DataLoader (workers 0) {old_rate:,.0f} img/s: {fast_rate / old_rate:.1f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--skip-data", action="store_true", help="time the engine only")
    ap.add_argument("--options", type=yaml.safe_load, default={},
                    help="YAML mapping of danlu.train options, to see what one costs, e.g. '{checkpoint_interval: 25}'")
    ap.add_argument("--subset", type=int, default=None, help="images of CIFAR-10 / MNIST for the data-path timing")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} cores")
    engine_overhead(args.rounds, args.threads, args.options)
    if args.skip_data:
        return
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    print("data path, one epoch:")
    for name, folder in (("cifar10", "cifar10"), ("mnist", "mnist")):
        if (args.data / folder).is_dir():
            data_paths(name, create_dataset(name, root=args.data / folder), args.subset)
        else:
            print(f"  {name}: not found at {args.data / folder}")


if __name__ == "__main__":
    main()
