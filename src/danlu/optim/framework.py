"""The seed's one framework for optimizers, as composable pieces behind `torch.optim.Optimizer`.

Every optimizer from SGD to Nadam does the same four things at step t:

1. compute the gradient g_t (with L2 weight decay folded in, or decoupled decay applied to the weights);
2. compute a first moment m_t = phi(g_1..g_t) and a second moment V_t = psi(g_1..g_t);
3. take the descent step eta_t = lr * m_t / sqrt(V_t);
4. update w_{t+1} = w_t - eta_t.

A piece is one of those choices (an EMA first moment, a sum-of-squares second moment, ...). An optimizer is a
`ChainOptimizer` whose `chain(group)` lists its pieces; the pieces build a `Direction` -- the step kept as
sum_i c_i * m_i / den, unevaluated -- and `descent(lr)` applies it with one fused `addcdiv_` per term.

The pieces are written in the list-of-tensors ops of `ops`, so one chain runs two ways. Eagerly (`fused=False`,
the reference) every op is a `torch._foreach_*` call; on GPU one call covers a whole bucket, on CPU the lists are
grouped into tiles of about `CPU_TILE_NUMEL` elements -- small tensors (biases, norms) share one call, a large tensor
is a tile by itself -- so all of a tile's ops run while it is still in cache. Fused (`fused=True`, see `fused`), the
same pieces are traced into one compiled kernel that reads and writes each tensor once per step.

Composing a new optimizer takes a few lines. Adam with a centred second moment (V_t = EMA(g^2) - EMA(g)^2),
and two of its steps:

>>> class CenteredAdam(ChainOptimizer):
...     def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
...         super().__init__(params, dict(lr=lr, betas=check_betas(betas), eps=check_nonneg("eps", eps)))
...
...     def chain(self, group):
...         b1, b2 = group["betas"]
...         return [ema(b1), ema_of_squares(b2, group["eps"], bias_correction=True), centered(b2),
...                 descent(group["lr"])]
>>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
>>> opt = CenteredAdam([w], lr=0.1, betas=(0.5, 0.75), eps=0.0)
>>> for g in ([1.0, 2.0], [3.0, -1.0]):
...     w.grad = torch.tensor(g, dtype=torch.float64)
...     opt.step()
>>> w.detach()
tensor([ 0.7609, -2.1155], dtype=torch.float64)
"""
import math

import torch
from torch.optim.optimizer import ParamsT

from ..suggest import did_you_mean
from . import fused as _fused
from .ops import Foreach

# On CPU, elements per tile of small tensors (measured on ViT-S, 2^12..2^20): their ops share one foreach call.
CPU_TILE_NUMEL = 2**16


# ----------------------------------------------------------------------------------------------- validation
def check_lr(lr: float) -> float:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr >= 0):
        raise ValueError(f"Invalid learning rate {lr!r}: it must be a finite number >= 0.")
    return lr


def check_nonneg(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"Invalid {name} {value!r}: it must be a finite number >= 0.")
    return value


def check_unit(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise ValueError(f"Invalid {name} {value!r}: it must be in [0, 1).")
    return value


def check_betas(betas: tuple[float, float]) -> tuple[float, float]:
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"Invalid betas {betas!r}: give a pair (beta1, beta2), each in [0, 1).")
    return tuple(check_unit(f"beta{i + 1}", b) for i, b in enumerate(betas))


