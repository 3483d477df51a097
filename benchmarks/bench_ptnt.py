"""PyramidTNT throughput on CPU: forward and training step, fp32 and bf16 autocast, fused vs explicit attention.

All configurations run round-robin in one process (each timed iteration visits every configuration once),
so a shared machine's load affects them alike; the table reports the median images/s per configuration
and its ratio to fp32 explicit. "fused" always runs `F.scaled_dot_product_attention` with the relative-position
bias as its attn_mask, also in bf16 where danlu on CPU would by default take the explicit path.

    python benchmarks/bench_ptnt.py [--model ptnt_s_patch16_256] [--batch 8] [--iters 3] [--threads N]
"""
import argparse
import contextlib
import os
import platform
import statistics
import time

import torch

from danlu.models import create_model
from danlu.models.layers import attention, fused_attn


def _step(model, x, y, opt, mode, precision, fused):
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with fused_attn(fused), amp:
        if mode == "forward":
            with torch.no_grad():
                model(x)
        else:
            loss = torch.nn.functional.cross_entropy(model(x), y)
    if mode == "train":
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ptnt_s_patch16_256")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per configuration (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    attention._slow_fused_kernel = lambda q: False  # measure the SDPA kernel in bf16 too (see the docstring)
    torch.manual_seed(0)
    model = create_model(args.model)
    size = model.default_cfg.input_size
    x, y = torch.randn(args.batch, *size), torch.randint(0, 1000, (args.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    configs = [(mode, precision, fused) for mode in ("forward", "train") for precision in ("fp32", "bf16")
               for fused in (True, False)]
    times = {c: [] for c in configs}
    for it in range(args.iters + 1):
        for mode, precision, fused in configs:
            model.train(mode == "train")
            start = time.perf_counter()
            _step(model, x, y, opt, mode, precision, fused)
            if it:  # the first round is warm-up
                times[(mode, precision, fused)].append(time.perf_counter() - start)

    print(f"{args.model}, batch {args.batch}, input {size[1]}x{size[2]}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"median of {args.iters} round-robin iterations")
    print("| step | precision | attention | images/s | vs fp32 explicit |")
    print("|---|---|---|---|---|")
    for mode, precision, fused in configs:
        ips = args.batch / statistics.median(times[(mode, precision, fused)])
        base = args.batch / statistics.median(times[(mode, "fp32", False)])
        print(f"| {mode} | {precision} | {'fused SDPA' if fused else 'explicit'} | {ips:.2f} | {ips / base:.2f}x |")


if __name__ == "__main__":
    main()
