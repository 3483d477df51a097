"""Optimizer step time, danlu.optim vs torch.optim, over the parameters of vit_small_patch16_224 (22M).

For each optimizer: three copies of the parameters with the same fixed gradients, stepped by ours, torch's
foreach=True and torch's foreach=False, interleaved within each repeat so machine load hits all three alike.
Time is this process's CPU time by default (`--clock cpu`): on a shared machine the wall clock mostly measures
the other jobs. Ratio per repeat = ours / faster-of(torch foreach, torch for-loop); the table gives medians over
the repeats.
SWATS (no torch counterpart; Adam phase, which is the costlier one) is compared with torch's Adam.

    python benchmarks/bench_optim.py [--repeats 7] [--steps 3] [--threads N] [--only adam,sgd]
"""
import argparse
import statistics
import time

import torch

import danlu
from danlu import optim

CASES = {  # name: (our class, torch class, kwargs for both)
    "sgd_momentum": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    "sgd_nesterov": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    "adagrad": (optim.Adagrad, torch.optim.Adagrad, {}),
    "adadelta": (optim.Adadelta, torch.optim.Adadelta, {}),
    "rmsprop": (optim.RMSprop, torch.optim.RMSprop, {}),
    "adam": (optim.Adam, torch.optim.Adam, {}),
    "adamw": (optim.AdamW, torch.optim.AdamW, {}),
    "nadam": (optim.NAdam, torch.optim.NAdam, {}),
    "swats": (optim.SWATS, torch.optim.Adam, {}),  # its Adam phase against torch's Adam: target 1.5
}


def make_params(template):
    params = [torch.nn.Parameter(t.clone()) for t in template]
    for p in params:
        p.grad = torch.randn_like(p)
    return params


def time_steps(opt, steps, clock):
    t0 = clock()
    for _ in range(steps):
        opt.step()
    return (clock() - t0) / steps


def bench(template, ours_cls, torch_cls, kw, repeats, steps, clock):
    opts = {"ours": ours_cls(make_params(template), **kw),
            "torch_foreach": torch_cls(make_params(template), foreach=True, **kw),
            "torch_loop": torch_cls(make_params(template), foreach=False, **kw)}
    for o in opts.values():  # first step allocates state
        o.step()
    times = {k: [] for k in opts}
    for _ in range(repeats):
        for k, o in opts.items():
            times[k].append(time_steps(o, steps, clock))
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="cpu: this process's CPU time (robust on a shared, loaded machine); wall: elapsed time")
    ap.add_argument("--only", default=None, help="comma-separated case names")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.manual_seed(0)
    template = [p.detach() for p in danlu.create_model("vit_small_patch16_224").parameters()]
    n = sum(t.numel() for t in template)
    print(f"vit_small_patch16_224: {len(template)} tensors, {n / 1e6:.1f}M params; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.clock} clock; {args.repeats} repeats x {args.steps} steps; "
          "medians in ms")
    print("| optimizer | ours | torch foreach | torch for-loop | ratio ours/best torch | target |")
    print("|---|---|---|---|---|---|")
    only = set(args.only.split(",")) if args.only else None
    for name, (ours_cls, torch_cls, kw) in CASES.items():
        if only and name not in only:
            continue
        t = bench(template, ours_cls, torch_cls, kw, args.repeats, args.steps, clock)
        ratio = statistics.median(o / min(fe, lo) for o, fe, lo in zip(t["ours"], t["torch_foreach"], t["torch_loop"]))
        med = {k: statistics.median(v) * 1e3 for k, v in t.items()}
        target = {"adadelta": "-", "swats": "<= 1.5 (vs torch Adam)"}.get(name, "<= 1.15")
        print(f"| {name} | {med['ours']:.1f} | {med['torch_foreach']:.1f} | {med['torch_loop']:.1f} | "
              f"{ratio:.2f} | {target} |")

if __name__ == "__main__":
    main()
