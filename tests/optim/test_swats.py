"""SWATS against a plain float64 transcription of the paper's algorithm (Keskar & Socher 2017, Algorithm 1)."""
import functools
import math

import pytest
import torch
from torch import nn

from danlu.optim import SWATS

LR, B1, B2, EPS, SWITCH_EPS = 0.003, 0.9, 0.999, 1e-9, 1e-5


def _problem():
    """Noisy least squares: minibatch k of a fixed regression set, gradients for a (5x3 weight, 3 bias) model."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 5, generator=g, dtype=torch.float64)
    y = x @ torch.randn(5, 3, generator=g, dtype=torch.float64) + 0.3 * torch.randn(512, 3, generator=g,
                                                                                    dtype=torch.float64)
    batches = [torch.randint(0, 512, (32,), generator=g) for _ in range(150)]

    def grads(weight, bias, k):
        i = batches[k - 1]
        r = x[i] @ weight + bias - y[i]  # d/dw of mean(r^2)
        return 2 * x[i].T @ r / r.numel(), 2 * r.sum(0) / r.numel()

    return grads


@functools.lru_cache(maxsize=None)
def _reference(steps):
    """The paper's algorithm, written out on one flat float64 vector (the whole parameter group)."""
    grads = _problem()
    w = torch.zeros(18, dtype=torch.float64)
    m, a, lam, phase, v, switch, Lam = torch.zeros(18, dtype=torch.float64), torch.zeros(18, dtype=torch.float64), \
        0.0, "adam", None, None, None
    for k in range(1, steps + 1):
        gw, gb = grads(w[:15].view(5, 3), w[15:], k)
        g = torch.cat([gw.reshape(-1), gb])
        if phase == "sgd":
            v = B1 * v + g
            w = w - (1 - B1) * Lam * v
            continue
        m = B1 * m + (1 - B1) * g
        a = B2 * a + (1 - B2) * g * g
        p = -LR * math.sqrt(1 - B2**k) / (1 - B1**k) * m / (a.sqrt() + EPS)
        w = w + p
        pg = float(p @ g)
        if pg != 0:
            gamma = float(p @ p) / -pg
            lam = B2 * lam + (1 - B2) * gamma
            if k > 1 and abs(lam / (1 - B2**k) - gamma) < SWITCH_EPS:
                phase, v, switch, Lam = "sgd", torch.zeros(18, dtype=torch.float64), k, lam / (1 - B2**k)
    return w, switch, Lam


def _run(opt, weight, bias, steps, start=1):
    grads = _problem()
    for k in range(start, start + steps):
        weight.grad, bias.grad = grads(weight.detach(), bias.detach(), k)
        opt.step()


def _params():
    return nn.Parameter(torch.zeros(5, 3, dtype=torch.float64)), nn.Parameter(torch.zeros(3, dtype=torch.float64))


def test_switch_step_and_lambda_match_float64_reference():
    ref_w, ref_switch, ref_Lam = _reference(150)
    assert ref_switch is not None and 2 < ref_switch < 100  # the problem is set up to switch early
    weight, bias = _params()
    opt = SWATS([weight, bias], lr=LR, betas=(B1, B2), eps=EPS, switch_eps=SWITCH_EPS)
    _run(opt, weight, bias, 150)
    metrics = opt.metrics()
    assert metrics["swats_phase"] == "sgd"
    assert metrics["swats_switch_step"] == ref_switch
    assert metrics["swats_sgd_lr"] == pytest.approx(ref_Lam, rel=1e-9)
    # ... and the SGD phase afterwards (momentum beta1, step (1 - beta1) Lambda v) lands on the same weights.
    ours = torch.cat([weight.detach().reshape(-1), bias.detach()])
    assert torch.allclose(ours, ref_w, rtol=1e-9, atol=1e-12)


def test_state_dict_round_trip_keeps_phase_and_estimate():
    ref_w, ref_switch, _ = _reference(150)
    weight, bias = _params()
    opt = SWATS([weight, bias], lr=LR, betas=(B1, B2), eps=EPS, switch_eps=SWITCH_EPS)
    half = ref_switch // 2
    _run(opt, weight, bias, half)
    saved = opt.state_dict()
    assert saved["param_groups"][0]["phase"] == "adam" and saved["param_groups"][0]["k"] == half
    weight2, bias2 = nn.Parameter(weight.detach().clone()), nn.Parameter(bias.detach().clone())
    opt2 = SWATS([weight2, bias2], lr=LR, betas=(B1, B2), eps=EPS, switch_eps=SWITCH_EPS)
    opt2.load_state_dict(saved)
    _run(opt2, weight2, bias2, 150 - half, start=half + 1)
    assert opt2.metrics()["swats_switch_step"] == ref_switch
    assert torch.allclose(torch.cat([weight2.detach().reshape(-1), bias2.detach()]), ref_w, rtol=1e-9, atol=1e-12)


def test_manual_switch_then_sgd_momentum_without_the_ports_aliasing_bug():
    w = nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    opt = SWATS([w], lr=0.1)
    w.grad = torch.tensor([0.5, -1.0], dtype=torch.float64)
    opt.step()
    opt.switch_to_sgd(lr=0.05)
    assert opt.metrics() == {"swats_phase": "sgd", "swats_switch_step": 1, "swats_sgd_lr": 0.05}
    before = w.detach().clone()
    g1, g2 = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.tensor([2.0, -4.0], dtype=torch.float64)
    w.grad = g1.clone()
    opt.step()
    w.grad = g2.clone()
    opt.step()
    # v1 = g1, v2 = 0.9 g1 + g2; each step (1 - 0.9) * 0.05 * v. The ports scale v in place (momentum 0.09).
    v1, v2 = g1, 0.9 * g1 + g2
    assert torch.allclose(w.detach(), before - 0.005 * v1 - 0.005 * v2, rtol=0, atol=1e-15)
    assert torch.equal(w.grad, g2)  # the gradient is not modified in place
    assert torch.allclose(opt.state[w]["momentum_buffer"], v2, rtol=0, atol=1e-15)


def test_manual_switch_uses_estimate_and_lr_schedule_keeps_scaling():
    w = nn.Parameter(torch.tensor([1.0, -1.0], dtype=torch.float64))
    opt = SWATS([w], lr=0.1)
    with pytest.raises(ValueError, match="No SGD learning rate"):
        opt.switch_to_sgd()
    for g in ([1.0, 2.0], [0.5, 1.5], [0.8, 1.0]):
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    estimate = opt.metrics()["swats_sgd_lr"]
    opt.switch_to_sgd()
    assert opt.metrics()["swats_sgd_lr"] == estimate > 0
    opt.param_groups[0]["lr"] = 0.05  # a schedule halves the lr after the switch: the SGD lr follows
    assert opt.metrics()["swats_sgd_lr"] == pytest.approx(estimate / 2)


def test_groups_switch_independently_and_metrics_name_them():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    opt = SWATS([{"params": [a]}, {"params": [b]}])
    a.grad = b.grad = torch.ones(2)
    opt.step()
    opt.switch_to_sgd(lr=0.1)
    m = opt.metrics()
    assert set(m) == {"swats_phase", "swats_switch_step", "swats_sgd_lr",
                      "swats_phase_g1", "swats_switch_step_g1", "swats_sgd_lr_g1"}
    assert m["swats_phase"] == m["swats_phase_g1"] == "sgd"
