"""ParC speed, side by side in one run: spatial vs FFT vs 'auto' vs a 7x7 depthwise convolution,
and parc_convnext_xt vs convnext_xt images/s (inference and training).

    python benchmarks/bench_parc.py                 # layer table (N = 7..112) and the two networks
    python benchmarks/bench_parc.py --no-models --sizes 14 56 --repeats 3

One ParC layer: C=64, batch 8, depthwise, bias and positional embedding, forward + backward with a
dense output gradient. The default clock is the process's CPU time (`--clock wall` for elapsed
time): on a shared machine it does not count time spent waiting for a core, and with one thread
(`--threads 1`) it equals the compute thread's time. The variants are timed round-robin (each
repeat runs every variant once) and the best of the repeats is kept, so load from other processes
hits all of them alike; ratios are the figures to read, absolute times depend on the machine. 'auto' runs the impl it
picked (a cache lookup more), so its column differs from that impl's only by noise; "pick / faster"
is the time of its pick over the faster of spatial and FFT, from the same round-robin runs.
"""
import argparse
import os
import platform
import time

import torch
from torch import nn

import danlu
from danlu.models.layers import ParC
from danlu.models.layers.parc import set_parc_impl

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def best_times(fns, repeats, min_total_s=1.0, max_repeats=50):
    """Best time (s) of each zero-argument fn on `clock`, timed round-robin after one warm-up round.

    At least `repeats` rounds, and more (up to `max_repeats`) until the rounds took `min_total_s`,
    so the cheap cases, where noise weighs most, get the most samples."""
    best = {name: float("inf") for name in fns}
    spent, r = 0.0, 0
    while r <= repeats or (spent < min_total_s and r <= max_repeats):
        for name, fn in fns.items():
            start = clock()
            fn()
            elapsed = clock() - start
            spent += elapsed
            if r:
                best[name] = min(best[name], elapsed)
        r += 1
    return best


def layer_table(sizes, channels, batch, repeats, min_time):
    print(f"\n## One ParC layer: C={channels}, batch {batch}, depthwise, forward + backward (ms, best of >= {repeats})\n")
    print("| N | dir | spatial | FFT | auto (picks) | dw 7x7 | spatial / FFT | auto / faster | pick / faster | dw7x7 / FFT |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    crossover, worst_auto, worst_pick = {}, 0.0, 0.0
    for n in sizes:
        x = torch.randn(batch, channels, n, n, requires_grad=True)
        grad = torch.randn_like(x)
        conv = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        for direction in ("H", "V"):
            layers = {impl: ParC(channels, direction, n, impl=impl) for impl in ("spatial", "fft", "auto")}
            for m in layers.values():
                m.load_state_dict(layers["spatial"].state_dict())
            fns = {impl: (lambda m=m: m(x).backward(grad)) for impl, m in layers.items()}
            fns["dw7x7"] = lambda: conv(x).backward(grad)
            t = best_times(fns, repeats, min_time)
            picked = next(v for k, v in ParC.auto_choices.items() if k[0] == tuple(x.shape) and k[5] == direction and k[3])
            faster = min(t["spatial"], t["fft"])
            worst_auto = max(worst_auto, t["auto"] / faster)
            worst_pick = max(worst_pick, t[picked] / faster)
            if t["fft"] < t["spatial"] and direction not in crossover:
                crossover[direction] = n
            print(f"| {n} | {direction} | {t['spatial'] * 1e3:.2f} | {t['fft'] * 1e3:.2f} | {t['auto'] * 1e3:.2f} ({picked}) | "
                  f"{t['dw7x7'] * 1e3:.2f} | {t['spatial'] / t['fft']:.2f} | {t['auto'] / faster:.2f} | "
                  f"{t[picked] / faster:.2f} | {t['dw7x7'] / t['fft']:.2f} |", flush=True)
    for direction in ("H", "V"):
        print(f"\nParC-{direction}: FFT first faster than spatial at N = {crossover.get(direction, 'none of the sizes')}")
    print(f"'auto' vs the faster of spatial/FFT, worst ratio: timed {worst_auto:.2f}; "
          f"its pick's time in the same columns {worst_pick:.2f}")


def model_table(img_size, repeats):
    print(f"\n## parc_convnext_xt vs convnext_xt at {img_size}x{img_size} (best of >= {repeats}; "
          f"images/s on the chosen clock)\n")
    models = {"convnext_xt": danlu.create_model("convnext_xt")}
    for impl in ("spatial", "fft", "auto"):
        models[f"parc_convnext_xt ({impl})"] = set_parc_impl(danlu.create_model("parc_convnext_xt"), impl)
    print("| model | inference batch 1: ms/image | inference batch 8: images/s | training batch 8 (fwd+bwd): images/s "
          "| batch-1 time / convnext_xt |")
    print("|---|---|---|---|---|")
    results = {name: {} for name in models}
    with torch.no_grad():
        for m in models.values():
            m.eval()
        for batch in (1, 8):
            x = torch.randn(batch, 3, img_size, img_size)
            for name, t in best_times({name: (lambda m=m: m(x)) for name, m in models.items()}, repeats).items():
                results[name][batch] = t
    for m in models.values():
        m.train()
    x = torch.randn(8, 3, img_size, img_size)
    for name, t in best_times({name: (lambda m=m: m(x).sum().backward()) for name, m in models.items()}, repeats).items():
        results[name]["train"] = t
    base = results["convnext_xt"][1]
    for name, r in results.items():
        print(f"| {name} | {r[1] * 1e3:.1f} | {8 / r[8]:.1f} | {8 / r['train']:.1f} | {r[1] / base:.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[7, 14, 28, 56, 112])
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=1.0, help="keep repeating a layer case until it took this many seconds")
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--no-models", action="store_true", help="only the layer table")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="cpu: process CPU time (immune to waiting for a core on a shared machine; with several "
                         "threads it sums their work); wall: elapsed time")
    args = ap.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# bench_parc: torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock, "
          f"{os.cpu_count()} CPUs ({platform.machine()}), python {platform.python_version()}")
    layer_table(args.sizes, args.channels, args.batch, args.repeats, args.min_time)
    if not args.no_models:
        model_table(args.img_size, args.repeats)


if __name__ == "__main__":
    main()
