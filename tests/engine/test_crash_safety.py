import csv
import errno
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from danlu.engine import TrainConfig, build_trainer, evaluate
from danlu.engine.checkpoint import POINTER, load_training_state, resolve_checkpoint

BASE = dict(model="simple_cnn", dataset="digits", max_train_samples=64, batch_size=16, lr=2e-2, schedule="none",
            progress=False, augment="crop-flip", val_split=0.05,
            model_kwargs={"widths": [4, 4, 4], "hidden": 8, "drop_rate": 0.3})


def _cfg(tmp_path, **kw):
    return TrainConfig(**{**BASE, "out": str(tmp_path), **kw})


def _weights(run):
    return load_file(str(resolve_checkpoint(run) / "model.safetensors"))


def _leftovers(run):
    return sorted(p.name for folder in (run, run / "checkpoints") for p in folder.glob(".*"))


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """A clean 2-epoch run: what every interrupted and resumed run must reproduce."""
    out = tmp_path_factory.mktemp("straight")
    trainer = build_trainer(TrainConfig(**{**BASE, "out": str(out)}, epochs=2, name="straight"))
    trainer.fit()
    return trainer


class _Fault:
    """Makes the n-th file operation (a write's fsync, os.replace, a checkpoint folder's rename) raise."""

    def __init__(self, monkeypatch, n):
        self.n, self.count, self.hit, self.log = n, 0, None, []
        for owner, name in ((os, "fsync"), (os, "replace"), (Path, "rename")):
            monkeypatch.setattr(owner, name, self._wrap(getattr(owner, name), name))

    def _wrap(self, real, name):
        def op(target, *args, **kwargs):
            if name == "fsync":  # a written file (a folder's fsync only makes renames durable)
                if not stat.S_ISREG(os.fstat(target).st_mode):
                    return real(target, *args, **kwargs)
            where = os.readlink(f"/proc/self/fd/{target}") if name == "fsync" else target
            self.count += 1
            self.log.append(f"{name}({Path(where).name})")
            if self.count == self.n:
                self.hit = f"{name}({Path(where).name})"
                raise OSError(errno.EIO, "injected fault")
            return real(target, *args, **kwargs)
        return op


def test_a_fault_at_any_write_or_rename_leaves_a_run_that_evaluates_and_resumes_exactly(tmp_path, monkeypatch,
                                                                                      straight):
    first = build_trainer(_cfg(tmp_path, epochs=1, name="base"))
    first.fit()
    counter = _Fault(monkeypatch, n=0)
    build_trainer(_cfg(tmp_path, epochs=2), resume=_copy(first.run_dir, tmp_path / "count")).fit()
    points, seen = counter.count, []
    monkeypatch.undo()
    assert points >= 12, counter.log  # config, 3 metrics files, epoch and best checkpoints (files, renames), LAST
    for n in range(1, points + 1):
        run = _copy(first.run_dir, tmp_path / f"fault{n}")
        fault = _Fault(monkeypatch, n)
        with pytest.raises(OSError, match="injected fault"):
            build_trainer(_cfg(tmp_path, epochs=2), resume=run).fit()
        monkeypatch.undo()
        seen.append(fault.hit)
        assert not [p for p in _leftovers(run) if p.endswith(".tmp")], fault.hit  # a failed write removes its own
        assert evaluate(run).metrics["acc1"] >= 0  # and the run stays usable: no old copy left lying around either
        assert _leftovers(run) == [], fault.hit
        build_trainer(_cfg(tmp_path, epochs=2), resume=run).fit()
        for k, v in _weights(straight.run_dir).items():
            assert torch.equal(v, _weights(run)[k]), fault.hit
        epochs = [row["epoch"] for row in csv.DictReader(open(run / "metrics.csv"))]
        assert epochs == ["1", "2"], fault.hit
    assert {h.split("(")[0] for h in seen} == {"fsync", "replace", "rename"}
    assert {"replace(.metrics.csv.tmp)", "replace(.curves.png.tmp)", "replace(.LAST.tmp)", "rename(best)",
            "rename(.best.tmp)", "replace(.config.yaml.tmp)"} <= set(seen)


def _copy(run, to):
    shutil.copytree(run, to)
    return to


