"""Grad-CAM (Selvaraju et al. 2017): where in the image the evidence for a class lies.

The activations A of a target layer are weighted per channel by the spatial mean of the gradient of
the class score with respect to them; relu of the weighted sum, upsampled to the image and scaled to
[0, 1], is the map. The default target is the output of `forward_features` (the last feature map);
any submodule can be named instead, e.g. 'stages.2'.
"""
import torch
import torch.nn.functional as F


def _target_activations(model, x, target_layer):
    """(activations of the target layer, logits) for input x, keeping the graph between them."""
    if target_layer is None:
        acts = model.forward_features(x)
        return acts, model.forward_head(acts)
    try:
        module = model.get_submodule(target_layer)
    except AttributeError:
        names = [n for n, _ in model.named_children()]
        raise ValueError(f"model has no submodule '{target_layer}'; name one of {names} or a dotted path "
                         "inside them (print(model) shows the names)") from None
    stored = []
    handle = module.register_forward_hook(lambda _m, _i, out: stored.append(out))
    try:
        logits = model(x)
    finally:
        handle.remove()
    return stored[-1], logits


def grad_cam(model, x, class_idx=None, target_layer=None):
    """Grad-CAM maps (N, H, W) in [0, 1] at the input's size, and the class index used per image.

    class_idx: an int, a list of ints (one per image) or None for each image's top-scoring class.
    """
    was_training = model.training
    model.eval()
    try:
        x = x.detach().requires_grad_(True)  # keeps the activations in the graph even for parameter-free layers
        acts, logits = _target_activations(model, x, target_layer)
        if acts.ndim != 4:
            raise ValueError(f"Grad-CAM needs a (B, C, H, W) target activation, got shape {tuple(acts.shape)}; "
                             "choose a convolutional layer with --target-layer")
        if class_idx is None:
            idx = logits.argmax(1)
        else:
            idx = torch.as_tensor(class_idx, dtype=torch.long).expand(len(x))
        score = logits.gather(1, idx[:, None]).sum()
        (grads,) = torch.autograd.grad(score, acts)
    finally:
        model.train(was_training)
    weights = grads.mean((2, 3), keepdim=True)
    cam = F.relu((weights * acts).sum(1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    lo = cam.amin((1, 2), keepdim=True)
    span = cam.amax((1, 2), keepdim=True) - lo
    cam = torch.where(span > 0, (cam - lo) / span.clamp_min(1e-12), torch.zeros_like(cam))
    return cam, idx


def save_overlay(image, cam, path, title=None, alpha=0.5):
    """Write the image (3, H, W in [0, 1]) beside its Grad-CAM overlay (jet colour map) as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = image.permute(1, 2, 0).clamp(0, 1).numpy()
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


def run(model_name, weights, image, out="gradcam.png", target_layer=None, class_idx=None, img_size=None, num_classes=None):
    """The `danlu gradcam` command: load model and image, compute the map, write the overlay PNG."""
    from ..models import create_model
    from ..data.image_files import load_images

    model = create_model(model_name, pretrained=weights, num_classes=num_classes, img_size=img_size).eval()
    cfg = model.default_cfg
    size = cfg.input_size[1:]  # img_size when given, else the model's default
    x = load_images([image], size, cfg.mean, cfg.std)
    cam, idx = grad_cam(model, x, class_idx, target_layer)
    with torch.no_grad():
        prob = model(x).softmax(1)[0, idx[0]].item()
    shown = x[0] * torch.tensor(cfg.std).view(-1, 1, 1) + torch.tensor(cfg.mean).view(-1, 1, 1)
    title = f"{model_name}: class {idx[0].item()} (p = {prob:.3f})"
    save_overlay(shown, cam[0], out, title)
    print(f"{title}; Grad-CAM overlay written to {out}")
    return cam[0], idx[0].item()
