"""Vision Transformer (Dosovitskiy et al. 2021): patches -> tokens -> pre-norm transformer -> head.

`VisionTransformer` is timm's network under timm's argument and parameter names (LayerNorm eps 1e-6
as timm and DeiT), so timm/DeiT checkpoints load and give timm's outputs. `ViT` is vit-pytorch's
network (`vit_pytorch.ViT`) with its constructor keywords: a Dual PatchNorm patch embedding, no qkv
bias, LayerNorm eps 1e-5; its `checkpoint_filter_fn` maps vit-pytorch's state dicts onto danlu's
names. Attention is fused (`F.scaled_dot_product_attention`).
Any input size divisible by the patch size works: the position embedding of the patch grid is
interpolated to the runtime grid (class token kept); at the configured size it is used as is.
`deit_*` are the same networks under timm's DeiT names, with DeiT's evaluation config.
"""
import re
from functools import partial
from typing import Callable, Sequence

import torch
from torch import nn

from ._base import IsotropicBase
from .layers import (
    Attention,
    DropPath,
    Mlp,
    block_layer_id,
    check_image,
    drop_path_rates,
    resample_abs_pos_embed,
    to_2tuple,
)
from .layers.weight_init import init_weights, trunc_normal_init
from .registry import register_model


class PatchEmbed(nn.Module):
    """Non-overlapping patches projected to `dim` by a strided convolution."""

    def __init__(self, patch_size, in_chans, dim):
        super().__init__()
        self.patch_size = to_2tuple(patch_size)
        self.proj = nn.Conv2d(in_chans, dim, self.patch_size, self.patch_size)

    def forward(self, x):
        return self.proj(x)  # (B, dim, H/p, W/p)


class DualPatchNormEmbed(nn.Module):
    """vit-pytorch's patch embedding (Dual PatchNorm, Kumar et al. 2023): LayerNorm over each flattened
    patch, Linear to `dim`, LayerNorm. Patches are flattened as (row, column, channel), vit-pytorch's
    `Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)')`, so its weights load as they are."""

    def __init__(self, patch_size, in_chans, dim):
        super().__init__()
        self.patch_size = to_2tuple(patch_size)
        patch_dim = in_chans * self.patch_size[0] * self.patch_size[1]
        self.norm_in = nn.LayerNorm(patch_dim)
        self.proj = nn.Linear(patch_dim, dim)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x):
        (B, C, H, W), (p1, p2) = x.shape, self.patch_size
        x = x.reshape(B, C, H // p1, p1, W // p2, p2).permute(0, 2, 4, 3, 5, 1).flatten(3)
        return self.norm_out(self.proj(self.norm_in(x))).permute(0, 3, 1, 2)  # (B, dim, H/p, W/p) as PatchEmbed


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim, heads, mlp_dim, dim_head=None, qkv_bias=True, drop=0.0, attn_drop=0.0, drop_path=0.0,
                 norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, heads, dim_head, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, mlp_dim, drop=drop)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


_TIMM_NORM = partial(nn.LayerNorm, eps=1e-6)  # timm's and DeiT's ViT norm


