"""impl='auto': time both forms on the first call for each case and use the faster from then on.

The choices are cached for the whole process in `AUTO_CHOICES` (also `ParC.auto_choices`; clear it to
re-measure), keyed by (shape, dtype, device, grad mode, groups, direction).
"""
import time

import torch

from .forms import IMPL_FNS

AUTO_CHOICES = {}


def choose_impl(parc, x: torch.Tensor, weight: torch.Tensor, pe) -> str:
    """The form `parc` (a ParC layer) runs for input x with its runtime kernel and embedding."""
    grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    key = (tuple(x.shape), x.dtype, str(x.device), grad, parc.groups, parc.direction)
    choice = AUTO_CHOICES.get(key)
    if choice is None:
        if x.device.type == "meta" or torch.jit.is_tracing() or torch.compiler.is_compiling():
            return "spatial"  # nothing to time (or timing would be traced): the exportable form
        choice = AUTO_CHOICES[key] = fastest(x, weight, pe, parc.bias, parc.groups, parc.dim, grad)
    return choice


def fastest(x, weight, pe, bias, groups, dim, grad, min_rounds=3, max_rounds=20, budget_s=0.05) -> str:
    """The faster form: best time of each (forward, plus backward when training) on detached copies.

    The two are timed alternately, so a burst of load hits both alike, for at least `min_rounds`
    rounds and more (up to `max_rounds`) while the measurement has taken under `budget_s`, so
    cheap shapes, where noise is relatively largest, get the most samples. On CPU the clock is
    the process's CPU time, which does not count time spent waiting for a core on a busy machine.
    """
    args = [t.detach().requires_grad_(grad) if t is not None else None for t in (x, weight, pe, bias)]
    inputs = [a for a in args if a is not None]
    grad_out = torch.ones_like(x) if grad else None  # a dense gradient, like a real backward's
    cuda = x.device.type == "cuda"
    clock = time.perf_counter if cuda else time.process_time
    best = {"spatial": float("inf"), "fft": float("inf")}
    spent = 0.0
    for i in range(max_rounds + 1):  # the first round warms up (allocations, FFT plans)
        if i > min_rounds and spent > budget_s:
            break
        for name in best:
            if cuda:
                torch.cuda.synchronize()
            start = clock()
            y = IMPL_FNS[name](*args, groups, dim)
            if grad:
                torch.autograd.grad(y, inputs, grad_out)
            if cuda:
                torch.cuda.synchronize()
            elapsed = clock() - start
            spent += elapsed
            if i:
                best[name] = min(best[name], elapsed)
    return min(best, key=best.get)
