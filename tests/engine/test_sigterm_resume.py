import json
import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from danlu.engine import TrainConfig, build_trainer
from danlu.engine.checkpoint import resolve_checkpoint
from danlu.engine.config import resolve_config

# augmentation (crop-flip, per batch on the in-memory path, which needs no workers: --workers is ignored) and
# dropout on
OPTIONS = dict(model="simple_cnn", dataset="digits", max_train_samples=256, batch_size=8, lr=1e-2, schedule="cosine",
               epochs=2, augment="crop-flip", workers=1, model_kwargs={"widths": [4, 4, 4], "hidden": 8, "drop_rate": 0.3})


def _flags():
    flags = []
    for k, v in OPTIONS.items():
        flags += [f"--{k.replace('_', '-')}", "{widths: [4, 4, 4], hidden: 8, drop_rate: 0.3}" if isinstance(v, dict) else str(v)]
    return flags


def test_sigterm_mid_epoch_saves_a_checkpoint_that_resumes_to_the_same_weights_bit_for_bit(tmp_path):
    cmd = [sys.executable, "-m", "danlu", "train", *_flags(), "--threads", "1", "--no-progress", "--out", str(tmp_path),
           "--name", "preempted"]
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONWARNINGS": "ignore"})
    first = tmp_path / "preempted" / "checkpoints" / "epoch_0001"
    deadline = time.monotonic() + 120
    while not first.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(json.loads((first.parent.parent / "metrics.jsonl").read_text())["epoch_time_s"] / 2)  # mid-epoch 2
    job.send_signal(signal.SIGTERM)  # as Slurm or Kubernetes do before preempting the job
    _, err = job.communicate(timeout=120)
    assert job.returncode == 143, err
    assert "danlu: stopped by SIGTERM at epoch 2, step " in err and "continue with --resume" in err, err
    run = tmp_path / "preempted"
    assert resolve_checkpoint(run).name == "interrupted"

    # the rest in this process, with --workers 0, which the in-memory path ignores too
    resumed = build_trainer(resolve_config(resume=run, progress=False, workers=0), resume=run)
    assert resumed.start_epoch == 1 and 0 < resumed.start_step < 32  # it stopped inside epoch 2
    resumed.fit()
    straight = build_trainer(TrainConfig(**{**OPTIONS, "workers": 0}, progress=False, out=str(tmp_path), name="straight"))
    straight.fit()
    a, b = load_file(str(resolve_checkpoint(run) / "model.safetensors")), load_file(
        str(resolve_checkpoint(straight.run_dir) / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in straight.history]
