"""create_optimizer / create_scheduler: names, weight-decay groups, schedule values and torch's protocol."""
import math

import pytest
import torch
from torch import nn

import danlu.optim as O


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.fc = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 2)
        self.frozen = nn.Parameter(torch.zeros(3, 3), requires_grad=False)

    def no_weight_decay(self):
        return {"pos_embed"}


@pytest.mark.parametrize("name,cls,extra", [
    ("sgd", O.SGD, {"momentum": 0, "nesterov": False}),
    ("SGDM", O.SGD, {"momentum": 0.9, "nesterov": False}),
    ("nag", O.SGD, {"momentum": 0.9, "nesterov": True}),
    ("adagrad", O.Adagrad, {}),
    ("adadelta", O.Adadelta, {}),
    ("rmsprop", O.RMSprop, {}),
    ("Adam", O.Adam, {"amsgrad": False}),
    ("adamw", O.AdamW, {"decoupled_weight_decay": True}),
    ("amsgrad", O.Adam, {"amsgrad": True}),
    ("nadam", O.NAdam, {}),
    ("swats", O.SWATS, {"phase": "adam"}),
])
def test_seed_names(name, cls, extra):
    opt = O.create_optimizer([nn.Parameter(torch.zeros(2))], name, lr=0.05)
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.05
    for k, v in extra.items():
        assert opt.param_groups[0][k] == v


def test_lr_none_keeps_default_and_kwargs_override_presets():
    assert O.create_optimizer([nn.Parameter(torch.zeros(2))], "nadam").param_groups[0]["lr"] == 2e-3
    opt = O.create_optimizer([nn.Parameter(torch.zeros(2))], "sgdm", lr=0.1, momentum=0.5)
    assert opt.param_groups[0]["momentum"] == 0.5


def test_model_gets_no_weight_decay_group():
    model = _Net()
    opt = O.create_optimizer(model, "adamw", lr=1e-3, weight_decay=0.05)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model.fc.weight), id(model.head.weight)}
    assert {id(p) for p in no_decay["params"]} == {id(model.pos_embed), id(model.fc.bias), id(model.norm.weight),
                                                   id(model.norm.bias), id(model.head.bias)}
    # Without weight decay: a single group, frozen parameters left out.
    opt = O.create_optimizer(model, "sgd", lr=0.1)
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == 7


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"^unknown optimizer 'adamm' \(did you mean adam or nadam or adamw\?\); "
                                         r"choose one of: sgd, sgdm, "):
        O.create_optimizer([nn.Parameter(torch.zeros(2))], "adamm")
    with pytest.raises(ValueError, match=r"^unknown schedule 'cosin' \(did you mean cosine\?\); choose one of: none, "):
        O.create_scheduler(O.SGD([nn.Parameter(torch.zeros(2))], lr=0.1), "cosin", epochs=3)


def _lrs(name, steps, **kw):
    opt = O.SGD([nn.Parameter(torch.zeros(2))], lr=1.0)
    sched = O.create_scheduler(opt, name, **kw)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out, sched


def test_cosine_with_linear_warmup_values():
    lrs, sched = _lrs("cosine", 12, epochs=6, steps_per_epoch=2, warmup_epochs=1)
    assert sched.interval == "step"
    assert lrs[:2] == pytest.approx([1 / 3, 2 / 3])  # warm-up steps t=0,1 of 2: (t + 1) / 3
    expected = [0.5 * (1 + math.cos(math.pi * t / 10)) for t in range(10)]  # 10 post-warm-up steps
    assert lrs[2:] == pytest.approx(expected)


def test_step_and_multistep_decay_on_epoch_boundaries():
    lrs, sched = _lrs("step", 8, epochs=4, steps_per_epoch=2, step_size=1, gamma=0.5)
    assert sched.interval == "step" and lrs == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125])
    lrs, _ = _lrs("multistep", 8, epochs=4, steps_per_epoch=2, milestones=[1, 3], gamma=0.1)
    assert lrs == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01])


def test_plateau_steps_per_epoch_on_the_validation_loss():
    opt = O.SGD([nn.Parameter(torch.zeros(2))], lr=1.0)
    sched = O.create_scheduler(opt, "plateau", epochs=10, factor=0.5, patience=1)
    assert sched.interval == "epoch"
    for loss in [1.0, 0.9, 0.95, 0.97]:
        sched.step(loss)
    assert opt.param_groups[0]["lr"] == 0.5
    assert O.create_scheduler(opt, "none", epochs=3) is None


def test_scheduler_state_dict_round_trip():
    opt = O.SGD([nn.Parameter(torch.zeros(2))], lr=1.0)
    sched = O.create_scheduler(opt, "cosine", epochs=10, steps_per_epoch=3, warmup_epochs=2)
    for _ in range(7):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert "factor" not in state and state["last_epoch"] == 7
    opt2 = O.SGD([nn.Parameter(torch.zeros(2))], lr=1.0)
    sched2 = O.create_scheduler(opt2, "cosine", epochs=10, steps_per_epoch=3, warmup_epochs=2)
    sched2.load_state_dict(state)
    opt.step(), sched.step(), opt2.step(), sched2.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == sched2.get_last_lr()[0]
