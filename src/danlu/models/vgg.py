"""VGG19's convolutional part (Simonyan and Zisserman, 2015) as a named-layer feature extractor.

The layers sit at torchvision's indices (`features.0` = conv1_1, ..., `features.28` = conv5_1), so
torchvision's `vgg19-dcbb9e9d.pth` (or any file with `features.N.weight` / `.bias` keys) loads as it
is; its classifier is dropped. Inputs are RGB images in [0, 1]: the ImageNet normalisation the
weights were trained with is applied inside.
"""
import warnings

import torch
from torch import nn

from .pretrained import load_pretrained

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_CFG = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))


def _layer_names():
    """Names in torchvision order: conv{block}_{i}, relu{block}_{i} per conv, then pool{block}."""
    names = []
    for block, widths in enumerate(_CFG, 1):
        for i in range(1, len(widths) + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


LAYER_NAMES = _layer_names()


class VGG19Features(nn.Module):
    """`forward(x, layers)` returns {name: activation} for the requested layer names (e.g. 'relu4_2'),
    running the network only as deep as the deepest one; `last` builds it only that deep."""

    def __init__(self, last="pool5"):
        super().__init__()
        depth = LAYER_NAMES.index(last) + 1
        layers, c = [], 3
        for name in LAYER_NAMES[:depth]:
            if name.startswith("conv"):
                width = _CFG[int(name[4]) - 1][int(name[6]) - 1]
                layers.append(nn.Conv2d(c, width, 3, padding=1))
                c = width
            elif name.startswith("relu"):
                layers.append(nn.ReLU())  # not in-place: the caller keeps conv outputs it asked for
            else:
                layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # torchvision's VGG init: keeps activations at a steady scale through 16 random layers,
                # which is what makes random-weight features usable for texture statistics.
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def checkpoint_filter_fn(self, state_dict):
        """Keep the `features.N` tensors this (possibly truncated) network has; drop the classifier."""
        def deeper(key):
            kind, index = (key.split(".") + ["", ""])[:2]
            return kind == "features" and index.isdigit() and int(index) >= len(self.features)

        # Anything else stays, so that the strict check names keys that do not belong to VGG19.
        return {k: v for k, v in state_dict.items() if not k.startswith("classifier.") and not deeper(k)}

    def forward(self, x, layers):
        unknown = [n for n in layers if n not in LAYER_NAMES[:len(self.features)]]
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {unknown} for a network built up to "
                             f"'{LAYER_NAMES[len(self.features) - 1]}'")
        wanted, out = set(layers), {}
        x = (x - self.mean) / self.std
        for name, layer in zip(LAYER_NAMES, self.features):
            x = layer(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out


def vgg19_features(weights=None, last="pool5"):
    """VGG19 features, frozen, in eval mode. `weights`: a torchvision-format VGG19 file; without one the
    weights are random (a warning says so): textures still come out, faithful style transfer does not."""
    model = VGG19Features(last)
    if weights is None:
        warnings.warn("no VGG19 weight file given (--weights): using random-weight VGG19 features, which "
                      "reproduce textures and colours but not the look of trained-VGG style transfer; "
                      "download torchvision's vgg19-dcbb9e9d.pth and pass it with --weights", stacklevel=2)
    else:
        load_pretrained(model, weights)
    return model.eval().requires_grad_(False)
