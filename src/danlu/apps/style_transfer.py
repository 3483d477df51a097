"""Neural style transfer (Gatys, Ecker and Bethge, CVPR 2016), the seed's use case 4.

An image starts as the content photo and is optimised with Adam so that its VGG19 activations at
conv4_2 stay close to the photo's (content) while the Gram matrices of conv1_1 ... conv5_1 approach
those of the style image (style), with the seed's per-layer weights. Activations are taken after
the ReLU, as in the paper's Caffe network where ReLUs run in place on the conv outputs.
"""
from pathlib import Path

import torch
import torch.nn.functional as F

STYLE_LAYERS = {"conv1_1": 1.0, "conv2_1": 0.8, "conv3_1": 0.25, "conv4_1": 0.21, "conv5_1": 0.18}
CONTENT_LAYER = "conv4_2"


def _relu(name):
    return name.replace("conv", "relu")


def gram_matrix(features):
    """(B, C, H, W) -> (B, C, C) channel correlations, divided by C*H*W so that the style loss does not
    grow with the image size or the layer width."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def load_image(path, size=None):
    """An image file as a float (1, 3, H, W) tensor in [0, 1]; `size` (int) is its longer side after resizing
    (aspect kept), (h, w) an exact size. Files that are not images are reported by name."""
    from ..data.image_files import read_image

    img = read_image(path).unsqueeze(0).float() / 255
    if isinstance(size, int):
        h, w = img.shape[-2:]
        size = (max(1, round(h * size / max(h, w))), max(1, round(w * size / max(h, w))))
    if size is not None and tuple(size) != tuple(img.shape[-2:]):
        img = F.interpolate(img, size=tuple(size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return img


def save_image(image, path):
    """Write a (1, 3, H, W) or (3, H, W) tensor in [0, 1] as a PNG file."""
    from PIL import Image

    array = (image.detach().squeeze(0).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


class StyleLoss:
    """The two losses of one target image against fixed content and style images."""

    def __init__(self, vgg, content, style, style_layers=STYLE_LAYERS, content_layer=CONTENT_LAYER):
        self.vgg, self.style_layers, self.content_layer = vgg, style_layers, content_layer
        self.layers = [_relu(n) for n in (*style_layers, content_layer)]
        with torch.no_grad():
            self.content_target = vgg(content, [_relu(content_layer)])[_relu(content_layer)]
            feats = vgg(style, [_relu(n) for n in style_layers])
            self.style_targets = {n: gram_matrix(feats[_relu(n)]) for n in style_layers}

    def __call__(self, image):
        feats = self.vgg(image, self.layers)
        content = F.mse_loss(feats[_relu(self.content_layer)], self.content_target)
        style = sum(w * F.mse_loss(gram_matrix(feats[_relu(n)]), self.style_targets[n])
                    for n, w in self.style_layers.items())
        return content, style


def stylize(content, style, vgg, steps=300, style_weight=1e6, content_weight=1.0, lr=0.02, progress=True):
    """Optimise a copy of `content` ((1, 3, H, W) in [0, 1]) towards the style of `style` (resized to the
    content's size if it differs). Returns (image, history) with one dict of losses per step."""
    from tqdm import tqdm

    if min(content.shape[-2:]) < 16:
        h, w = content.shape[-2:]
        raise ValueError(f"the content image is {h}x{w} pixels; style transfer needs at least 16 a side "
                         "(VGG19 pools 4 times before conv5_1): use a larger --size")
    if style.shape[-2:] != content.shape[-2:]:
        style = F.interpolate(style, size=content.shape[-2:], mode="bilinear", antialias=True,
                              align_corners=False).clamp(0, 1)
    loss_fn = StyleLoss(vgg, content, style)
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    history = []
    bar = tqdm(range(steps), desc="stylize", disable=not progress)
    for _ in bar:
        content_loss, style_loss = loss_fn(image)
        total = content_weight * content_loss + style_weight * style_loss
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)  # stay a displayable image
        history.append({"content": content_loss.item(), "style": style_loss.item(), "total": total.item()})
        bar.set_postfix(content=f"{content_weight * content_loss.item():.3g}",
                        style=f"{style_weight * style_loss.item():.3g}")
    return image.detach(), history


def stylize_files(content, style, out, size=256, steps=300, style_weight=1e6, content_weight=1.0, lr=0.02,
                  weights=None, progress=True):
    """File to file: reads both images (the content at `size` on its longer side), writes the PNG `out`,
    returns the per-step loss history."""
    from ..models.vgg import vgg19_features

    if Path(out).is_dir():  # before minutes of optimisation, not after
        raise ValueError(f"--out '{out}' is a directory; give the PNG file to write, e.g. '{Path(out) / 'stylized.png'}'")
    content_img = load_image(content, size)
    style_img = load_image(style, tuple(content_img.shape[-2:]))
    vgg = vgg19_features(weights, last="relu5_1")
    image, history = stylize(content_img, style_img, vgg, steps, style_weight, content_weight, lr, progress)
    save_image(image, out)
    return history
