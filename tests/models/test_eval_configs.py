"""Per-model evaluation configs (interpolation, crop_pct) against their sources, and the DeiT names."""
import math

import pytest
import torch

from danlu.models import create_model, get_model_config

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


@pytest.mark.parametrize("name,interpolation,crop_pct,norm", [
    ("vit_base_patch16_224", "bicubic", 0.9, INCEPTION),        # timm vision_transformer.py _cfg
    ("deit_tiny_patch16_224", "bicubic", 0.875, IMAGENET),      # facebookresearch/deit --eval-crop-ratio, Resize(interpolation=3)
    ("tnt_s_patch16_224", "bicubic", 0.9, INCEPTION),           # Efficient-AI-Backbones tnt_pytorch/tnt.py _cfg
    ("ptnt_ti_patch16_192", "bicubic", 0.9, INCEPTION),         # tnt_pytorch/pyramid_tnt.py _cfg
    ("convnext_xt", "bicubic", 0.875, IMAGENET),                # timm convnext.py _cfg
    ("resnet50", "bilinear", 0.875, IMAGENET),                  # timm resnet.py _cfg
    ("parc_mobilenetv2", "bicubic", 0.875, IMAGENET),           # timm efficientnet.py _cfg
])
def test_config_matches_source(name, interpolation, crop_pct, norm):
    cfg = get_model_config(name)
    assert (cfg.interpolation, cfg.crop_pct, (cfg.mean, cfg.std)) == (interpolation, crop_pct, norm)


def test_parcnet_eval_resize_is_official():
    # official ParC-Net validation: cv2 bilinear resize of the short side to crop + 32, then centre crop
    cfg = get_model_config("parcnet_s")
    size = cfg.input_size[-1]
    assert cfg.interpolation == "bilinear" and math.floor(size / cfg.crop_pct) == size + 32 == 288


def test_created_model_keeps_eval_config():
    cfg = create_model("ptnt_ti_patch16_192", img_size=96, num_classes=3).default_cfg
    assert (cfg.input_size, cfg.crop_pct, cfg.interpolation) == ((3, 96, 96), 0.9, "bicubic")


@pytest.mark.parametrize("deit,vit,params", [("deit_tiny_patch16_224", "vit_tiny_patch16_224", 5_717_416),
                                             ("deit_small_patch16_224", "vit_small_patch16_224", 22_050_664)])
def test_deit_is_the_vit_network(deit, vit, params):
    with torch.device("meta"):
        d, v = create_model(deit), create_model(vit)
    assert sum(p.numel() for p in d.parameters()) == params  # timm's DeiT-Ti / DeiT-S counts
    assert {k: t.shape for k, t in d.state_dict().items()} == {k: t.shape for k, t in v.state_dict().items()}
    norms = [m.eps for m in d.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms == [m.eps for m in v.modules() if isinstance(m, torch.nn.LayerNorm)]

