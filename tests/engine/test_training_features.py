"""Gradient accumulation, model EMA, lr scaling and warm-up, fp16, and the host-synchronisation budget."""
import pytest
import torch
from torch import nn

from danlu.engine import TrainConfig, build_trainer
from danlu.engine.ema import ModelEma
from danlu.engine.trainer import scaled_lr
from danlu.optim import create_optimizer, create_scheduler

QUICK = dict(model="mlp", dataset="digits", max_train_samples=256, progress=False, model_kwargs={"hidden": 16},
             schedule="cosine", warmup_epochs=1)


def _weights(trainer, ema=False):
    module = trainer.ema.module if ema else trainer.model
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same(a, b, atol):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0)


def test_accumulating_4_batches_of_8_equals_one_batch_of_32(tmp_path):
    # SGD (not Adam, which is blind to a constant gradient scale) and no batch norm: the two must agree exactly
    base = dict(QUICK, optimizer="sgd", lr=0.5, optimizer_kwargs={"momentum": 0.9}, epochs=2, out=str(tmp_path))
    one = build_trainer(TrainConfig(**base, batch_size=32, name="one"))
    one.fit()
    accum = build_trainer(TrainConfig(**base, batch_size=8, accum_steps=4, name="accum"))
    accum.fit()
    assert accum.steps_per_epoch == one.steps_per_epoch == 8
    _assert_same(_weights(one), _weights(accum), atol=1e-6)
    assert accum.scheduler.last_epoch == one.scheduler.last_epoch == 16
    assert accum.history[-1]["train_loss"] == pytest.approx(one.history[-1]["train_loss"], abs=1e-6)


def test_ema_is_the_hand_computed_average():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = ModelEma(model, decay=0.9)
    w0 = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].num_batches_tracked.fill_(7)
    ema.update(model)
    torch.testing.assert_close(ema.module[0].weight, 0.9 * w0 + 0.1 * (w0 + 1.0), atol=0, rtol=1e-6)
    assert int(ema.module[1].num_batches_tracked) == 7   # integer buffers are copied, not averaged
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model)
    expected = 0.9 * (0.9 * w0 + 0.1 * (w0 + 1.0)) + 0.1 * (w0 + 2.0)
    torch.testing.assert_close(ema.module[0].weight, expected, atol=0, rtol=1e-6)
    warm = ModelEma(model, decay=0.9999, warmup=True)
    assert [warm.decay_at(t) for t in (0, 7)] == [0.0, pytest.approx(1 - 8 ** (-2 / 3))]
    assert warm.decay_at(10 ** 9) == 0.9999


def test_ema_resumes_exactly_and_is_evaluated(tmp_path):
    base = dict(QUICK, schedule="none", warmup_epochs=0, model_ema=True, model_ema_decay=0.9, out=str(tmp_path))
    straight = build_trainer(TrainConfig(**base, epochs=2, name="straight"))
    straight.fit()
    first = build_trainer(TrainConfig(**base, epochs=1, name="split"))
    first.fit()
    resumed = build_trainer(TrainConfig(**base, epochs=2, name="split"), resume=first.run_dir)
    resumed.fit()
    _assert_same(_weights(straight, ema=True), _weights(resumed, ema=True), atol=1e-6)
    assert resumed.ema.updates == straight.ema.updates == 2 * straight.steps_per_epoch
    row = straight.history[-1]
    assert row["val_ema_acc1"] != row["val_acc1"] or row["val_ema_loss"] != row["val_loss"]
    assert row["val_ema_loss"] == pytest.approx(straight.evaluate(model=straight.ema.module)["loss"])


def test_lr_scaling_warmup_lr_and_min_lr():
    cfg = TrainConfig(lr=5e-4, lr_base_batch=512, batch_size=64, accum_steps=2)
    assert scaled_lr(cfg) == pytest.approx(5e-4 * 128 / 512)
    assert scaled_lr(TrainConfig(lr=5e-4)) == 5e-4
    opt = create_optimizer(nn.Linear(2, 2), "adamw", lr=1e-3)
    sched = create_scheduler(opt, "cosine", epochs=10, steps_per_epoch=10, warmup_epochs=2, warmup_lr=1e-6,
                             min_lr=1e-5, cooldown_epochs=2)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-6 + (1e-3 - 1e-6) / 21)       # the warm-up starts at warmup_lr
    assert lrs[20] == pytest.approx(1e-3)                             # the peak after 2 warm-up epochs
    assert lrs[80] == lrs[99] == pytest.approx(1e-5)                  # min_lr through the 2 cool-down epochs
    assert lrs[79] > 1e-5


def test_fp16_trains_with_a_gradient_scaler(tmp_path):
    trainer = build_trainer(TrainConfig(**QUICK, epochs=1, fp16=True, out=str(tmp_path), name="fp16"))
    trainer.fit()
    assert trainer.scaler.is_enabled() and trainer.scaler.get_scale() > 0
    assert 0 < trainer.history[-1]["train_loss"] < 3
    with pytest.raises(ValueError, match="bf16 and fp16 are both on"):
        TrainConfig(bf16=True, fp16=True).check()
    with pytest.raises(ValueError, match="accum_steps must be at least 1"):
        TrainConfig(accum_steps=0).check()


@pytest.mark.parametrize("log_interval, least, most", [(1000, 2, 6), (1, 32, 6 * 32)])
def test_the_inner_loop_reads_the_device_only_every_log_interval_steps(tmp_path, monkeypatch, log_interval, least,
                                                                       most):
    trainer = build_trainer(TrainConfig(**QUICK, epochs=1, batch_size=8, log_interval=log_interval,
                                        out=str(tmp_path), name="sync"))
    reads = {"n": 0}
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *a, _original=original, **k):
            reads["n"] += 1
            return _original(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, counting)
    trainer._train_epoch(0)   # 32 steps
    assert len(trainer.train_loader) == 32
    # a fixed handful (the end-of-epoch non-finite check and figures), or one or a few per logged step
    assert least <= reads["n"] <= most


@pytest.mark.slow
def test_compile_trains_like_eager(tmp_path):
    eager = build_trainer(TrainConfig(**QUICK, epochs=1, out=str(tmp_path), name="eager"))
    eager.fit()
    compiled = build_trainer(TrainConfig(**QUICK, epochs=1, compile=True, out=str(tmp_path), name="compiled"))
    compiled.fit()
    assert compiled.train_model is not compiled.model                  # the compiled wrapper trains
    assert "_orig_mod" not in next(iter(compiled.model.state_dict()))  # checkpoints keep plain names
    _assert_same(_weights(eager), _weights(compiled), atol=1e-5)