# ----------------------------------------------------------------------------------------------- the step
class Direction:
    """The step under construction: eta = lr * scale * sum_i(c_i * m_i) / den, with den = sqrt(V) + eps.

    `g` is the processed gradient, `terms` the first moment as (tensors, coefficient) pairs, `V` the second
    moment (None for SGD-like rules), `v_correction` its bias correction as (c, sqrt(c)) with V_hat = V / c (None:
    no correction), and `eps` / `eps_placement` say where eps goes in the denominator. `ops` runs the tensor math.
    """

    def __init__(self, grads, owned, ops):
        self.ops = ops
        self.g, self.g_owned = grads, owned  # owned: g is a temporary we may overwrite
        self.terms = [(grads, 1.0)]
        self.scale = 1.0
        self.V, self.V_owned = None, False
        self.v_correction, self.eps, self.eps_placement = None, 0.0, "outside"
        self._den = None

    def set_gradient(self, grads, owned):
        self.g, self.g_owned, self.terms = grads, owned, [(grads, 1.0)]

    def set_second_moment(self, V, owned=False):
        self.V, self.V_owned, self._den = V, owned, None

    def denominator(self):
        """The denominator with eps placed as the optimizer's paper/torch places it (computed once, then cached)."""
        if self._den is None and self.V is not None:
            ops, corr, eps = self.ops, self.v_correction, self.eps
            if self.eps_placement == "inside":  # AdaDelta: sqrt(V_hat + eps) = sqrt(V + eps c) / sqrt(c)
                den = ops.add(self.V, eps if corr is None else eps * corr[0])
                ops.sqrt_(den)
                if corr is not None:
                    self.scale = self.scale * corr[1]
            else:
                if self.eps_placement == "corrected_root" and corr is not None:  # torch's NAdam: sqrt(V / c) + eps
                    den = ops.div(self.V, corr[0])
                    ops.sqrt_(den)
                elif self.V_owned:
                    ops.sqrt_(self.V)
                    den = self.V
                else:
                    den = ops.sqrt(self.V)
                if corr is not None and self.eps_placement == "raw":  # SWATS paper: sqrt(V) + eps, c moves to m
                    self.scale = self.scale * corr[1]
                elif corr is not None and self.eps_placement == "outside":  # torch's Adam: sqrt(V) / sqrt(c) + eps
                    ops.div_(den, corr[1])
                ops.add_(den, eps)
            self._den = den
        return self._den

    def materialize(self):
        """Evaluate the direction into one fresh tensor list r; the step becomes the single term (r, c)."""
        ops, den = self.ops, self.denominator()
        (x, c), *rest = self.terms
        out = ops.div(x, den) if den is not None else ops.clone(x)
        for y, cy in rest:
            if den is not None:
                ops.addcdiv_(out, y, den, cy / c)
            else:
                ops.add_(out, y, alpha=cy / c)
        self.terms, self.scale = [(out, c * self.scale)], 1.0
        self.set_second_moment(None)
        return out


class Tile:
    """One tile of a bucket: aligned lists of params and state tensors (`state[key]`), and the ops to use on them."""

    __slots__ = ("params", "state", "ops")

    def __init__(self, params, state, ops):
        self.params, self.state, self.ops = params, state, ops


def run_tile(pieces, keys, maximize, ops, params, grads, states):
    """The chain on one tile: `states` holds one tensor list per state key, in `keys` order."""
    tile = Tile(params, dict(zip(keys, states)), ops)
    d = Direction(ops.neg(grads) if maximize else grads, maximize, ops)
    for piece in pieces:
        piece(tile, d)


# ----------------------------------------------------------------------------------------------- pieces
class Piece:
    """One stage of the framework. `state` maps a state key to its initial fill value (tensors like the param).

    `prepare(bucket)` runs on the host once per bucket of parameters sharing a step t and computes that step's
    coefficients (bias corrections, ...) as Python numbers; it also keeps scalar state such as NAdam's mu_product.
    `__call__(tile, d)` runs on every tile and edits the Direction `d`, with the ops in `tile.ops` only.
    The fused path passes every number attribute of a piece as a run-time scalar (a 0-d tensor: no recompiling when
    a schedule changes lr or betas) and bakes every other attribute into the kernel, so `__call__` computes with the
    numbers but branches only on the others (flags, names, the chain's shape). `totals` names number attributes
    that sum a reduction over the group (SWATS's projections) as 0-d tensors. `name` (the class name) addresses the
    piece in a chain, see `ChainOptimizer.piece`.
    """

    state = {}
    totals = ()

    @property
    def name(self) -> str:
        return type(self).__name__

    def prepare(self, bucket):
        pass

    def __call__(self, tile, d):
        raise NotImplementedError


class l2_decay(Piece):
    """Weight decay as L2: g_t <- g_t + wd * w_{t-1} (torch's default `weight_decay`)."""

    def __init__(self, wd):
        self.wd, self.active = wd, wd != 0

    def __call__(self, tile, d):
        if self.active:
            if d.g_owned:
                tile.ops.add_(d.g, tile.params, alpha=self.wd)
            else:
                d.set_gradient(tile.ops.add(d.g, tile.params, alpha=self.wd), owned=True)


class decoupled_decay(Piece):
    """Decoupled weight decay (AdamW): w <- w * (1 - lr * wd), applied to the weights, not the gradient."""

    def __init__(self, wd, lr):
        self.factor, self.active = 1.0 - lr * wd, wd != 0

    def __call__(self, tile, d):
        if self.active:
            tile.ops.mul_(tile.params, self.factor)


