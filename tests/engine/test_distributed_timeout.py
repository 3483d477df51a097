"""A torchrun job whose rank 1 fails or hangs at step 1 ends in bounded time, naming what happened."""
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from danlu.engine.distributed import collective_timeout

# rank 1 raises (or sleeps) at step 1, seeding its second batch; the launcher patches the trainer, then
# runs the ordinary CLI
LAUNCHER = '''
import os, sys, time
from danlu import cli
from danlu.engine import trainer

original, batches = trainer.Trainer._seed, []

def failing(self, seed):
    batches.append(seed)
    if os.environ["RANK"] == "1" and len(batches) == 2:
        if os.environ["FAIL"] == "hang":
            time.sleep(3600)
        raise RuntimeError("planted failure at step 1")
    return original(self, seed)

trainer.Trainer._seed = failing
sys.exit(cli.main(sys.argv[1:]))
'''
TRAIN = ["train", "--model", "mlp", "--dataset", "digits", "--max-train-samples", "64", "--epochs", "1",
         "--batch-size", "8", "--model-kwargs", "{hidden: 16}", "--no-progress"]


def _job(tmp_path, fail, timeout_s):
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FAIL": fail, "DANLU_DIST_TIMEOUT": str(timeout_s)}
    start = time.monotonic()
    # its own session, so that a job that does hang is killed whole (torchrun and both workers)
    job = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                            str(script), *TRAIN, "--out", str(tmp_path), "--name", fail],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        _, stderr = job.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        job.communicate()
        pytest.fail("the job still ran after 120 s: a rank waits for the one that hangs")
    return job.returncode, stderr, time.monotonic() - start


def test_a_rank_that_raises_ends_the_job_naming_it(tmp_path):
    returncode, stderr, seconds = _job(tmp_path, "raise", 600)  # a dead peer closes its connections: no wait
    assert returncode != 0 and seconds < 60
    assert "danlu: error: rank 1 of 2: planted failure at step 1" in stderr  # the failing process names itself
    root_cause = stderr.split("Root Cause (first observed failure):")[1]
    assert "rank      : 1 (local_rank: 1)" in root_cause


def test_a_hung_rank_times_the_others_out(tmp_path):
    returncode, stderr, seconds = _job(tmp_path, "hang", 5)  # without it rank 0 would wait 30 min (gloo's default)
    assert returncode != 0 and seconds < 60
    assert "danlu: error:" in stderr and "Timed out" in stderr
    root_cause = stderr.split("Root Cause (first observed failure):")[1]
    assert "rank      : 0 (local_rank: 0)" in root_cause  # the rank that gave up waiting, first to fail


def test_timeout_setting(monkeypatch):
    monkeypatch.delenv("DANLU_DIST_TIMEOUT", raising=False)
    assert collective_timeout() == timedelta(minutes=10)
    monkeypatch.setenv("DANLU_DIST_TIMEOUT", "2.5")
    assert collective_timeout() == timedelta(seconds=2.5)
    for bad in ("0", "-3", "ten", "nan"):
        monkeypatch.setenv("DANLU_DIST_TIMEOUT", bad)
        with pytest.raises(ValueError, match=f"DANLU_DIST_TIMEOUT must be a number of seconds above 0, got '{bad}'"):
            collective_timeout()
