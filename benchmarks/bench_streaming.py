"""Memory and start-up of `danlu train` on streamed image folders of two sizes.

For each tree (written by make_imagenet_like.py when missing) it runs a child process that resolves
the DeiT-Tiny recipe on the tree, builds the trainer and trains a few steps, twice: the first run
builds the file index, the second finds it in the cache. The parent polls the peak RSS of the child
and its loader workers together (summed over /proc; shared pages count once per process, which
overstates both sizes alike). Reported: peak RSS, seconds from process start to the first finished
training step, and what the cache holds afterwards.

    python benchmarks/bench_streaming.py --sizes 2000 50000 --root /tmp/imagenet-like
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _tree_rss_kb(pid):
    """RSS of `pid` and all its descendants, in kB."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += next(int(line.split()[1]) for line in open(f"/proc/{p}/status") if line.startswith("VmRSS"))
        except (OSError, StopIteration):
            pass
        todo += children.get(p, [])
    return total


def child(tree, steps, workers):
    start = time.perf_counter()
    import torch

    from danlu.engine import build_trainer
    from danlu.engine.config import resolve_config

    torch.set_num_threads(1)
    cfg = resolve_config("deit_tiny", data_dir=tree, batch_size=16, workers=workers, fp16=False, progress=False,
                         out=tempfile.mkdtemp(), name="bench")
    trainer = build_trainer(cfg)
    built = time.perf_counter() - start
    first_batch = first_step = None
    trainer.train_sampler.set_epoch(0)
    for step, (x, y) in enumerate(trainer.train_loader):
        first_batch = first_batch or time.perf_counter() - start
        x, target, _ = trainer.batch(x, y)
        loss = torch.nn.functional.cross_entropy(trainer.train_model(x), target)
        loss.backward()
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()
        if first_step is None:
            first_step = time.perf_counter() - start
        if step + 1 == steps:
            break
    print(json.dumps({"built_s": built, "first_batch_s": first_batch, "first_step_s": first_step,
                      "train_images": len(trainer.train_set)}))


def measure(tree, steps, workers, cache):
    env = {**os.environ, "DANLU_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(tree), "--steps", str(steps),
                             "--workers", str(workers)], stdout=subprocess.PIPE, env=env, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.05)
    out = proc.stdout.read().strip().splitlines()
    if proc.returncode != 0 or not out:
        raise SystemExit(f"child failed on {tree} (exit {proc.returncode})")
    return {**json.loads(out[-1]), "peak_rss_mb": peak / 1024}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 50000])
    p.add_argument("--root", default="/tmp/imagenet-like", help="trees go to ROOT-N")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args.steps, args.workers)
    print("| images | run | peak RSS (MB) | start to: trainer ready (s) | first batch (s) | first step done (s) "
          "| cache files |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for n in args.sizes:
        tree = Path(f"{args.root}-{n}")
        if not tree.is_dir():
            subprocess.run([sys.executable, str(HERE / "make_imagenet_like.py"), str(n), str(tree), "--val",
                            str(max(n // 20, 100))], check=True)
        cache = Path(tempfile.mkdtemp(prefix="danlu-cache-"))
        for run in ("index built", "index cached"):
            r = measure(tree, args.steps, args.workers, cache)
            files = ", ".join(f"{f.name} ({f.stat().st_size / 1e6:.2f} MB)" for f in sorted(cache.rglob("*")) if f.is_file())
            print(f"| {n:,} | {run} | {r['peak_rss_mb']:.0f} | {r['built_s']:.2f} | {r['first_batch_s']:.2f} "
                  f"| {r['first_step_s']:.2f} | {files} |", flush=True)


if __name__ == "__main__":
    main()