class momentum(Piece):
    """Heavy-ball first moment b_t = mu b_{t-1} + (1 - dampening) x_t with b_1 = x_1; Nesterov: m_t = x_t + mu b_t.

    x_t is the current direction: the gradient for SGD, or g_t / sqrt(V_t) when a second moment came first
    (RMSprop's momentum, where the buffer starts at zero and there is no dampening or Nesterov).
    """

    state = {"momentum_buffer": 0.0}

    def __init__(self, mu, dampening=0.0, nesterov=False):
        self.mu, self.dampening, self.nesterov = mu, dampening, nesterov

    def prepare(self, bucket):
        # torch's SGD starts the buffer as a copy of the first x, without dampening: the zero buffer times 0, plus x
        self.keep, self.gain = (0.0, 1.0) if bucket.t == 1 else (self.mu, 1.0 - self.dampening)

    def __call__(self, tile, d):
        ops, buf = tile.ops, tile.state["momentum_buffer"]
        (x, c), = d.terms
        if d.V is not None:
            den = d.denominator()
            ops.mul_(buf, self.mu)
            ops.addcdiv_(buf, x, den, c * d.scale)
            d.terms, d.scale = [(buf, 1.0)], 1.0
            d.set_second_moment(None)
            return
        ops.mul_(buf, self.keep)
        ops.add_(buf, x, alpha=c * self.gain)
        d.terms = [(ops.add(x, buf, alpha=self.mu), c)] if self.nesterov else [(buf, 1.0)]


class ema(Piece):
    """First moment as an exponential moving average m_t = beta m_{t-1} + (1 - beta) g_t, optionally / (1 - beta^t)."""

    state = {"exp_avg": 0.0}

    def __init__(self, beta, bias_correction=True):
        self.beta, self.bias_correction = beta, bias_correction

    def prepare(self, bucket):
        self.c = 1.0 / (1.0 - self.beta**bucket.t) if self.bias_correction else 1.0

    def __call__(self, tile, d):
        m = tile.state["exp_avg"]
        tile.ops.lerp_(m, d.g, 1.0 - self.beta)
        d.terms = [(m, self.c)]


class nesterov_ema(Piece):
    """NAdam's first moment (Dozat): an EMA with a warming momentum schedule mu_t = beta (1 - 0.5 * 0.96^(t psi)),
    looked ahead one step: m_hat = mu_{t+1} m_t / (1 - prod^{t+1} mu) + (1 - mu_t) g_t / (1 - prod^t mu)."""

    state = {"exp_avg": 0.0}

    def __init__(self, beta, momentum_decay):
        self.beta, self.psi = beta, momentum_decay

    def prepare(self, bucket):
        t = bucket.t
        mu = self.beta * (1.0 - 0.5 * 0.96 ** (t * self.psi))
        mu_next = self.beta * (1.0 - 0.5 * 0.96 ** ((t + 1) * self.psi))
        product = bucket.scalar("mu_product", 1.0) * mu
        bucket.set_scalar("mu_product", product)
        self.c_grad = (1.0 - mu) / (1.0 - product)
        self.c_avg = mu_next / (1.0 - product * mu_next)

    def __call__(self, tile, d):
        m = tile.state["exp_avg"]
        tile.ops.lerp_(m, d.g, 1.0 - self.beta)
        d.terms = [(d.g, self.c_grad), (m, self.c_avg)]


class sum_of_squares(Piece):
    """AdaGrad's second moment V_t = tau + sum_{i<=t} g_i^2, then sqrt(V_t) + eps."""

    state = {"sum": 0.0}

    def __init__(self, eps, initial_accumulator_value=0.0):
        self.eps = eps
        self.state = {"sum": initial_accumulator_value}

    def __call__(self, tile, d):
        V = tile.state["sum"]
        tile.ops.addcmul_(V, d.g, d.g, value=1.0)
        d.set_second_moment(V)
        d.eps = self.eps


class ema_of_squares(Piece):
    """Second moment as an EMA V_t = beta V_{t-1} + (1 - beta) g_t^2 (RMSProp, AdaDelta, Adam).

    `bias_correction` divides by 1 - beta^t (Adam). `eps_placement`: 'outside' sqrt(V_hat) + eps, computed as
    sqrt(V) / sqrt(c) + eps (torch's Adam); 'corrected_root' the same value computed as sqrt(V / c) + eps (torch's
    NAdam; the two orders are kept so results match torch's bit for bit); 'inside' sqrt(V_hat + eps) (AdaDelta);
    'raw' sqrt(V) + eps with the correction moved to the numerator (the SWATS paper's Adam).
    """

    def __init__(self, beta, eps, bias_correction=False, eps_placement="outside", key="exp_avg_sq"):
        self.beta, self.eps, self.bias_correction, self.eps_placement, self.key = (
            beta, eps, bias_correction, eps_placement, key)
        self.state = {key: 0.0}

    def prepare(self, bucket):
        self.c = 1.0 - self.beta**bucket.t if self.bias_correction else 1.0
        self.c_root = math.sqrt(self.c)

    def __call__(self, tile, d):
        V = tile.state[self.key]
        tile.ops.mul_(V, self.beta)
        tile.ops.addcmul_(V, d.g, d.g, value=1.0 - self.beta)
        d.set_second_moment(V)
        d.v_correction = (self.c, self.c_root) if self.bias_correction else None
        d.eps, d.eps_placement = self.eps, self.eps_placement


