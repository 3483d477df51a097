"""SWATS vs Adam vs SGD-momentum on MNIST with simple_cnn, same budget (3 epochs, batch 128, the trainer's defaults:
cosine schedule, weight decay 0.01), through `danlu train`. Prints the table and plots validation accuracy per epoch.

    python benchmarks/swats_mnist.py --data-dir ../shared/data/mnist --out runs/swats_mnist [--plot docs/images/swats_mnist.png]

Runs whose directory already holds a finished metrics.csv are not trained again.
"""
import argparse
import csv
import subprocess
import sys
from pathlib import Path

import torch

RUNS = {  # name: (optimizer, lr, optimizer kwargs)
    "adam": ("adam", 1e-3, "{}"),
    "sgdm": ("sgdm", 0.05, "{}"),
    "swats_default": ("swats", 1e-3, "{}"),  # the paper's eps = 1e-9 as the switch tolerance
    "swats_eps1e-5": ("swats", 1e-3, "{switch_eps: 1.0e-5}"),
    "swats_eps1e-3": ("swats", 1e-3, "{switch_eps: 1.0e-3}"),
    "swats_eps1e-2": ("swats", 1e-3, "{switch_eps: 1.0e-2}"),
}


def _rows(run_dir):
    path = run_dir / "metrics.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", default="runs/swats_mnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--plot", default=None, help="PNG of validation accuracy per epoch")
    args = ap.parse_args(argv)
    out = Path(args.out)
    for name, (opt, lr, kw) in RUNS.items():
        if len(_rows(out / name)) < args.epochs:
            subprocess.run([sys.executable, "-m", "danlu.cli", "train", "--model", "simple_cnn", "--dataset", "mnist",
                            "--data-dir", args.data_dir, "--optimizer", opt, "--lr", str(lr), "--optimizer-kwargs", kw,
                            "--epochs", str(args.epochs), "--batch-size", "128", "--seed", "0", "--out", str(out),
                            "--name", name, "--no-progress"], check=True)
    print("| run | optimizer kwargs | switch step (main group / no-decay group) | Lambda at switch | "
          "val acc@1 per epoch |")
    print("|---|---|---|---|---|")
    curves = {}
    for name, (opt, lr, kw) in RUNS.items():
        rows = _rows(out / name)
        curves[name] = [float(r["val_acc1"]) for r in rows]
        switch, lam = "-", "-"
        if opt == "swats":
            groups = torch.load(out / name / "checkpoints" / f"epoch_{args.epochs:04d}" / "training_state.pt",
                                weights_only=False)["optimizer"]["param_groups"]
            switch = " / ".join(str(g["switch_step"]) if g["switch_step"] else "never" for g in groups)
            lam = " / ".join(f"{g['sgd_lr']:.3f}" if g["sgd_lr"] else "-" for g in groups)
        print(f"| {name} (lr {lr:g}) | {kw} | {switch} | {lam} | {', '.join(f'{a:.2f}' for a in curves[name])} |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for name, acc in curves.items():
            ax.plot(range(1, len(acc) + 1), acc, "o-", label=name)
        ax.set(xlabel="epoch", ylabel="val acc@1 (%)", title="MNIST, simple_cnn: SWATS vs Adam vs SGD-momentum")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()
