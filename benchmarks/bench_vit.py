"""ViT-S/16 throughput, danlu vs lucidrains' vit-pytorch, side by side in one process.

    pip install --no-deps vit-pytorch einops
    python benchmarks/bench_vit.py [--batch 16] [--iters 5] [--threads N] [--clock wall|cpu]

Both models get identical constructor arguments (dim 384, depth 12, heads 6, mlp 1536, dim_head 64,
224x224, 1000 classes). Runs alternate between the two models so that load changes hit both alike;
the median time of each is reported. On a shared machine, `--threads 1 --clock cpu` measures
process CPU time, which waiting for a core does not inflate. vit-pytorch's package imports torchvision, which has no CPU
build here, so a stub module stands in for it (vit.py itself does not use torchvision)."""
import argparse
import statistics
import sys
import time
import types

import torch

sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))
sys.modules.setdefault("torchvision.transforms", types.ModuleType("torchvision.transforms"))
sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
from vit_pytorch import ViT as LucidViT  # noqa: E402

from danlu.models import ViT  # noqa: E402

ARGS = dict(image_size=224, patch_size=16, num_classes=1000, dim=384, depth=12, heads=6, mlp_dim=1536, dim_head=64)


def step_fn(model, x, y, train, bf16):
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if train:
                loss = torch.nn.functional.cross_entropy(model(x).float(), y)
                loss.backward()
                model.zero_grad(set_to_none=True)
            else:
                with torch.no_grad():
                    model(x)
    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch.manual_seed(0)
    x, y = torch.randn(args.batch, 3, 224, 224), torch.randint(0, 1000, (args.batch,))
    models = {"danlu": ViT(**ARGS), "vit-pytorch": LucidViT(**ARGS)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, "
          f"batch {args.batch}, {args.iters} timed iterations (median), {args.clock} clock")
    print("| mode | precision | danlu img/s | vit-pytorch img/s | ratio |")
    print("| --- | --- | ---: | ---: | ---: |")
    for train in (True, False):
        for bf16 in (False, True):
            runs = {name: step_fn(m.train(train), x, y, train, bf16) for name, m in models.items()}
            for run in runs.values():
                run()  # warm-up
            times = {name: [] for name in runs}
            for _ in range(args.iters):
                for name, run in runs.items():
                    start = clock()
                    run()
                    times[name].append(clock() - start)
            ips = {name: args.batch / statistics.median(t) for name, t in times.items()}
            print(f"| {'train step' if train else 'inference'} | {'bf16' if bf16 else 'fp32'} | {ips['danlu']:.1f} | "
                  f"{ips['vit-pytorch']:.1f} | {ips['danlu'] / ips['vit-pytorch']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
