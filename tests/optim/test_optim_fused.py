"""The fused path (the chain traced into one compiled kernel per tile) against torch.optim's for-loop.

In float64, so rounding (~1e-16 a step; the kernels use no FMA where ATen does) stays far below the 1e-9 tolerance
and any formula difference shows. Each chain structure compiles once per process (a few seconds cold, ~0.2 s from
inductor's disk cache), so the default run covers one case per optimizer; the other cases are slow.
"""
import copy
import io
import warnings

import pytest
import torch
from test_optimizers import CASES, ONE_PER_OPTIMIZER, _data, _net
from test_optimizers import _train as train
from torch import nn

import danlu.optim as O
from danlu.optim import fused

REL = 1e-9  # float64; torch keeps NAdam's mu_product in float32, which alone gives ~3e-10


def _train(make_opt, kw, steps=100, model=None, sched_fn=None):
    """test_optimizers' training loop in float64, maximising where `kw` says so."""
    return train(make_opt, steps, -1.0 if kw.get("maximize") else 1.0, model, sched_fn, dtype=torch.float64)


def _rel(ours, ref):
    return ((ours - ref).abs().max() / ref.abs().max()).item()


def _compiles(monkeypatch):
    """Count the traces-and-compiles from here on, starting from an empty in-process cache."""
    count = []
    real = fused._trace_and_compile
    monkeypatch.setattr(fused, "_steps", {})
    monkeypatch.setattr(fused, "_trace_and_compile", lambda *a: count.append(1) or real(*a))
    return count


SLOW = [c for c in range(len(CASES)) if c not in ONE_PER_OPTIMIZER]
ALL = [*ONE_PER_OPTIMIZER, *(pytest.param(c, marks=pytest.mark.slow) for c in SLOW)]


@pytest.mark.parametrize("case", ALL, ids=lambda c: f"{CASES[c][0]}-{c}")
def test_fused_matches_torch_100_steps(case):
    name, kw = CASES[case]
    ref, _ = _train(lambda p: getattr(torch.optim, name)(p, foreach=False, **kw), kw)
    ours, _ = _train(lambda p: getattr(O, name)(p, fused=True, **kw), kw)
    assert _rel(ours, ref) <= REL


def test_lr_schedules_run_without_recompiling(monkeypatch):
    # OneCycleLR moves lr and beta1 every step: they are run-time scalars, not constants of the kernel.
    name, kw = CASES[14]
    sched = lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.02, total_steps=100)  # noqa: E731
    ref, _ = _train(lambda p: torch.optim.Adam(p, foreach=False, **kw), kw, sched_fn=sched)
    count = _compiles(monkeypatch)
    ours, _ = _train(lambda p: O.Adam(p, fused=True, **kw), kw, sched_fn=sched)
    assert _rel(ours, ref) <= REL and len(count) == 1


def test_state_dict_crosses_paths_and_resumes_identically():
    name, kw = CASES[14]  # Adam with amsgrad and weight decay: three state tensors and the step
    x, y = (t.double() for t in _data())

    def run(model, opt, n):
        for _ in range(n):
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()

    def start(path):
        model = _net().double()
        opt = O.Adam(model.parameters(), fused=path == "fused", **kw)
        run(model, opt, 30)
        buf = io.BytesIO()
        torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
        buf.seek(0)
        return model, opt, torch.load(buf, weights_only=True)

    def resume(saved, path):
        saved = copy.deepcopy(saved)  # load_state_dict keeps the given tensors, and the steps change them
        model = _net().double()
        model.load_state_dict(saved["model"])
        opt = O.Adam(model.parameters(), fused=path == "fused", **kw)
        opt.load_state_dict(saved["opt"])
        run(model, opt, 30)
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    straight = {}
    for path in ("eager", "fused"):
        model, opt, saved = start(path)
        run(model, opt, 30)
        straight[path] = (torch.cat([p.detach().reshape(-1) for p in model.parameters()]), saved)
    eager_saved, fused_saved = straight["eager"][1]["opt"], straight["fused"][1]["opt"]
    assert eager_saved["param_groups"] == fused_saved["param_groups"]
    for s_e, s_f in zip(eager_saved["state"].values(), fused_saved["state"].values()):
        assert set(s_e) == set(s_f) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"} and s_f["step"] == 30
    assert torch.equal(resume(straight["fused"][1], "fused"), straight["fused"][0])  # same path: bit for bit
    assert _rel(resume(straight["eager"][1], "fused"), straight["eager"][0]) <= REL
    assert _rel(resume(straight["fused"][1], "eager"), straight["fused"][0]) <= REL