def test_leftovers_of_a_killed_save_are_tidied_and_a_corrupt_newest_checkpoint_is_skipped(tmp_path, straight):
    run = _copy(straight.run_dir, tmp_path / "run")
    ckpts = run / "checkpoints"
    (ckpts / ".epoch_0003.tmp").mkdir()            # killed while writing a checkpoint
    (ckpts / "best").rename(ckpts / ".best.old")   # killed between the two renames that replace best/
    (ckpts / ".best.tmp").mkdir()
    (run / ".metrics.csv.tmp").write_text("epo")   # killed while rewriting the metrics
    state = ckpts / "epoch_0002" / "training_state.pt"
    state.write_bytes(state.read_bytes()[:1000])   # a truncated newest checkpoint
    with pytest.warns(UserWarning, match=r"epoch_0002/training_state.pt' cannot be read \(PytorchStreamReader failed reading "
                                         r"zip archive: failed finding central directory\); it is truncated .*; "
                                         r"resuming from .*checkpoints/(best|epoch_0001) instead"):
        resumed = build_trainer(_cfg(tmp_path, epochs=2), resume=run)
    assert _leftovers(run) == [] and (ckpts / "best" / "model.safetensors").is_file()
    resumed.fit()
    for k, v in _weights(straight.run_dir).items():
        assert torch.equal(v, _weights(run)[k])
    assert [r["epoch"] for r in csv.DictReader(open(run / "metrics.csv"))] == ["1", "2"]


def test_a_full_disk_is_one_sentence_naming_the_folder_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    trainer = build_trainer(_cfg(tmp_path, epochs=1, name="full"))
    real = os.fsync

    def full(fd):
        if "training_state.pt" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"no space left on the device holding '.*full/checkpoints' while writing "
                                      r"checkpoint 'epoch_0001'; it needs about [\d.]+ MB and [\d.]+ MB are free"):
        trainer.fit()
    assert _leftovers(trainer.run_dir) == [] and not (trainer.run_dir / "checkpoints" / "epoch_0001").exists()


def test_each_epoch_checkpoint_stores_the_best_score_including_its_own_epoch(straight):
    history = straight.history
    for epoch in (1, 2):
        state = load_training_state(straight.run_dir / "checkpoints" / f"epoch_{epoch:04d}")
        assert state["best"] == max(r["val_acc1"] for r in history[:epoch])


@pytest.mark.parametrize("where", ["validation", "summary"])
def test_an_interrupt_at_the_end_of_an_epoch_resumes_exactly_and_lists_each_epoch_once(tmp_path, monkeypatch,
                                                                                    straight, where):
    cut = build_trainer(_cfg(tmp_path, epochs=2, name="cut"))
    calls = {"n": 0}
    if where == "validation":  # after epoch 1's training, during its validation
        real = cut.evaluate

        def interrupting(*a, **k):
            raise KeyboardInterrupt
        monkeypatch.setattr(cut, "evaluate", interrupting)
    else:  # Ctrl-C right after the summary line: held until the epoch's checkpoint is written
        import danlu.engine.trainer as trainer_module
        real = trainer_module.tqdm.write

        def interrupting(text, *a, **k):
            calls["n"] += 1
            real(text, *a, **k)
            os.kill(os.getpid(), 2)
        monkeypatch.setattr(trainer_module.tqdm, "write", interrupting)
        cut.cfg = cut.cfg.updated(progress=True)
    with pytest.raises(KeyboardInterrupt, match="interrupted at epoch"):
        cut.fit()
    monkeypatch.undo()
    expected = "interrupted" if where == "validation" else "epoch_0001"
    assert load_training_state(cut.run_dir / "checkpoints" / "interrupted")["epoch"] == (0 if expected == "interrupted" else 1)
    assert (cut.run_dir / "checkpoints" / POINTER).read_text() == "interrupted"
    resumed = build_trainer(_cfg(tmp_path, epochs=2, name="cut"), resume=cut.run_dir)
    resumed.fit()
    for k, v in _weights(straight.run_dir).items():
        assert torch.equal(v, _weights(cut.run_dir)[k])
    assert [r["epoch"] for r in csv.DictReader(open(cut.run_dir / "metrics.csv"))] == ["1", "2"]
    assert resumed.history[1]["val_loss"] == straight.history[1]["val_loss"]
