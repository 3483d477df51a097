"""Grad-CAM (Selvaraju et al. 2017): where in the image the evidence for a class lies.

The activations A of a target layer are weighted per channel by the spatial mean of the gradient of
the class score with respect to them; relu of the weighted sum, upsampled to the image and scaled to
[0, 1], is the map. A target is a (B, C, H, W) map or patch tokens (B, N, C), which are laid back on
their grid with the class tokens dropped (the usual reshape for vision transformers). The default
target is the output of `forward_features` when it is such a map (convolutional models); otherwise
(simple_cnn flattens it, a ViT's class token ignores its final patch tokens) the last layer the class
score depends on through a map: the model's children and the items of its Sequential / ModuleList
children are tried, e.g. 'features.8' for simple_cnn or 'blocks.10' for a 12-block ViT. Any submodule
can be named instead, e.g. 'stages.2' or 'blocks.11.norm1'.
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

FEATURES = "forward_features"  # the name the default's first choice is reported under


def token_grid(num_tokens, image_size, max_prefix=8):
    """(prefix, (h, w)): the fewest leading (class, distillation) tokens to drop so that the rest lie on
    an h x w grid with one stride both ways (up to a padded last patch); None when none does."""
    height, width = image_size
    for prefix in range(min(num_tokens, max_prefix + 1)):
        n = num_tokens - prefix
        grids = [(h, n // h) for h in range(1, n + 1) if n % h == 0]
        ratio, grid = min((max(height / h / (width / w), width / w / (height / h)), (h, w)) for h, w in grids)
        if ratio < 1.25:
            return prefix, grid
    return None


def to_map(t, batch, image_size):
    """A layer's activation (or its gradient) as a (B, C, h, w) map: itself when 4-D, patch tokens
    (B, N, C) laid on their grid; None when it has no spatial layout."""
    if not torch.is_tensor(t) or t.ndim not in (3, 4) or t.shape[0] != batch:
        return None
    if t.ndim == 4:
        return t
    found = token_grid(t.shape[1], image_size)
    if found is None:
        return None
    prefix, grid = found
    return t[:, prefix:].transpose(1, 2).reshape(batch, -1, *grid)


def _spatial(out, batch, image_size):
    """The tensor of a layer's output that has a spatial layout (the last one of a tuple such as TNT's
    (inner, outer)), or None."""
    for t in reversed(out) if isinstance(out, (tuple, list)) else (out,):
        if to_map(t, batch, image_size) is not None:
            return t
    return None


def candidate_layers(model):
    """{name: module} tried for the default target: the model's children and the items of its
    Sequential / ModuleList children, in definition order."""
    layers = {}
    for name, child in model.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)):
            layers.update((f"{name}.{i}", m) for i, m in child.named_children())
        else:
            layers[name] = child
    return layers


def spatial_outputs(model, x, layers=None):
    """(forward_features(x), {name: activation}) for the `layers` (default: candidate_layers) that ran
    during forward_features with a spatial output, in the order of their last call."""
    layers = candidate_layers(model) if layers is None else layers
    batch, size, outputs = len(x), x.shape[-2:], {}

    def hook(name):
        def store(_module, _inputs, out):
            t = _spatial(out, batch, size)
            outputs.pop(name, None)
            if t is not None:
                outputs[name] = t
        return store

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    try:
        features = model.forward_features(x)
    finally:
        for h in handles:
            h.remove()
    return features, outputs


def _named_layer(model, name, x):
    try:
        return model.get_submodule(name)
    except AttributeError:
        with torch.no_grad():
            valid = list(spatial_outputs(model, x)[1])
        raise ValueError(f"model has no submodule '{name}'; valid target layers are {', '.join(valid) or 'none'} "
                         "(or a dotted path inside them: print(model) shows the names)") from None


def _class_indices(logits, class_idx, n):
    if class_idx is None:
        return logits.argmax(1)
    idx = torch.as_tensor(class_idx, dtype=torch.long).expand(n)
    k = logits.shape[1]
    bad = idx[(idx < 0) | (idx >= k)]
    if len(bad):
        raise ValueError(f"class index {bad[0].item()} is out of range: the model scores {k} classes, give 0 to {k - 1}")
    return idx


def grad_cam(model, x, class_idx=None, target_layer=None, return_layer=False):
    """Grad-CAM maps (N, H, W) in [0, 1] at the input's size, and the class index used per image
    (and, with `return_layer`, the name of the target layer used).

    class_idx: an int, a list of ints (one per image) or None for each image's top-scoring class.
    """
    was_training = model.training
    model.eval()
    batch, size = len(x), x.shape[-2:]
    try:
        x = x.detach().requires_grad_(True)  # keeps the activations in the graph even for parameter-free layers
        layers = None if target_layer is None else {target_layer: _named_layer(model, target_layer, x)}
        features, outputs = spatial_outputs(model, x, layers)
        logits = model.forward_head(features)
        idx = _class_indices(logits, class_idx, batch)
        if target_layer is None:  # preference order: the feature map, then the layers from the last
            candidates = ({FEATURES: features} if features.ndim == 4 else {}) | dict(reversed(outputs.items()))
        elif target_layer in outputs:
            candidates = outputs
        else:
            raise ValueError(f"Grad-CAM needs a (B, C, H, W) map or patch tokens (B, N, C) from '{target_layer}' "
                             "during forward_features; choose a convolutional layer or a transformer block with --target-layer")
        score = logits.gather(1, idx[:, None]).sum()
        grads = torch.autograd.grad(score, list(candidates.values()), allow_unused=True) if candidates else ()
    finally:
        model.train(was_training)
    for (name, acts), grad in zip(candidates.items(), grads):
        acts = to_map(acts.detach(), batch, size)
        grad = torch.zeros_like(acts) if grad is None else to_map(grad, batch, size)
        if target_layer is not None or grad.any():  # a default target must carry evidence for the class
            break
    else:
        raise ValueError(f"{type(model).__name__} has no layer that keeps the image's layout and that the class score "
                         "depends on (it flattens the image first), so Grad-CAM cannot place the evidence; "
                         "use a convolutional or transformer model")
    weights = grad.mean((2, 3), keepdim=True)
    cam = F.relu((weights * acts).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = cam.amin((1, 2), keepdim=True)
    span = cam.amax((1, 2), keepdim=True) - lo
    cam = torch.where(span > 0, (cam - lo) / span.clamp_min(1e-12), torch.zeros_like(cam))
    return (cam, idx, name) if return_layer else (cam, idx)


def save_overlay(image, cam, path, title=None, alpha=0.5):
    """Write the image (3 or 1, H, W in [0, 1]) beside its Grad-CAM overlay (jet colour map) as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = image.expand(3, -1, -1).permute(1, 2, 0).clamp(0, 1).numpy()
    heat = plt.get_cmap("jet")(cam.numpy())[..., :3]
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.2), dpi=100)
    axes[0].imshow(img)
    axes[1].imshow((1 - alpha) * img + alpha * heat)
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def load_model(model_name=None, weights=None, img_size=None, num_classes=None):
    """(model in eval mode, info) for the analysis commands. `weights` a run or checkpoint directory:
    the checkpoint's model, with its info (classes, mean/std, size, channels); else `model_name` built
    for img_size / num_classes, loading a plain weights file when given, with its default config's
    preprocessing and no class names."""
    from ..models import create_model

    if weights is not None and (model_name is None or Path(weights).is_dir()):
        from ..engine.inference import load_checkpoint_model

        model, info = load_checkpoint_model(weights)
        given = {"--model": model_name if model_name != info["model"] else None,
                 "--img-size": img_size, "--num-classes": num_classes}
        clash = [flag for flag, value in given.items() if value is not None]
        if clash:
            raise ValueError(f"{' and '.join(clash)} cannot be combined with the checkpoint '{weights}' "
                             f"(a {info['model']} run, which fixes them); leave them out")
        return model, info
    if model_name is None:
        raise ValueError("give --model (a registered model name), or a run directory as --weights")
    model = create_model(model_name, pretrained=weights or False, num_classes=num_classes, img_size=img_size).eval()
    cfg = model.default_cfg
    return model, {"model": model_name, "img_size": list(cfg.input_size[1:]), "mean": list(cfg.mean),
                   "std": list(cfg.std), "model_kwargs": {"in_chans": cfg.input_size[0]}, "classes": None}


def run(model_name, weights, image, out="gradcam.png", target_layer=None, class_idx=None, img_size=None, num_classes=None):
    """The `danlu gradcam` command: load model and image, compute the map, write the overlay PNG."""
    from ..engine.inference import image_batch
    from ..engine.losses import probabilities

    model, info = load_model(model_name, weights, img_size, num_classes)
    x = image_batch([image], info)  # prepared as `danlu predict` prepares it
    cam, idx, layer = grad_cam(model, x, class_idx, target_layer, return_layer=True)
    c = idx[0].item()
    with torch.no_grad():
        prob = probabilities(model(x))[0, c].item()
    mean, std = (torch.tensor(info[k] or [fill]).view(-1, 1, 1) for k, fill in (("mean", 0.0), ("std", 1.0)))  # unnormalised: none
    classes = info["classes"]
    name = f" '{classes[c]}'" if classes and c < len(classes) else ""
    title = f"{info['model']}: class {c}{name} (p = {prob:.3f}), target {layer}"
    save_overlay(x[0] * std + mean, cam[0], out, title)
    print(f"{title}; Grad-CAM overlay written to {out}")
    return cam[0], c
