"""Per-epoch metrics to `metrics.csv` and `metrics.jsonl`, rewritten whole after every epoch, and the
`curves.png` plot, redrawn when the trainer says (every `plot_interval` epochs, and when the run ends
or stops). Each file is replaced atomically (a kill mid-write leaves the previous one) but not
fsynced: they are derived from the history that every checkpoint holds, and a resumed run rewrites
them from it."""
import csv
import io
import json
from pathlib import Path

from .atomic import write_atomic, write_text_atomic


class MetricsLog:
    def __init__(self, run_dir, history=()):
        self.run_dir = Path(run_dir)
        self.rows = list(history)
        self.unplotted = False  # rows appended since curves.png was drawn

    def append(self, row, plot=False):
        self.rows.append(row)
        keys = list(dict.fromkeys(k for row in self.rows for k in row))
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.run_dir / "metrics.csv", table.getvalue(), durable=False)
        write_text_atomic(self.run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in self.rows),
                          durable=False)
        self.unplotted = True
        if plot:
            self.plot()

    def plot(self):
        """Draw curves.png if rows came since it was last drawn."""
        if self.unplotted:
            plot_curves(self.rows, self.run_dir / "curves.png")
            self.unplotted = False


def plot_curves(rows, path):
    """Train/validation loss and accuracy against epoch, on a bare Figure with fixed margins: pyplot's
    figure manager and tight_layout took a third of the time."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ax_loss.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
    for key, label in (("train_acc1", "train top-1"), ("val_acc1", "validation top-1"), ("val_acc5", "validation top-5")):
        if any(key in r for r in rows):
            ax_acc.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
        ax.grid(alpha=0.3)
        ax.legend()
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.92, wspace=0.22)
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100), durable=False)
