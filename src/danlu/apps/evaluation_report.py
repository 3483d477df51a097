"""What `danlu evaluate` shows besides the metrics, as the seed does after training: the actual and
predicted class names of the first validation samples, a confusion matrix and, for images, a grid
of the first validation images titled with their predictions."""
from pathlib import Path

import torch


def first_predictions(targets, labels, classes, n=10):
    """Two lines, 'actual: [...]' and 'predicted: [...]', with the class names of the first n samples."""
    def names(ids):
        return "[" + ", ".join(f"'{classes[i]}'" for i in ids[:n].tolist()) + "]"

    return f"actual:    {names(targets)}\npredicted: {names(labels)}"


def confusion_matrix(targets, labels, num_classes):
    """(K, K) counts: row = actual class, column = predicted class."""
    return torch.bincount(targets.long() * num_classes + labels.long(), minlength=num_classes ** 2).view(num_classes, num_classes)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_confusion_matrix(matrix, classes, path):
    """The matrix as a PNG, each row coloured by its share of the actual class, with the counts written in."""
    plt = _pyplot()
    k = len(classes)
    shares = matrix.float() / matrix.sum(dim=1, keepdim=True).clamp(min=1)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.5 + 0.55 * k), max(4.0, 1.2 + 0.5 * k)))  # room for the title
    ax.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7 if k > 6 else 9,
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set(xlabel="predicted", ylabel="actual",
           title=f"confusion matrix (accuracy {100 * matrix.trace().item() / max(1, matrix.sum().item()):.1f}%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_prediction_grid(images, targets, labels, classes, path, mean, std, cols=8):
    """Normalised (N, C, H, W) images shown back in colour, titled 'predicted' (green) or
    'predicted (actual)' (red) when wrong."""
    plt = _pyplot()
    images = images * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    n = len(images)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, t, p in zip(axes.flat, images.clamp(0, 1), targets.tolist(), labels.tolist()):
        ax.imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if img.shape[0] == 1 else None)
        ok = t == p
        ax.set_title(classes[p] if ok else f"{classes[p]}\n({classes[t]})", fontsize=8, color="green" if ok else "red")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_evaluation_report(out_dir, val_set, targets, labels, info, n_print=10, n_grid=32):
    """Print the first predictions and write confusion_matrix.png (and predictions.png for image
    models) into `out_dir`; returns the paths written. `val_set` yields the same samples, in the same
    order, as `targets` / `labels` (the validation loader does not shuffle)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = info["classes"]
    print(first_predictions(targets, labels, classes, n_print))
    paths = [out_dir / "confusion_matrix.png"]
    plot_confusion_matrix(confusion_matrix(targets, labels, len(classes)), classes, paths[0])
    if info.get("input_kind", "image") == "image":
        n = min(n_grid, len(val_set))
        images = torch.stack([val_set[i][0] for i in range(n)])
        paths.append(out_dir / "predictions.png")
        plot_prediction_grid(images, targets[:n], labels[:n], classes, paths[1], info["mean"], info["std"])
    for p in paths:
        print(f"wrote {p}")
    return paths
