import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import TensorDataset

from danlu.engine import NonFiniteLossError, TrainConfig, Trainer, build_trainer
from danlu.engine.checkpoint import POINTER, resolve_checkpoint

QUICK = dict(model="mlp", dataset="digits", max_train_samples=256, batch_size=32, optimizer="adamw", lr=3e-3,
             schedule="cosine", progress=False, model_kwargs={"hidden": 16})


def _weights(run_dir):
    return load_file(str(resolve_checkpoint(run_dir) / "model.safetensors"))


def _assert_same(a, b, atol=1e-6):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0)


def test_resume_is_exact(tmp_path):
    # a schedule depends on the total number of epochs, so the 1-epoch run must not have one to be comparable
    quick = dict(QUICK, schedule="none")
    straight = build_trainer(TrainConfig(**quick, epochs=2, out=str(tmp_path), name="straight"))
    straight.fit()
    first = build_trainer(TrainConfig(**quick, epochs=1, out=str(tmp_path), name="split"))
    first.fit()
    resumed = build_trainer(TrainConfig(**quick, epochs=2, out=str(tmp_path), name="split"), resume=first.run_dir)
    resumed.fit()
    _assert_same(_weights(straight.run_dir), _weights(resumed.run_dir))
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert resumed.history[1]["val_loss"] == pytest.approx(straight.history[1]["val_loss"], abs=1e-6)
    assert (resumed.run_dir / "metrics.csv").read_text().count("\n") == 3 and (resumed.run_dir / "curves.png").is_file()


def interrupt_training_at(monkeypatch, trainer, n):
    """Make the trainer's n-th training forward raise KeyboardInterrupt (Ctrl-C in the middle of a step)."""
    calls = {"n": 0}
    forward = trainer.model.forward

    def interrupting(x):
        calls["n"] += trainer.model.training
        if calls["n"] == n:
            raise KeyboardInterrupt
        return forward(x)
    monkeypatch.setattr(trainer.model, "forward", interrupting)


def test_interrupt_writes_checkpoint_and_resumes_exactly(tmp_path, monkeypatch):
    straight = build_trainer(TrainConfig(**QUICK, epochs=2, out=str(tmp_path), name="straight"))
    straight.fit()
    cut = build_trainer(TrainConfig(**QUICK, epochs=2, out=str(tmp_path), name="cut"))
    interrupt_training_at(monkeypatch, cut, 8 + 3)  # 8 training steps per epoch: stop at step 3 of epoch 2
    with pytest.raises(KeyboardInterrupt, match="interrupted at epoch 2, step 2; checkpoint written"):
        cut.fit()
    assert (cut.run_dir / "checkpoints" / POINTER).read_text() == "interrupted"
    resumed = build_trainer(TrainConfig(**QUICK, epochs=2, out=str(tmp_path), name="cut"), resume=cut.run_dir)
    resumed.fit()
    _assert_same(_weights(straight.run_dir), _weights(resumed.run_dir))


class _NaNAfter(nn.Module):
    def __init__(self, calls):
        super().__init__()
        self.fc, self.calls, self.num_classes = nn.Linear(4, 3), calls, 3

    def forward(self, x):
        self.calls -= 1
        return self.fc(x) * (float("nan") if self.calls < 0 else 1.0)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    data = TensorDataset(torch.randn(16, 4), torch.randint(0, 3, (16,)))
    trainer = Trainer(_NaNAfter(calls=4 + 4), data, data,  # epoch 1: 4 train + 4 val batches, then NaN
                      TrainConfig(epochs=3, batch_size=4, progress=False, schedule="none"), run_dir=tmp_path / "new")
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 2, step 1; .*epoch_0001.*--lr"):
        trainer.fit()
    assert resolve_checkpoint(tmp_path / "new").name == "epoch_0001"  # the run directory was created
    assert all(torch.isfinite(v).all() for v in _weights(tmp_path / "new").values())
    assert not list((tmp_path / "new" / "checkpoints").glob(".*tmp"))   # nothing half-written


def test_bf16_and_channels_last(tmp_path):
    base = dict(QUICK, model="simple_cnn", model_kwargs={}, max_train_samples=64, epochs=1, out=str(tmp_path))
    plain = build_trainer(TrainConfig(**base, name="plain"))
    plain.fit()
    cl = build_trainer(TrainConfig(**base, name="cl", channels_last=True))
    cl.fit()
    _assert_same(_weights(plain.run_dir), _weights(cl.run_dir), atol=1e-4)  # other summation order
    bf16 = build_trainer(TrainConfig(**base, name="bf16", bf16=True))
    history = bf16.fit()
    assert history[0]["train_loss"] == pytest.approx(plain.history[0]["train_loss"], rel=0.05)
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    labels, probs = bf16.predict(torch.zeros(2, 1, 8, 8))
    assert probs.dtype == torch.float32 and torch.allclose(probs.sum(-1), torch.ones(2), atol=1e-2)


def test_binary_single_logit_uses_bce_and_threshold_accuracy():
    from danlu.engine.losses import compute_loss
    from danlu.engine.metrics import correct_topk
    logits, target = torch.tensor([[2.0], [-1.0], [0.5]]), torch.tensor([1, 1, 0])
    assert correct_topk(logits, target).tolist() == [1]
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits.squeeze(-1), target.float())
    assert compute_loss(logits, target) == pytest.approx(float(expected))
