"""ConvNeXt (Liu et al. 2022) and ParC-ConvNeXt (ParC-Net, ECCV 2022), with the official key names.

ParC-ConvNeXt replaces the 7x7 depthwise convolution of the last third of the blocks in the last two
stages (stage 3 blocks 6-8, stage 4 block 2 of ConvNeXt-XT) by a ParC pair: ParC-V on half of the
channels, ParC-H on the other half, each depthwise with a bias and a positional embedding, with
global kernels sized for the feature maps of a 224 input (14 and 7) and resized for other inputs.
Official checkpoints (`downsample_layers.*`, `stages.*`, `gcc_H`/`gcc_W`) load with `load_pretrained`.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._base import ModelBase
from .layers import DropPath, ParC, check_image, drop_path_rates, to_2tuple
from .layers.parc import ParCConvNetMixin, parc_split
from .layers.weight_init import init_weights, trunc_normal_init
from .registry import register_model


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (the official 'channels_first' LayerNorm)."""

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class Block(nn.Module):
    """x + drop_path(gamma * MLP(LN(mixer(x)))), mixer = depthwise 7x7 conv, or a ParC pair when parc_size is given."""

    def __init__(self, dim, drop_path=0.0, layer_scale_init=1e-6, parc_size=None, parc_impl="spatial"):
        super().__init__()
        if parc_size is None:
            self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        else:
            h, w = parc_size
            self.parc_v = ParC(dim // 2, "V", h, impl=parc_impl)
            self.parc_h = ParC(dim // 2, "H", w, impl=parc_impl)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init))
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        y = self.dwconv(x) if hasattr(self, "dwconv") else parc_split(x, self.parc_v, self.parc_h)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y.permute(0, 2, 3, 1)))))
        return x + self.drop_path((self.gamma * y).permute(0, 3, 1, 2))


class ConvNeXt(ParCConvNetMixin, ModelBase):
    """ConvNeXt classifier, or with `features_only=True` a backbone returning the four stage maps.

    Args:
        parc_insert_locs: per stage, the index of the first ParC block (blocks j >= loc are ParC);
            `None` gives plain ConvNeXt. ParC kernels are stored for the feature sizes of `img_size`.
        parc_impl: 'spatial', 'fft' or 'auto' for every ParC layer (changeable later with set_parc_impl).
        features_only, out_indices: see `ModelBase` (taps: the four stages).
    """

    def __init__(self, depths: Sequence[int] = (3, 3, 9, 3), dims: Sequence[int] = (96, 192, 384, 768), in_chans: int = 3,
                 num_classes: int = 1000, img_size: int | tuple = 224, drop_path_rate: float = 0.0,
                 layer_scale_init: float = 1e-6, parc_insert_locs: Sequence[int] | None = None, parc_impl: str = "spatial",
                 features_only: bool = False, out_indices: Sequence[int] | None = None):
        super().__init__()
        self.in_chans, self.num_classes = in_chans, num_classes
        self.num_features = dims[-1]
        img_h, img_w = to_2tuple(img_size)
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))]
            + [nn.Sequential(LayerNorm2d(dims[i - 1], eps=1e-6), nn.Conv2d(dims[i - 1], dims[i], 2, 2))
               for i in range(1, len(dims))])
        dpr = drop_path_rates(drop_path_rate, sum(depths))
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            stride = 4 * 2 ** i
            parc_size = (img_h // stride, img_w // stride)
            first_parc = depth if parc_insert_locs is None else parc_insert_locs[i]
            self.stages.append(nn.Sequential(*[
                Block(dims[i], dpr[sum(depths[:i]) + j], layer_scale_init, parc_size if j >= first_parc else None, parc_impl)
                for j in range(depth)]))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = self._classifier(num_classes)
        self._init_features([{"num_chs": dims[i], "reduction": 4 * 2 ** i, "module": f"stages.{i}"}
                             for i in range(len(dims))], features_only, out_indices)
        self._init_weights()

    def _init_weights(self):
        init_weights(self, {(nn.Conv2d, nn.Linear): trunc_normal_init})  # official; ParC keeps its own

    def _taps(self, x):
        """The output maps (B, C, H, W) of the four stages, at strides 4, 8, 16, 32."""
        check_image(x, self.in_chans, 1, type(self).__name__)
        if min(x.shape[-2:]) < 32:  # the stem (/4) and three 2x2 downsamplings need at least one pixel at /32
            raise ValueError(f"ConvNeXt needs images of at least 32x32 pixels, got {x.shape[-2]}x{x.shape[-1]}; "
                             "resize or pad the input")
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
            yield x

    def forward_head(self, x, pre_logits=False):
        x = self.norm(x.mean((-2, -1)))
        return x if pre_logits else self.head(x)


_XT = dict(depths=(3, 3, 9, 3), dims=(48, 96, 192, 384))
_CFG = {"interpolation": "bicubic", "crop_pct": 0.875}  # timm's ConvNeXt _cfg (the ParC code defines none)


@register_model(**_CFG)
def convnext_xt(**kwargs):
    """ConvNeXt-XT (7.44M parameters), the baseline of the ParC-ConvNeXt paper."""
    return ConvNeXt(**_XT, **kwargs)


@register_model(**_CFG)
def parc_convnext_xt(**kwargs):
    """ParC-ConvNeXt-XT (7.41M): ParC pairs in stage 3 blocks 6-8 and stage 4 block 2."""
    return ConvNeXt(**_XT, parc_insert_locs=(3, 3, 6, 2), **kwargs)