def test_param_groups_layouts_and_packing():
    # Groups with their own hyperparameters; a channels-last conv weight and a weight whose gradient is strided
    # differently (packed, copied back) next to tensors aliased flat.

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(3)
            self.conv = nn.Conv2d(2, 4, 3).double().to(memory_format=torch.channels_last)
            self.fc = nn.Linear(16, 8).double()
            self.head = nn.Linear(8, 1, bias=False).double()

        def forward(self, x):
            return self.head(torch.tanh(self.fc(torch.tanh(self.conv(x)).mean((2, 3)).repeat(1, 4))))

    def trained(make_opt):
        model = Net()
        x = torch.randn(8, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
        opt = make_opt([{"params": [model.conv.weight, model.fc.weight], "weight_decay": 0.1},
                        {"params": [model.conv.bias, model.fc.bias, model.head.weight], "lr": 0.02}])
        for _ in range(50):
            opt.zero_grad()
            model(x).square().mean().backward()
            model.fc.weight.grad = model.fc.weight.grad.t().contiguous().t()  # same values, column-major
            opt.step()
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()]), model

    ref, _ = trained(lambda g: torch.optim.Adam(g, lr=0.01, foreach=False))
    ours, model = trained(lambda g: O.Adam(g, lr=0.01, fused=True))
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.fc.weight.grad.stride() != model.fc.weight.stride()  # this one went through the packed buffer
    assert _rel(ours, ref) <= REL


def test_chunks_of_tensors_match_torch(monkeypatch):
    # Three tensors to a call: the net's four tensors are one chunk of three, of different sizes, and one
    # single call.
    monkeypatch.setattr(fused, "CHUNK", 3)
    monkeypatch.setattr(fused, "_steps", {})
    name, kw = CASES[14]  # Adam with amsgrad and weight decay: three state lists
    ref, _ = _train(lambda p: torch.optim.Adam(p, foreach=False, **kw), kw)
    ours, _ = _train(lambda p: O.Adam(p, fused=True, **kw), kw)
    assert sorted(key[-1] for key in fused._steps) == [1, 3]
    assert _rel(ours, ref) <= REL


def test_swats_fused_matches_the_paper_in_chunks(monkeypatch):
    monkeypatch.setattr(fused, "CHUNK", 2)  # weight and bias in one chunk: the projections sum over both
    test_swats_fused_matches_the_paper()


def test_swats_fused_matches_the_paper():
    import test_swats as S

    ref_w, ref_switch, ref_Lam = S._reference(150)
    weight, bias = S._params()
    opt = O.SWATS([weight, bias], lr=S.LR, betas=(S.B1, S.B2), eps=S.EPS, switch_eps=S.SWITCH_EPS, fused=True)
    S._run(opt, weight, bias, 150)
    assert opt.metrics()["swats_switch_step"] == ref_switch
    assert opt.metrics()["swats_sgd_lr"] == pytest.approx(ref_Lam, rel=1e-9)
    assert torch.allclose(torch.cat([weight.detach().reshape(-1), bias.detach()]), ref_w, rtol=1e-9, atol=1e-12)


def test_a_failed_compile_warns_once_and_runs_the_eager_chain(monkeypatch):
    monkeypatch.setattr(fused, "_steps", {})
    monkeypatch.setattr(fused, "_warned", set())
    monkeypatch.setattr(fused, "_trace_and_compile", lambda *a: 1 / 0)
    name, kw = CASES[17]
    ref, _ = _train(lambda p: O.AdamW(p, fused=False, **kw), kw, steps=5)
    with pytest.warns(RuntimeWarning, match=r"could not compile .*ZeroDivisionError.*running it eagerly") as caught:
        ours, _ = _train(lambda p: O.AdamW(p, fused=True, **kw), kw, steps=5)
    assert len(caught) == 1 and torch.equal(ours, ref)


@pytest.mark.parametrize("flags,above,fuses", [
    ({}, True, True), ({}, False, False), ({"foreach": False}, True, False), ({"foreach": True}, True, False),
    ({"fused": True}, False, True), ({"fused": False}, True, False), ({"fused": True, "foreach": False}, False, True)])
def test_auto_fuses_from_auto_numel_unless_foreach_is_given(flags, above, fuses, monkeypatch):
    calls = []
    monkeypatch.setattr(fused, "run", lambda *a, **k: calls.append(1) and False)  # record, then run eagerly
    numel = sum(p.numel() for p in _net().parameters())
    monkeypatch.setattr(fused, "AUTO_NUMEL", numel if above else numel + 1)
    _train(lambda p: O.SGD(p, lr=0.1, **flags), {}, steps=1)
    assert bool(calls) == fuses


def test_fused_and_foreach_together_is_one_clear_error():
    with pytest.raises(ValueError, match=r"^fused=True and foreach=True exclude each other"):
        O.Adam([nn.Parameter(torch.zeros(2))], fused=True, foreach=True)


def test_deepcopy_keeps_the_choice():
    opt = O.Adam([nn.Parameter(torch.zeros(2))], fused=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert copy.deepcopy(opt).fused is False


def test_float32_matches_torch_100_steps():
    # In float32 the step's scalars are computed in float64 once per step and cast to float32 for the loop, as the
    # loop's arithmetic uses them (torch's fused Adam: 2.9e-7 from its for-loop here).
    name, kw = CASES[14]
    ref, _ = train(lambda p: torch.optim.Adam(p, foreach=False, **kw), 100, 1.0, dtype=torch.float32)
    ours, _ = train(lambda p: O.Adam(p, fused=True, **kw), 100, 1.0, dtype=torch.float32)
    assert _rel(ours, ref) <= 1e-6
