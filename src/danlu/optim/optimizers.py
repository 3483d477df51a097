"""The named optimizers, drop-in for torch.optim (same class names, arguments and defaults), each a chain of
framework pieces: (weight decay) -> first moment m_t -> second moment V_t -> descent w -= lr * m_t / sqrt(V_t)."""
from torch.optim.optimizer import ParamsT

from .framework import (
    ChainOptimizer,
    centered,
    check_betas,
    check_lr,
    check_nonneg,
    decoupled_decay,
    descent,
    ema,
    ema_of_squares,
    l2_decay,
    lr_decay,
    momentum,
    nesterov_ema,
    running_max,
    sum_of_squares,
    unit_correction,
)


def _weight_decay(group):
    if group.get("decoupled_weight_decay"):
        return decoupled_decay(group["weight_decay"], group["lr"])
    return l2_decay(group["weight_decay"])


class SGD(ChainOptimizer):
    """SGD, SGD with momentum (torch's b_t = mu b_{t-1} + (1 - dampening) g_t) and Nesterov: m_t from `momentum`, V_t = 1."""

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, fused: bool | None = None) -> None:
        check_nonneg("momentum", momentum)
        check_nonneg("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0; set momentum (e.g. 0.9) "
                             "or nesterov=False.")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize), foreach, fused)

    def chain(self, group):
        first = [momentum(group["momentum"], group["dampening"], group["nesterov"])] if group["momentum"] else []
        return [l2_decay(group["weight_decay"]), *first, descent(group["lr"])]


class Adagrad(ChainOptimizer):
    """AdaGrad: m_t = g_t, V_t = tau + sum g_i^2; step lr / (1 + (t-1) lr_decay) * g_t / (sqrt(V_t) + eps)."""

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, fused: bool | None = None) -> None:
        for name, v in [("lr_decay", lr_decay), ("weight_decay", weight_decay),
                        ("initial_accumulator_value", initial_accumulator_value), ("eps", eps)]:
            check_nonneg(name, v)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                                      initial_accumulator_value=initial_accumulator_value, maximize=maximize),
                         foreach, fused)

    def chain(self, group):
        return [l2_decay(group["weight_decay"]), sum_of_squares(group["eps"], group["initial_accumulator_value"]),
                lr_decay(group["lr_decay"]), descent(group["lr"])]


class Adadelta(ChainOptimizer):
    """AdaDelta: V_t = EMA_rho(g^2), m_t = g_t sqrt(U_{t-1} + eps) with U the EMA of squared steps (the units fix)."""

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach: bool | None = None, *, maximize: bool = False, fused: bool | None = None) -> None:
        check_nonneg("rho", rho)
        if rho > 1:
            raise ValueError(f"Invalid rho {rho!r}: it must be in [0, 1].")
        check_nonneg("eps", eps)
        check_nonneg("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize), foreach,
                         fused)

    def chain(self, group):
        rho, eps = group["rho"], group["eps"]
        return [l2_decay(group["weight_decay"]), ema_of_squares(rho, eps, eps_placement="inside", key="square_avg"),
                unit_correction(rho, eps), descent(group["lr"])]


class RMSprop(ChainOptimizer):
    """RMSprop: V_t = EMA_alpha(g^2) (minus EMA(g)^2 when centred); momentum, if any, on g_t / (sqrt(V_t) + eps)."""

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, foreach: bool | None = None,
                 maximize: bool = False, *, fused: bool | None = None) -> None:
        check_nonneg("alpha", alpha)
        if alpha > 1:
            raise ValueError(f"Invalid alpha {alpha!r}: it must be in [0, 1].")
        for name, v in [("eps", eps), ("weight_decay", weight_decay), ("momentum", momentum)]:
            check_nonneg(name, v)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize), foreach, fused)

    def chain(self, group):
        alpha = group["alpha"]
        pieces = [l2_decay(group["weight_decay"]), ema_of_squares(alpha, group["eps"], key="square_avg")]
        if group["centered"]:
            pieces.append(centered(alpha))
        if group["momentum"]:
            pieces.append(momentum(group["momentum"]))
        return pieces + [descent(group["lr"])]


class Adam(ChainOptimizer):
    """Adam: m_t = EMA_b1(g) / (1 - b1^t), V_t = EMA_b2(g^2) / (1 - b2^t) (AMSGrad: running max of the raw EMA)."""

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 decoupled_weight_decay: bool = False, fused: bool | None = None) -> None:
        check_lr(lr)
        super().__init__(params, dict(lr=lr, betas=check_betas(betas), eps=check_nonneg("eps", eps),
                                      weight_decay=check_nonneg("weight_decay", weight_decay), amsgrad=amsgrad,
                                      maximize=maximize, decoupled_weight_decay=decoupled_weight_decay), foreach,
                         fused)

    def chain(self, group):
        b1, b2 = group["betas"]
        pieces = [_weight_decay(group), ema(b1), ema_of_squares(b2, group["eps"], bias_correction=True)]
        if group["amsgrad"]:
            pieces.append(running_max())
        return pieces + [descent(group["lr"])]


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay w <- w (1 - lr wd) (Loshchilov & Hutter), wd default 1e-2."""

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         decoupled_weight_decay=True, fused=fused)


class NAdam(ChainOptimizer):
    """NAdam: Adam's V_t with Nesterov's look-ahead first moment and Dozat's momentum schedule."""

    def __init__(self, params: ParamsT, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, fused: bool | None = None) -> None:
        check_lr(lr)
        super().__init__(params, dict(lr=lr, betas=check_betas(betas), eps=check_nonneg("eps", eps),
                                      weight_decay=check_nonneg("weight_decay", weight_decay),
                                      momentum_decay=check_nonneg("momentum_decay", momentum_decay),
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize), foreach,
                         fused)

    def chain(self, group):
        b1, b2 = group["betas"]
        return [_weight_decay(group), nesterov_ema(b1, group["momentum_decay"]),
                ema_of_squares(b2, group["eps"], bias_correction=True, eps_placement="corrected_root"),
                descent(group["lr"])]


__all__ = ["SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "NAdam"]
