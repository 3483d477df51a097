import os
import subprocess
import sys

import pytest
import torch
from image_tree import write_image_tree
from safetensors.torch import load_file

COMMON = ["train", "--model", "mlp", "--dataset", "digits", "--max-train-samples", "64", "--epochs", "1",
          "--optimizer", "sgd", "--lr", "0.5", "--schedule", "none", "--weight-decay", "0", "--model-kwargs",
          "{hidden: 16}", "--no-progress"]


def _run(args, nproc=None, common=COMMON):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc \
        else [sys.executable]
    # one thread per process: two processes with two spinning OpenMP threads each would oversubscribe 2 cores
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(launcher + ["-m", "danlu"] + common + args, capture_output=True, text=True, timeout=600,
                            env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path):
    out = _run(["--batch-size", "8", "--out", str(tmp_path), "--name", "ddp"], nproc=2)
    assert out.count("run directory:") == 1  # only rank 0 reports and writes
    _run(["--batch-size", "16", "--out", str(tmp_path), "--name", "single"])
    ddp = load_file(str(tmp_path / "ddp/checkpoints/epoch_0001/model.safetensors"))
    single = load_file(str(tmp_path / "single/checkpoints/epoch_0001/model.safetensors"))
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=1e-5, rtol=0)
    rows = (tmp_path / "ddp/metrics.csv").read_text().splitlines()
    single_rows = (tmp_path / "single/metrics.csv").read_text().splitlines()
    assert rows[0] == single_rows[0] and rows[0].split(",")[1:3] == ["train_loss", "train_acc1"]
    # training loss and accuracy, reduced over both processes, equal the one-process figures
    assert [round(float(v), 5) for v in rows[1].split(",")[1:3]] == [round(float(v), 5) for v in single_rows[1].split(",")[1:3]]


# a streamed folder with timm's per-sample augmentation: each sample's crop and RandAugment ops are seeded by its
# position in the epoch's global order, not by the rank that reads it, so 2 ranks still equal 1
STREAMED = ["train", "--model", "deit_tiny_patch16_224", "--img-size", "32", "--augment", "imagenet",
            "--auto-augment", "rand-m9-mstd0.5-inc1", "--optimizer", "sgd", "--lr", "0.05", "--weight-decay", "0",
            "--schedule", "none", "--epochs", "1", "--workers", "1", "--no-progress"]


def test_two_streaming_processes_equal_one_with_the_same_global_batch(tmp_path):
    tree = write_image_tree(tmp_path / "tree", classes=2, train=8, val=2, sizes=(70, 120), seed=1)
    data = ["--dataset", "image-folder", "--data-dir", str(tree), "--out", str(tmp_path)]
    _run([*data, "--batch-size", "4", "--name", "ddp"], nproc=2, common=STREAMED)
    _run([*data, "--batch-size", "8", "--name", "single"], common=STREAMED)
    ddp = load_file(str(tmp_path / "ddp/checkpoints/epoch_0001/model.safetensors"))
    single = load_file(str(tmp_path / "single/checkpoints/epoch_0001/model.safetensors"))
    assert ddp.keys() == single.keys()
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_a_two_process_run_resumes_from_its_last_checkpoint_exactly(tmp_path):
    common = ["--batch-size", "8", "--out", str(tmp_path)]
    _run([*common, "--name", "straight", "--epochs", "2"], nproc=2)
    _run([*common, "--name", "split", "--epochs", "1"], nproc=2)
    _run(["--resume", str(tmp_path / "split"), "--epochs", "2"], nproc=2)
    straight = load_file(str(tmp_path / "straight/checkpoints/epoch_0002/model.safetensors"))
    resumed = load_file(str(tmp_path / "split/checkpoints/epoch_0002/model.safetensors"))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
