"""Effective receptive field (Luo et al. 2016), measured the way RepLKNet and the ParC papers report it.

For each image, the contribution score of an input pixel is the gradient of the centre of the last
feature map, relu(features[:, :, H//2, W//2]).sum(), with respect to that pixel, passed through relu
and summed over the colour channels. The scores are averaged over the images (model in eval mode), then
shown as log10(score + 1) divided by its maximum. The "high-contribution area ratio" at threshold t is
the area, as a fraction of the image, of the smallest centred square whose normalised scores sum to
more than t times the total: a bigger ratio means a bigger effective receptive field. The last feature
map is the output of `forward_features` when it is a (B, C, H, W) map, else the last layer output that
keeps the image's layout (the Grad-CAM candidates: simple_cnn's last pooling, a ViT's patch tokens).
"""
import numpy as np
import torch
import torch.nn.functional as F

from .gradcam import load_model, spatial_outputs, to_map

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)


def last_feature_map(model, x):
    """The (B, C, H, W) map whose centre the ERF follows (see the module docstring)."""
    features, outputs = spatial_outputs(model, x)
    if features.ndim == 4:
        return features
    if not outputs:
        raise ValueError(f"the ERF needs a feature map: {type(model).__name__}'s forward_features returns shape "
                         f"{tuple(features.shape)} and none of its layers keeps the image's (B, C, H, W) layout; "
                         "use a convolutional or transformer model")
    return to_map(list(outputs.values())[-1], len(x), x.shape[-2:])


def contribution_scores(model, images, batch_size=4):
    """The mean (H, W) map of relu(d centre / d input) over `images` (N, C, H, W); float64 numpy."""
    was_training = model.training
    model.eval()  # BatchNorm statistics and drop-path fixed, so images do not interact within a batch
    total = torch.zeros(images.shape[-2:], dtype=torch.float64)
    try:
        for batch in images.split(batch_size):
            x = batch.detach().clone().requires_grad_(True)
            features = last_feature_map(model, x)
            h, w = features.shape[-2:]
            centre = F.relu(features[:, :, h // 2, w // 2]).sum()
            (grad,) = torch.autograd.grad(centre, x)
            total += F.relu(grad).sum((0, 1)).double()
    finally:
        model.train(was_training)
    return (total / len(images)).numpy()


def normalise(scores):
    """log10(scores + 1) scaled to a maximum of 1 (the scores span orders of magnitude)."""
    data = np.log10(np.asarray(scores, dtype=np.float64) + 1)
    peak = data.max()
    if peak <= 0:
        raise ValueError("every contribution score is zero: the centre output does not depend on the input "
                         "(check the weights, or that the model is not dead at initialisation)")
    return data / peak


def area_ratio(data, thresh):
    """(side, area ratio) of the smallest centred square holding more than `thresh` of data's sum.

    Squares grow by one pixel each side from 3x3; when none inside the image reaches the threshold
    the whole image is the answer (side = height, ratio 1).
    """
    h, w = data.shape
    total = data.sum()
    for i in range(1, h // 2):
        side = 2 * i + 1
        if data[h // 2 - i:h // 2 + 1 + i, w // 2 - i:w // 2 + 1 + i].sum() / total > thresh:
            return side, side * side / (h * w)
    return h, 1.0


def area_ratios(data, thresholds=THRESHOLDS):
    """{threshold: high-contribution area ratio} for a normalised ERF map."""
    return {t: area_ratio(data, t)[1] for t in thresholds}


def save_heatmap(data, path, title=None):
    """Write the normalised ERF map as a heat-map PNG (matplotlib, Agg backend)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.2, 3.4), dpi=100)
    im = ax.imshow(data, cmap="RdYlGn", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.046, pad=0.04)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def random_images(n, img_size, mean, std, seed=0):
    """n uniform-noise images with one channel per mean, normalised like real ones: the input when no
    images are given."""
    g = torch.Generator().manual_seed(seed)
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    x = torch.rand(n, len(mean), h, w, generator=g)
    return (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


def erf(model, images, out=None, title=None, thresholds=THRESHOLDS, batch_size=4):
    """ERF of `model` over `images`: returns (normalised map, {threshold: area ratio}); writes a PNG to `out`."""
    data = normalise(contribution_scores(model, images, batch_size))
    if out is not None:
        save_heatmap(data, out, title)
    return data, area_ratios(data, thresholds)


def run(model_name=None, weights=None, images=None, num_images=8, img_size=None, out=None, seed=0, num_classes=None):
    """The `danlu erf` command: build the model (or load a run's), read or draw the images, measure,
    print the ratios."""
    from ..data.image_files import list_images
    from ..engine.inference import image_batch

    torch.manual_seed(seed)  # the initialisation is part of the result when no weights are given
    # built for img_size like the trainer builds it, so weights trained at that size fit (ParC kernel lengths)
    model, info = load_model(model_name, weights, img_size, num_classes)
    if images:
        x = image_batch(list_images(images)[:num_images], info)  # prepared as `danlu predict` prepares them
    else:
        x = random_images(num_images, info["img_size"], info["mean"], info["std"], seed)
    size = x.shape[-2:]
    _, ratios = erf(model, x, out, title=f"ERF {info['model']}")
    print(f"ERF of {info['model']} at {size[0]}x{size[1]} over {len(x)} {'images' if images else 'noise images'}")
    print("threshold  area ratio")
    for t, r in ratios.items():
        print(f"{t:9.2f}  {r:.4f}")
    if out is not None:
        print(f"heat map written to {out}")
    return ratios
