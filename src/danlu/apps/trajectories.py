"""Where each optimizer goes: paths on 2-D test functions, drawn over their contour plots (the seed's pictures).

Each optimizer starts from the function's usual start point and runs `steps` steps of danlu.optim on a
2-vector; unless an lr is given, the lr is picked per (function, optimizer) from a log grid as the one with the
lowest final loss whose path stays in view (as the optimizer-visualisation scripts tune it, without the clipping).
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..optim import create_optimizer


@dataclass(frozen=True)
class Landscape:
    f: callable            # f(x, y) on tensors or arrays
    start: tuple           # (x0, y0)
    xlim: tuple
    ylim: tuple
    minima: tuple = ()     # global minima to mark
    tune_lr: bool = True   # False: unbounded below (saddle), keep a fixed lr instead of chasing -inf
    log_contours: bool = True


def _cos(v):
    return torch.cos(v) if isinstance(v, torch.Tensor) else np.cos(v)


FUNCTIONS = {
    "rosenbrock": Landscape(lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2, (-2.0, 2.0), (-2, 2), (-1, 3),
                               ((1.0, 1.0),)),
    "beale": Landscape(lambda x, y: (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2
                          + (2.625 - x + x * y**3) ** 2, (1.0, 1.5), (-4.5, 4.5), (-4.5, 4.5), ((3.0, 0.5),)),
    "saddle": Landscape(lambda x, y: x**2 - y**2, (-1.5, 1e-3), (-2, 2), (-2, 2), (), tune_lr=False,
                           log_contours=False),
    "rastrigin": Landscape(lambda x, y: 20 + (x**2 - 10 * _cos(2 * np.pi * x)) + (y**2 - 10 * _cos(2 * np.pi * y)),
                              (-2.0, 3.5), (-4.5, 4.5), (-4.5, 4.5), ((0.0, 0.0),), log_contours=False),
    "himmelblau": Landscape(lambda x, y: (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2, (-0.5, -0.5), (-5, 5), (-5, 5),
                               ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126))),
}
LR_GRID = np.logspace(-4, 0.5, 10)
FIXED_LR = 0.01


def run_path(fn, optimizer, lr, steps, **kwargs):
    """Optimise `fn` (a Landscape or its name) from its start point; returns (path (steps+1, 2), losses, opt)."""
    fn = FUNCTIONS[fn] if isinstance(fn, str) else fn
    w = torch.nn.Parameter(torch.tensor(fn.start, dtype=torch.float64))
    opt = create_optimizer([w], optimizer, lr=lr, **kwargs)
    path, losses = [w.detach().clone()], []
    for _ in range(steps):
        opt.zero_grad()
        loss = fn.f(w[0], w[1])
        loss.backward()
        opt.step()
        losses.append(loss.item())
        path.append(w.detach().clone())
    losses.append(fn.f(w[0], w[1]).item())
    return torch.stack(path).numpy(), np.array(losses), opt


def _score(fn, path, losses):
    (x0, x1), (y0, y1) = fn.xlim, fn.ylim
    inside = (path[:, 0] >= x0) & (path[:, 0] <= x1) & (path[:, 1] >= y0) & (path[:, 1] <= y1)
    return losses[-1] if np.isfinite(losses).all() and inside.all() else np.inf


def best_path(fn, optimizer, steps, lr=None):
    """The path with the given lr, or with the grid lr that ends lowest while staying in view."""
    fn = FUNCTIONS[fn] if isinstance(fn, str) else fn
    if lr is not None or not fn.tune_lr:
        lr = FIXED_LR if lr is None else lr
        return (lr, *run_path(fn, optimizer, lr, steps))
    runs = [(lr, *run_path(fn, optimizer, float(lr), steps)) for lr in LR_GRID]
    return min(runs, key=lambda r: _score(fn, r[1], r[2]))


def plot(name, results, out_path):
    """Contour plot of the function with one path per optimizer; the legend gives lr and final loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fn = FUNCTIONS[name]
    xs, ys = np.linspace(*fn.xlim, 300), np.linspace(*fn.ylim, 300)
    X, Y = np.meshgrid(xs, ys)
    Z = fn.f(X, Y)
    fig, ax = plt.subplots(figsize=(7, 6))
    levels = np.logspace(np.log10(max(Z.min(), 1e-3)), np.log10(Z.max()), 30) if fn.log_contours else 30
    ax.contour(X, Y, Z, levels=levels, cmap="viridis", linewidths=0.6,
               norm=matplotlib.colors.LogNorm() if fn.log_contours else None)
    for (opt_name, (lr, path, losses, opt)) in results.items():
        label = f"{opt_name} (lr {lr:.2g}): {losses[-1]:.3g}"
        if hasattr(opt, "metrics") and opt.metrics().get("swats_switch_step", -1) > 0:
            label += f", SGD from step {opt.metrics()['swats_switch_step']}"
        ax.plot(path[:, 0], path[:, 1], "-", lw=1.3, label=label)
    ax.plot(*fn.start, "ko", ms=5)
    for m in fn.minima:
        ax.plot(*m, "r*", ms=12)
    ax.set(xlim=fn.xlim, ylim=fn.ylim, title=f"{name}: {len(next(iter(results.values()))[2]) - 1} steps from {fn.start}",
           xlabel="x", ylabel="y")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def run(functions, optimizers, steps=300, lr=None, out_dir="trajectories"):
    """Write `<out_dir>/<function>.png` for each function and return {function: {optimizer: final loss}}."""
    unknown = [f for f in functions if f not in FUNCTIONS]
    if unknown:
        raise ValueError(f"Unknown test function(s) {', '.join(unknown)}; choose from {', '.join(FUNCTIONS)}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in functions:
        results = {o: best_path(name, o, steps, lr) for o in optimizers}
        plot(name, results, out_dir / f"{name}.png")
        summary[name] = {o: (r[0], float(r[2][-1])) for o, r in results.items()}
    return summary