class VisionTransformer(IsotropicBase):
    """timm's VisionTransformer; `embed_layer` and `norm_layer` (default LayerNorm, eps 1e-6) as in timm.

    Its feature taps (`forward_intermediates`, `features_only`) are the blocks' outputs, at the patch stride."""


    def __init__(self, img_size: int | tuple = 224, patch_size: int | tuple = 16, in_chans: int = 3,
                 num_classes: int = 1000, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, dim_head: int | None = None, qkv_bias: bool = True, global_pool: str = "token",
                 drop_rate: float = 0.0, pos_drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, embed_layer: Callable[..., nn.Module] = PatchEmbed,
                 norm_layer: Callable[[int], nn.Module] = _TIMM_NORM, features_only: bool = False,
                 out_indices: Sequence[int] | None = None):
        super().__init__()
        if global_pool not in ("token", "avg"):
            raise ValueError(f"global_pool must be 'token' or 'avg', got {global_pool!r}")
        self.img_size, patch_size = to_2tuple(img_size), to_2tuple(patch_size)
        if self.img_size[0] % patch_size[0] or self.img_size[1] % patch_size[1]:
            raise ValueError(f"image size {self.img_size} must be divisible by the patch size {patch_size}")
        self.in_chans, self.num_classes, self.global_pool = in_chans, num_classes, global_pool
        self.num_features = self.embed_dim = embed_dim
        self.grid = (self.img_size[0] // patch_size[0], self.img_size[1] // patch_size[1])
        self.patch_embed = embed_layer(patch_size, in_chans, embed_dim)
        self.num_prefix_tokens = 1 if global_pool == "token" else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if self.num_prefix_tokens else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_prefix_tokens + self.grid[0] * self.grid[1], embed_dim))
        self.pos_drop = nn.Dropout(pos_drop_rate)
        dpr = drop_path_rates(drop_path_rate, depth)
        mlp_dim = int(embed_dim * mlp_ratio)
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_dim, dim_head, qkv_bias, drop_rate,
                                            attn_drop_rate, dpr[i], norm_layer) for i in range(depth)])
        self.norm = norm_layer(embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = self._classifier(num_classes)
        self.num_lr_layers = depth + 1  # layer-wise lr decay: embeddings 0, blocks 1..depth, head depth + 1
        self._init_block_taps(depth, embed_dim, patch_size[0], features_only, out_indices)
        self._init_weights()

    def _init_weights(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        init_weights(self, {nn.Linear: trunc_normal_init})

    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}

    def layer_id(self, name: str) -> int:
        """The layer of parameter `name` for layer-wise lr decay, 0 (embeddings) to `num_lr_layers` (head)."""
        return block_layer_id(name, ("patch_embed.", "cls_token", "pos_embed"), len(self.blocks))

    def _pos_embed(self, x):
        grid = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        pos = resample_abs_pos_embed(self.pos_embed, grid, self.grid, self.num_prefix_tokens)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.pos_drop(x + pos)

    def _taps(self, x):
        """Each block's tokens, with the patch grid."""
        check_image(x, self.in_chans, self.patch_embed.patch_size, type(self).__name__)
        x = self.patch_embed(x)
        grid = tuple(x.shape[-2:])
        x = self._pos_embed(x)
        for block in self.blocks:
            x = block(x)
            yield x, grid

    def forward_head(self, x, pre_logits=False):
        x = x[:, 0] if self.global_pool == "token" else x.mean(dim=1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)


# vit-pytorch's parameter names -> danlu's (the first match applies)
_VIT_PYTORCH_KEYS = [(re.compile(p), r) for p, r in (
    (r"^to_patch_embedding\.1\.", "patch_embed.norm_in."),
    (r"^to_patch_embedding\.2\.", "patch_embed.proj."),
    (r"^to_patch_embedding\.3\.", "patch_embed.norm_out."),
    (r"^transformer\.layers\.(\d+)\.0\.norm\.", r"blocks.\1.norm1."),
    (r"^transformer\.layers\.(\d+)\.0\.to_qkv\.", r"blocks.\1.attn.qkv."),
    (r"^transformer\.layers\.(\d+)\.0\.to_out\.0\.", r"blocks.\1.attn.proj."),
    (r"^transformer\.layers\.(\d+)\.1\.net\.0\.", r"blocks.\1.norm2."),
    (r"^transformer\.layers\.(\d+)\.1\.net\.1\.", r"blocks.\1.mlp.fc1."),
    (r"^transformer\.layers\.(\d+)\.1\.net\.4\.", r"blocks.\1.mlp.fc2."),
    (r"^transformer\.norm\.", "norm."),
    (r"^mlp_head\.", "head."),
)]


class ViT(VisionTransformer):
    """vit-pytorch's ViT (lucidrains/vit-pytorch `vit_pytorch.ViT`, as of 1.26), with its keyword-only arguments.

    Its network: Dual PatchNorm patch embedding, pre-norm blocks without qkv bias (`dim_head` independent
    of `dim / heads`), `dropout` after the attention softmax, the attention output and both MLP layers,
    a final LayerNorm, then the class token or the token mean, and a Linear head; LayerNorm eps 1e-5.
    Beyond vit-pytorch: timm's initialisation, a position embedding resized for other input sizes (vit-pytorch
    slices it), and `num_classes=0` giving pooled features (vit-pytorch returns the tokens).
    """

    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, pool="cls", channels=3,
                 dim_head=64, dropout=0.0, emb_dropout=0.0):
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        # (mlp_dim + 0.5) / dim: int(dim * ratio) is then mlp_dim for every pair (mlp_dim / dim can fall just short)
        super().__init__(img_size=image_size, patch_size=patch_size, in_chans=channels, num_classes=num_classes,
                         embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=(mlp_dim + 0.5) / dim, dim_head=dim_head,
                         qkv_bias=False, global_pool="token" if pool == "cls" else "avg", drop_rate=dropout,
                         pos_drop_rate=emb_dropout, attn_drop_rate=dropout, embed_layer=DualPatchNormEmbed,
                         norm_layer=nn.LayerNorm)
        self.head_drop = nn.Identity()  # no dropout before vit-pytorch's head
        if heads == 1 and dim_head == dim:  # vit-pytorch then has no attention output projection
            for block in self.blocks:
                block.attn.proj = block.attn.proj_drop = nn.Identity()

    def checkpoint_filter_fn(self, state_dict: dict) -> dict:
        """vit-pytorch state dicts -> danlu names; `pos_embedding` and `cls_token` gain timm's batch dim and the
        empty class token of pool='mean' is dropped. danlu's own keys pass through."""
        out = {}
        for key, value in state_dict.items():
            if key in ("pos_embedding", "cls_token") and value.ndim == 2:
                if value.numel():
                    out["pos_embed" if key == "pos_embedding" else key] = value.unsqueeze(0)
                continue
            for pattern, name in _VIT_PYTORCH_KEYS:
                key, found = pattern.subn(name, key)
                if found:
                    break
            out[key] = value
        return out


