"""SWATS: start with Adam, switch to SGD when the SGD learning rate that Adam implies has settled
(Keskar & Socher 2017, "Improving Generalization Performance by Switching from Adam to SGD").

Per parameter group, at Adam step k with step p_k and gradient g_k (over the whole group):
    gamma_k  = p_k^T p_k / (-p_k^T g_k)             the SGD lr whose step, projected on p_k, equals p_k
    lambda_k = beta2 lambda_{k-1} + (1 - beta2) gamma_k
    switch when k > 1 and |lambda_k / (1 - beta2^k) - gamma_k| < eps, with Lambda = lambda_k / (1 - beta2^k);
then SGD with momentum beta1 from a zero buffer: v_k = beta1 v_{k-1} + g_k, w_k = w_{k-1} - (1 - beta1) Lambda v_k.

Unlike the common PyTorch ports it keeps the momentum buffer intact (they scale it in place, giving momentum
beta1 (1 - beta1)), tests the switch with the paper's absolute tolerance, and decides per group, not per tensor.
An lr schedule keeps working after the switch: the SGD lr is Lambda * lr_now / lr_at_switch.
"""
import torch
from torch.optim.optimizer import ParamsT

from .framework import (
    ChainOptimizer,
    Piece,
    check_betas,
    check_nonneg,
    descent,
    ema,
    ema_of_squares,
    l2_decay,
    momentum,
)


class projection(Piece):
    """Evaluate Adam's step and sum r^T r and r^T g over the group, where p = -lr r (for gamma_k)."""

    totals = ("rr", "rg")

    def __init__(self):
        self.rr = self.rg = 0.0

    def __call__(self, tile, d):
        d.materialize()
        (r, c), = d.terms
        self.rr = self.rr + c * c * tile.ops.dot(r, r)
        self.rg = self.rg + c * tile.ops.dot(r, d.g)


class SWATS(ChainOptimizer):
    """Adam, then SGD with momentum beta1 and the learning rate Adam's steps estimate.

    `eps` is both Adam's epsilon (outside the root of the uncorrected second moment, as in the paper) and the switch
    tolerance unless `switch_eps` is given. The phase ('adam' / 'sgd'), the Adam step count `k`, the switch step, the
    running estimate and Lambda live in each param group, so they survive `state_dict()` round trips; `metrics()`
    reports them and `switch_to_sgd(lr)` switches by hand (the seed's "Adam first, then SGD").
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-9,
                 weight_decay: float = 0, switch_eps: float | None = None, *, maximize: bool = False,
                 foreach: bool | None = None, fused: bool | None = None) -> None:
        check_nonneg("eps", eps)
        if switch_eps is not None:
            check_nonneg("switch_eps", switch_eps)
        defaults = dict(lr=lr, betas=check_betas(betas), eps=eps, switch_eps=switch_eps, maximize=maximize,
                        weight_decay=check_nonneg("weight_decay", weight_decay), phase="adam", k=0,
                        lambda_ema=0.0, switch_step=None, sgd_lr=None, lr_at_switch=None)
        super().__init__(params, defaults, foreach, fused)

    def chain(self, group):
        b1, b2 = group["betas"]
        if group["phase"] == "sgd":
            return [l2_decay(group["weight_decay"]), momentum(b1), descent((1.0 - b1) * self._sgd_lr(group))]
        return [l2_decay(group["weight_decay"]), ema(b1),
                ema_of_squares(b2, group["eps"], bias_correction=True, eps_placement="raw"),
                projection(), descent(group["lr"])]

    def after_group(self, group, pieces):
        if group["phase"] != "adam":
            return
        proj = self.piece(pieces, "projection")
        group["k"] += 1
        rr, rg = torch.stack([proj.rr, proj.rg]).tolist()  # the step's one host sync
        if rg == 0.0:  # p^T g = 0: no projection to learn from this step
            return
        b2, k = group["betas"][1], group["k"]
        gamma = group["lr"] * rr / rg
        group["lambda_ema"] = b2 * group["lambda_ema"] + (1.0 - b2) * gamma
        estimate = group["lambda_ema"] / (1.0 - b2**k)
        tol = group["eps"] if group["switch_eps"] is None else group["switch_eps"]
        if k > 1 and abs(estimate - gamma) < tol:
            self._switch(group, estimate)

    def _switch(self, group, sgd_lr):
        group.update(phase="sgd", switch_step=group["k"], sgd_lr=sgd_lr, lr_at_switch=group["lr"])
        for p in group["params"]:  # SGD starts from a zero momentum buffer
            self.state[p].pop("momentum_buffer", None)

    def _sgd_lr(self, group):
        if group["phase"] == "sgd":
            scale = group["lr"] / group["lr_at_switch"] if group["lr_at_switch"] else 1.0
            return group["sgd_lr"] * scale
        return group["lambda_ema"] / (1.0 - group["betas"][1] ** group["k"]) if group["k"] else 0.0

    def switch_to_sgd(self, lr: float | None = None) -> None:
        """Switch every group still in the Adam phase to SGD now, with SGD lr `lr` or, if None, the current estimate."""
        for group in self.param_groups:
            if group["phase"] == "sgd":
                continue
            if lr is None and not group["lambda_ema"]:
                raise ValueError("No SGD learning rate has been estimated yet (no Adam step taken); "
                                 "pass switch_to_sgd(lr=...) or take some steps first.")
            self._switch(group, check_nonneg("lr", lr) if lr is not None else self._sgd_lr(group))

    def metrics(self) -> dict[str, str | int | float]:
        """Phase, switch step (-1 before the switch) and SGD lr (the running estimate before it), per group;
        group 0 unsuffixed, further groups with `_g<i>`."""
        out = {}
        for i, group in enumerate(self.param_groups):
            sfx = f"_g{i}" if i else ""
            out[f"swats_phase{sfx}"] = group["phase"]
            out[f"swats_switch_step{sfx}"] = -1 if group["switch_step"] is None else group["switch_step"]
            out[f"swats_sgd_lr{sfx}"] = float(self._sgd_lr(group))
        return out
