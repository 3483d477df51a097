"""Two processes on a streamed image folder with timm's per-sample augmentation (RandomResizedCrop,
flip, RandAugment) train the same weights as one process with the same global batch: each sample's
augmentation is seeded by its position in the epoch's global order, not by the rank that reads it."""
import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

COMMON = ["train", "--model", "deit_tiny_patch16_224", "--img-size", "32",
          "--augment", "imagenet", "--auto-augment", "rand-m9-mstd0.5-inc1", "--optimizer", "sgd", "--lr", "0.05",
          "--weight-decay", "0", "--schedule", "none", "--epochs", "1", "--workers", "1", "--no-progress"]


def _tree(root):
    rng = np.random.default_rng(1)
    for split, count in (("train", 8), ("val", 2)):
        for c in range(2):
            (root / split / f"c{c}").mkdir(parents=True)
            for i in range(count):
                h, w = rng.integers(70, 120, size=2)
                Image.fromarray((rng.random((h, w, 3)) * 90 + 100 * c).astype(np.uint8)).save(
                    root / split / f"c{c}" / f"{i}.jpg", quality=90)
    return root


def _run(args, nproc=None):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc \
        else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(launcher + ["-m", "danlu"] + COMMON + args, capture_output=True, text=True, timeout=600,
                            env=env)
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_streaming_processes_equal_one_with_the_same_global_batch(tmp_path):
    data = ["--dataset", "image-folder", "--data-dir", str(_tree(tmp_path / "tree")), "--out", str(tmp_path)]
    _run([*data, "--batch-size", "4", "--name", "ddp"], nproc=2)
    _run([*data, "--batch-size", "8", "--name", "single"])
    ddp = load_file(str(tmp_path / "ddp/checkpoints/epoch_0001/model.safetensors"))
    single = load_file(str(tmp_path / "single/checkpoints/epoch_0001/model.safetensors"))
    assert ddp.keys() == single.keys()
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=1e-5, rtol=0)