_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}


def _vit(size, **kwargs):
    dim, depth, heads = _SIZES[size]
    return VisionTransformer(embed_dim=dim, depth=depth, num_heads=heads, **{"patch_size": 16, **kwargs})


# timm's ViT _cfg (Inception normalisation, crop 0.9); DeiT: ImageNet normalisation (the ModelConfig default)
# and DeiT's --eval-crop-ratio 0.875 (facebookresearch/deit; timm's deit _cfg says 0.9)
_VIT_CFG = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "interpolation": "bicubic", "crop_pct": 0.9}
_DEIT_CFG = {"interpolation": "bicubic", "crop_pct": 0.875}


@register_model(**_VIT_CFG)
def vit_tiny_patch16_224(**kwargs):
    return _vit("tiny", **kwargs)


@register_model(**_VIT_CFG)
def vit_small_patch16_224(**kwargs):
    return _vit("small", **kwargs)


@register_model(**_VIT_CFG)
def vit_base_patch16_224(**kwargs):
    return _vit("base", **kwargs)


@register_model(**_VIT_CFG)
def vit_large_patch16_224(**kwargs):
    return _vit("large", **kwargs)


@register_model(**_DEIT_CFG)
def deit_tiny_patch16_224(**kwargs):
    """DeiT-Ti (Touvron et al. 2021): the ViT-Ti/16 network."""
    return _vit("tiny", **kwargs)


@register_model(**_DEIT_CFG)
def deit_small_patch16_224(**kwargs):
    """DeiT-S: the ViT-S/16 network."""
    return _vit("small", **kwargs)