class centered(Piece):
    """Centred second moment V_t - EMA(g)^2, i.e. a variance estimate (centred RMSprop)."""

    state = {"grad_avg": 0.0}

    def __init__(self, beta):
        self.beta = beta

    def __call__(self, tile, d):
        avg = tile.state["grad_avg"]
        tile.ops.lerp_(avg, d.g, 1.0 - self.beta)
        d.set_second_moment(tile.ops.addcmul(d.V, avg, avg, value=-1.0), owned=True)


class running_max(Piece):
    """AMSGrad: V_t <- max(V_max, V_t), the maximum over the raw (uncorrected) V as torch does."""

    state = {"max_exp_avg_sq": 0.0}

    def __call__(self, tile, d):
        vmax = tile.state["max_exp_avg_sq"]
        tile.ops.maximum_(vmax, d.V)
        d.set_second_moment(vmax)


class unit_correction(Piece):
    """AdaDelta's units fix: m_t = g_t * sqrt(U_{t-1} + eps), U the EMA of squared past steps; the step is evaluated
    here because U needs it: delta_t = m_t / sqrt(V_t + eps), U_t = rho U_{t-1} + (1 - rho) delta_t^2."""

    state = {"acc_delta": 0.0}

    def __init__(self, rho, eps):
        self.rho, self.eps = rho, eps

    def __call__(self, tile, d):
        ops, U = tile.ops, tile.state["acc_delta"]
        delta = ops.add(U, self.eps)
        ops.sqrt_(delta)
        ops.div_(delta, d.denominator())
        ops.mul_(delta, d.g)
        ops.mul_(U, self.rho)
        ops.addcmul_(U, delta, delta, value=1.0 - self.rho)
        d.terms, d.scale = [(delta, d.scale)], 1.0
        d.set_second_moment(None)


class lr_decay(Piece):
    """AdaGrad's learning-rate decay: lr_t = lr / (1 + (t - 1) * decay)."""

    def __init__(self, decay):
        self.decay = decay

    def prepare(self, bucket):
        self.divisor = 1.0 + (bucket.t - 1) * self.decay

    def __call__(self, tile, d):
        d.scale = d.scale / self.divisor


class descent(Piece):
    """Steps 3 and 4: w <- w - lr * scale * sum_i c_i m_i / den, one fused op per term."""

    def __init__(self, lr):
        self.lr = lr

    def __call__(self, tile, d):
        den = d.denominator()
        for x, c in d.terms:
            value = -self.lr * d.scale * c
            if den is None:
                tile.ops.add_(tile.params, x, alpha=value)
            else:
                tile.ops.addcdiv_(tile.params, x, den, value)


# ----------------------------------------------------------------------------------------------- the optimizer
class Bucket:
    """Parameters of one group that share device, dtype and step count: one foreach call covers them."""

    def __init__(self, group, params, grads, states, t):
        self.group, self.params, self.grads, self.states, self.t = group, params, grads, states, t

    def scalar(self, key, default):
        return self.states[0].get(key, default)

    def set_scalar(self, key, value):
        for s in self.states:
            s[key] = value


def _tiles(params, lists, tile_numel):
    """Group aligned tensor lists into tiles: runs of small tensors up to `tile_numel` elements share a tile, a
    tensor of `tile_numel` or more is a tile by itself (so at most one large tensor's temporaries are alive, as in
    torch's for-loop, and the allocator reuses them instead of returning memory to the OS and faulting it back)."""
    cur, count = [[] for _ in lists], 0
    for i, p in enumerate(params):
        n = p.numel()
        if n >= tile_numel:
            if count:
                yield cur
                cur, count = [[] for _ in lists], 0
            yield [[x[i]] for x in lists]
            continue
        for c, x in zip(cur, lists):
            c.append(x[i])
        count += n
        if count >= tile_numel:
            yield cur
            cur, count = [[] for _ in lists], 0
    if count:
        yield cur


