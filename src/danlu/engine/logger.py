"""Per-epoch metrics to `metrics.csv` and `metrics.jsonl`, and the `curves.png` plot, each rewritten
whole and atomically after every epoch (a kill mid-write leaves the previous epoch's file)."""
import csv
import io
import json
from pathlib import Path

from .atomic import write_atomic, write_text_atomic


class MetricsLog:
    def __init__(self, run_dir, history=()):
        self.run_dir = Path(run_dir)
        self.rows = list(history)

    def append(self, row):
        self.rows.append(row)
        self._write()

    def _write(self):
        keys = list(dict.fromkeys(k for row in self.rows for k in row))
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.run_dir / "metrics.csv", table.getvalue())
        write_text_atomic(self.run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in self.rows))
        plot_curves(self.rows, self.run_dir / "curves.png")


def plot_curves(rows, path):
    """Train/validation loss and accuracy against epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ax_loss.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
    for key, label in (("train_acc1", "train top-1"), ("val_acc1", "validation top-1"), ("val_acc5", "validation top-5")):
        if any(key in r for r in rows):
            ax_acc.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    try:
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
