"""bf16 autocast vs float32 on this CPU, side by side in one process: what `--bf16` buys (or costs) here.

    python benchmarks/bench_bf16.py [--repeats 3] [--threads N] [--clock cpu|wall]

Cases: airbench94 training step (batch 256, channels-last, the cifar10_fast recipe's network), ViT-S/16
training step (batch 8) and ResNet-50 inference (batch 8). The two precisions alternate within each repeat so
that load changes hit both alike; the table gives medians and the ratio fp32 time / bf16 time (above 1:
bf16 is faster). The first line says whether this CPU has native bf16 (avx512_bf16 or AMX), without which
oneDNN emulates it."""
import argparse
import statistics
import time

import torch

import danlu
from danlu.engine.precision import native_bf16

CASES = {  # name: (model, input shape, train, channels_last)
    "airbench94 train": ("airbench94", (256, 3, 32, 32), True, True),
    "vit_small_patch16_224 train": ("vit_small_patch16_224", (8, 3, 224, 224), True, False),
    "resnet50 inference": ("resnet50", (8, 3, 224, 224), False, True),
}


def step_fn(model, x, y, train, bf16):
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if train:
                torch.nn.functional.cross_entropy(model(x).float(), y).backward()
                model.zero_grad(set_to_none=True)
            else:
                with torch.no_grad():
                    model(x)
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    ap.add_argument("--only", default=None, help="comma-separated case names (substrings)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"native bf16: {native_bf16('cpu')}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.clock} clock, median of {args.repeats}")
    print("| case | fp32 s/step | bf16 s/step | fp32 / bf16 |\n|---|---|---|---|")
    for name, (model_name, shape, train, channels_last) in CASES.items():
        if args.only and not any(s in name for s in args.only.split(",")):
            continue
        torch.manual_seed(0)
        model = danlu.create_model(model_name).train(train)
        x, y = torch.randn(shape), torch.randint(0, 10, (shape[0],))
        if channels_last:
            model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        runs = {bf16: step_fn(model, x, y, train, bf16) for bf16 in (False, True)}
        for run in runs.values():
            run()  # warm-up: oneDNN primitives, allocator
        times = {False: [], True: []}
        for _ in range(args.repeats):
            for bf16, run in runs.items():
                t0 = clock()
                run()
                times[bf16].append(clock() - t0)
        fp32, bf16 = statistics.median(times[False]), statistics.median(times[True])
        print(f"| {name} | {fp32:.3f} | {bf16:.3f} | {fp32 / bf16:.2f}x |")


if __name__ == "__main__":
    main()