class ChainOptimizer(torch.optim.Optimizer):
    """A `torch.optim.Optimizer` whose update is the chain of pieces returned by `chain(group)`.

    Subclasses give `chain`; everything else (state in `self.state[p]`, param groups, `state_dict`, lr schedulers,
    `maximize`, the multi-tensor path) is here. `fused` picks how the chain runs: False runs the pieces eagerly, one
    foreach op at a time (the reference: torch's for-loop results bit for bit; `foreach=False` then goes one tensor
    at a time); True compiles the chain into one kernel per tile (`danlu.optim.fused`: the first step compiles, a
    few seconds per chain, dtype and device); None (the default) fuses when the optimizer steps at least
    `fused.AUTO_NUMEL` elements, so the compile pays for itself, and runs eagerly below that, when `foreach` is
    given, or where compiling is unavailable. The choice is not part of `state_dict`: the two paths share state.
    """

    def __init__(self, params: ParamsT, defaults: dict, foreach: bool | None = None, fused: bool | None = None) -> None:
        check_lr(defaults["lr"])
        if fused and foreach:
            raise ValueError("fused=True and foreach=True exclude each other (foreach picks an eager path); "
                             "give one of them.")
        defaults.setdefault("maximize", False)
        defaults.setdefault("foreach", foreach)
        super().__init__(params, defaults)
        self.fused = fused

    def __getstate__(self):
        return {**super().__getstate__(), "fused": self.fused}

    def chain(self, group):
        raise NotImplementedError

    @staticmethod
    def piece(pieces: list[Piece], name: str) -> Piece:
        """The piece called `name` in a chain, so hooks such as `after_group` need not know its position."""
        names = [p.name for p in pieces]
        if name not in names:
            raise ValueError(f"the chain has no piece '{name}'{did_you_mean(name, names)}; it has {', '.join(names)}")
        return pieces[names.index(name)]

    def _buckets(self, group, pieces):
        keys = {}
        for piece in pieces:
            keys.update(piece.state)
        by_key = {}
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse or p.is_complex():
                raise ValueError(f"{type(self).__name__} supports only dense real parameters and gradients; use "
                                 "torch.optim.SparseAdam for sparse gradients, torch.view_as_real for complex ones.")
            state = self.state[p]
            t = state["step"] = state.get("step", 0) + 1
            for key, fill in keys.items():
                if key not in state:
                    state[key] = torch.full_like(p, fill, memory_format=torch.preserve_format)
            bucket = by_key.get((p.device, p.dtype, t))
            if bucket is None:
                bucket = by_key[(p.device, p.dtype, t)] = ([], [], [])
            bucket[0].append(p), bucket[1].append(grad), bucket[2].append(state)
        return [(Bucket(group, params, grads, states, t), list(keys))
                for (_, _, t), (params, grads, states) in by_key.items()]

    def _fuse(self, group, numel):
        if self.fused is False or torch.compiler.is_compiling():
            return False
        if self.fused is None:
            return group["foreach"] is None and numel >= _fused.AUTO_NUMEL and _fused.available()
        return True

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []
        for group in self.param_groups:
            pieces = self.chain(group)
            work.append((group, pieces, self._buckets(group, pieces)))
        numel = sum(p.numel() for _, _, buckets in work for bucket, _ in buckets for p in bucket.params)
        for group, pieces, buckets in work:
            for bucket, keys in buckets:
                for piece in pieces:
                    piece.prepare(bucket)
                lists = [bucket.params, bucket.grads] + [[s[k] for s in bucket.states] for k in keys]
                fused = self._fuse(group, numel) and _fused.run(pieces, keys, group["maximize"], lists, run_tile,
                                                                warn=self.fused is True)
                if not fused:
                    self._run(group, lists, keys, pieces)
            if buckets:
                self.after_group(group, pieces)
        return loss

    def _run(self, group, lists, keys, pieces):
        params = lists[0]
        if group["foreach"] is False:
            chunks = ([[lst[i]] for lst in lists] for i in range(len(params)))
        elif params[0].device.type == "cpu":
            chunks = _tiles(params, lists, CPU_TILE_NUMEL)
        else:
            chunks = (lists,)
        for p, g, *states in chunks:
            run_tile(pieces, keys, group["maximize"], Foreach, p, g, states)

    def after_group(self, group, pieces):
        """Hook for optimizers that decide something per group after a step that updated some of its parameters
        (SWATS's switch)."""
