"""The attention core alone: fused SDPA (CPU flash kernel) vs the explicit softmax(QK^T)V path,
forward and forward+backward, fp32 and bf16, at ViT-S/16 shapes (batch 8, 6 heads, 197 tokens, d 64).

    python benchmarks/bench_attention.py [--threads 1]

This measurement is why `danlu.models.layers.attention` sends bf16 training on CPU down the
explicit path. Times are medians of process CPU time."""
import argparse
import time

import torch

from danlu.models.layers import fused_attn, scaled_dot_product


def median_ms(fn, reps):
    times = []
    for _ in range(reps + 1):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return sorted(times[1:])[reps // 2] * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; B=8, heads=6, N=197, d=64; ms (CPU time)")
    print("| dtype | pass | fused SDPA | explicit | explicit / fused |")
    print("| --- | --- | ---: | ---: | ---: |")
    for dtype in (torch.float32, torch.bfloat16):
        for backward in (False, True):
            q, k, v = (torch.randn(8, 6, 197, 64, dtype=dtype) for _ in range(3))

            def run(fused):
                # requires_grad only on the backward pass; fused=True forces SDPA even where danlu would not
                qq, kk, vv = (t.detach().requires_grad_(backward) for t in (q, k, v))
                if fused:
                    out = torch.nn.functional.scaled_dot_product_attention(qq, kk, vv)
                else:
                    with fused_attn(False):
                        out = scaled_dot_product(qq, kk, vv)
                if backward:
                    out.sum().backward()
            fused, explicit = median_ms(lambda: run(True), args.reps), median_ms(lambda: run(False), args.reps)
            print(f"| {str(dtype).removeprefix('torch.')} | {'fwd+bwd' if backward else 'fwd'} | {fused:.1f} | "
                  f"{explicit:.1f} | {explicit / fused:.2f} |")


if __name__ == "__main__":
    main()
