"""Optimizer step time, danlu.optim (fused and eager) vs torch.optim, over the parameters of vit_small_patch16_224 (22M).

For each optimizer: copies of the parameters with the same fixed gradients, stepped by ours fused (the default at
this size), ours eager (`fused=False`, the reference path), and torch's fused=True (where torch has it), foreach=True
and foreach=False, interleaved within each repeat so machine load hits all alike. Time is this process's CPU time by
default (`--clock cpu`): on a shared machine the wall clock mostly measures the other jobs. Ratio per repeat = ours /
best torch path (fastest of fused, foreach, for-loop); the table gives medians over the repeats. Targets: at most
1.1x torch's fused where torch has one, at most 0.5x its faster of foreach / for-loop where it has none. SWATS (no
torch counterpart; its Adam phase, the costlier one) is compared with torch's Adam without fused. `compile s` is
the wall time of our fused first step minus a later step: tracing and compiling the chain (cached on disk by
inductor, so a second run of this script is faster).

    python benchmarks/bench_optim.py [--repeats 7] [--steps 3] [--threads N] [--only adam,sgd_nesterov]
"""
import argparse
import statistics
import time

import torch

import danlu
from danlu import optim

CASES = {  # name: (our class, torch class, kwargs for both, whether torch has fused=True)
    "sgd_momentum": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9), True),
    "sgd_nesterov": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), True),
    "adagrad": (optim.Adagrad, torch.optim.Adagrad, {}, True),
    "adam": (optim.Adam, torch.optim.Adam, {}, True),
    "adamw": (optim.AdamW, torch.optim.AdamW, {}, True),
    "adadelta": (optim.Adadelta, torch.optim.Adadelta, {}, False),
    "rmsprop": (optim.RMSprop, torch.optim.RMSprop, {}, False),
    "nadam": (optim.NAdam, torch.optim.NAdam, {}, False),
    "swats": (optim.SWATS, torch.optim.Adam, {}, False),
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


def bench(template, ours_cls, torch_cls, kw, has_fused, repeats, steps, clock):
    opts = {"fused": ours_cls(make_params(template), fused=True, **kw),
            "eager": ours_cls(make_params(template), fused=False, **kw)}
    if has_fused:
        opts["torch_fused"] = torch_cls(make_params(template), fused=True, **kw)
    opts["torch_foreach"] = torch_cls(make_params(template), foreach=True, **kw)
    opts["torch_loop"] = torch_cls(make_params(template), foreach=False, **kw)
    t0 = time.perf_counter()
    opts["fused"].step()  # the first step traces and compiles; every first step allocates state
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    opts["fused"].step()
    compile_s = first - (time.perf_counter() - t0)
    for k, o in opts.items():
        if k != "fused":
            o.step()
    times = {k: [] for k in opts}
    for _ in range(repeats):
        for k, o in opts.items():
            times[k].append(time_steps(o, steps, clock))
    return times, compile_s


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
    print("| optimizer | ours fused | ours eager | torch fused | torch foreach | torch for-loop | fused / best torch "
          "| eager / best torch | target | compile s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    only = set(args.only.split(",")) if args.only else None
    for name, (ours_cls, torch_cls, kw, has_fused) in CASES.items():
        if only and name not in only:
            continue
        t, compile_s = bench(template, ours_cls, torch_cls, kw, has_fused, args.repeats, args.steps, clock)
        torch_keys = [k for k in t if k.startswith("torch")]
        best = [min(r) for r in zip(*(t[k] for k in torch_keys))]
        ratio = {k: statistics.median(o / b for o, b in zip(t[k], best)) for k in ("fused", "eager")}
        med = {k: f"{statistics.median(v) * 1e3:.1f}" for k, v in t.items()}
        target = "<= 1.1" if has_fused else "<= 0.5"
        print(f"| {name} | {med['fused']} | {med['eager']} | {med.get('torch_fused', '-')} | {med['torch_foreach']} | "
              f"{med['torch_loop']} | {ratio['fused']:.2f} | {ratio['eager']:.2f} | {target} | {compile_s:.1f} |")


if __name__ == "__main__":
    main()
