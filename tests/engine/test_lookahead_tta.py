"""airbench's training pieces in the engine: the EMA every N steps with a cubic ramp and lookahead, test-time
augmentation, the linear schedule and the --bf16 warning; in a run, they resume exactly and `evaluate`
reproduces the run's own TTA metrics."""
import warnings

import pytest
import torch
from torch import nn

from danlu.engine import TrainConfig, build_trainer, precision
from danlu.engine.ema import ModelEma
from danlu.engine.inference import evaluate
from danlu.engine.tta import tta_logits
from danlu.optim import create_scheduler


def test_ema_every_5_steps_with_the_cubic_ramp_and_lookahead_is_airbench():
    model = nn.Linear(2, 1, bias=False)
    ema = ModelEma(model, decay=0.95, interval=5, ramp=3, lookahead=True, total_steps=12)
    average = model.weight.detach().clone()
    for step in range(1, 13):
        with torch.no_grad():
            model.weight.add_(1.0)  # an optimizer step
        trained = model.weight.detach().clone()
        ema.update(model)
        if step % 5 == 0:  # airbench: lerp with 1 - 0.95**5 * (step / total)**3, then the weights are the average
            average += (1 - 0.95**5 * (step / 12) ** 3) * (trained - average)
            torch.testing.assert_close(model.weight.detach(), average)
        elif step < 12:
            torch.testing.assert_close(model.weight.detach(), trained)
        torch.testing.assert_close(ema.module.weight, average)
    torch.testing.assert_close(model.weight.detach(), average)  # after the last step training ends on the average
    assert ema.updates == 12


def test_flip_translate_weights_its_six_views_as_airbench():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float64).reshape(2, 3, 5, 6).sin()
    corner = lambda v: v[:, :, 0, 0]  # noqa: E731  (logits = the top-left pixel, so each view is visible)
    w = x.shape[-1]
    torch.testing.assert_close(tta_logits(corner, x, "flip"), 0.5 * x[:, :, 0, 0] + 0.5 * x[:, :, 0, w - 1])
    # the up-left and down-right shifts (reflect padding) both put pixel (1, 1) in the corner, mirrored (1, w - 2)
    expected = 0.25 * (x[:, :, 0, 0] + x[:, :, 0, w - 1] + x[:, :, 1, 1] + x[:, :, 1, w - 2])
    torch.testing.assert_close(tta_logits(corner, x, "flip-translate"), expected)
    with pytest.raises(ValueError, match="flip-translate"):
        tta_logits(corner, x, "rotate")


def test_linear_schedule_warms_up_then_falls_straight_to_min_lr():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = create_scheduler(opt, "linear", epochs=4, steps_per_epoch=5, warmup_epochs=1, warmup_lr=0.2, min_lr=0.07)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:5] == pytest.approx([0.2 + 0.8 * (t + 1) / 6 for t in range(5)])  # WarmupDecay's warm-up
    assert lrs[5:] == pytest.approx([1.0 - 0.93 * t / 15 for t in range(15)])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.07)


def test_bf16_on_a_cpu_without_native_bf16_warns_once(monkeypatch):
    monkeypatch.setattr(precision, "_warned", False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    with pytest.warns(UserWarning, match="emulated.*--no-bf16") as caught:
        for _ in range(3):
            with precision.autocast("cpu", bf16=True):
                pass
    assert len(caught) == 1
    monkeypatch.setattr(precision, "_warned", False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with precision.autocast("cpu", bf16=True):
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with precision.autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")


QUICK = dict(model="mlp", dataset="digits", max_train_samples=256, progress=False, model_kwargs={"hidden": 16},
             optimizer="nag", lr=0.05, schedule="linear", warmup_epochs=1, batch_size=32, model_ema=True,
             model_ema_decay=0.9, model_ema_interval=3, model_ema_ramp=3.0, model_ema_lookahead=True)


def test_lookahead_run_resumes_exactly_and_evaluate_gives_its_tta_metrics(tmp_path):
    straight = build_trainer(TrainConfig(**QUICK, epochs=3, tta="flip-translate", out=str(tmp_path), name="straight"))
    straight.fit()
    first = build_trainer(TrainConfig(**QUICK, epochs=3, tta="flip-translate", out=str(tmp_path), name="split"))
    first.cfg.epochs = 1
    first.fit()
    resumed = build_trainer(TrainConfig(**QUICK, epochs=3, tta="flip-translate", out=str(tmp_path), name="split"),
                            resume=first.run_dir)
    resumed.fit()
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, atol=1e-6, rtol=0)
        torch.testing.assert_close(straight.ema.module.state_dict()[k], v)  # the run ends on the average
    last = straight.history[-1]
    assert "val_tta_acc1" in last and "val_ema_acc1" not in last  # with lookahead the weights are the EMA
    assert all("val_tta_acc1" not in row for row in straight.history[:-1])
    result = evaluate(straight.run_dir)
    assert result.metrics["acc1"] == pytest.approx(last["val_tta_acc1"])
    assert result.metrics["loss"] == pytest.approx(last["val_tta_loss"], rel=1e-5)
