import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

COMMON = ["train", "--model", "mlp", "--dataset", "digits", "--max-train-samples", "64", "--epochs", "1",
          "--optimizer", "sgd", "--lr", "0.5", "--schedule", "none", "--weight-decay", "0", "--model-kwargs",
          "{hidden: 16}", "--no-progress"]


def _run(args, nproc=None):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc \
        else [sys.executable]
    # one thread per process: two processes with two spinning OpenMP threads each would oversubscribe 2 cores
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(launcher + ["-m", "danlu"] + COMMON + args, capture_output=True, text=True, timeout=600,
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
