"""Layer-wise lr decay: BEiT / timm layer ids and scales, weight-decay groups, and schedules keeping the ratios."""
import pytest
from torch import nn

import danlu.optim as O
from danlu.models.pyramid_tnt import PyramidTNT
from danlu.models.tnt import TNT
from danlu.models.vit import VisionTransformer
from danlu.optim.layer_decay import param_groups_layer_decay

LR, WD, D, DEPTH = 1e-3, 0.05, 0.5, 3


def _vit():
    return VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=DEPTH, num_heads=2, num_classes=4)


def _by_name(model, groups):
    ids = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for g in groups:
        for p in g["params"]:
            assert ids[id(p)] not in out  # every parameter in exactly one group
            out[ids[id(p)]] = g
    assert set(out) == set(ids.values())
    return out


def test_vit_lrs_and_weight_decay():
    model = _vit()
    g = _by_name(model, O.create_optimizer(model, "adamw", lr=LR, weight_decay=WD, layer_decay=D).param_groups)
    # timm / BEiT: embeddings layer 0, block i layer i + 1, head layer depth + 1 (full lr); timm's group_matcher
    # puts the final norm with the last block; lr = LR * D ** (depth + 1 - layer)
    expected = {  # name: (lr, weight decay)
        "patch_embed.proj.weight": (LR * D ** 4, WD), "patch_embed.proj.bias": (LR * D ** 4, 0.0),
        "cls_token": (LR * D ** 4, 0.0), "pos_embed": (LR * D ** 4, 0.0),
        "blocks.0.attn.qkv.weight": (LR * D ** 3, WD), "blocks.0.norm1.weight": (LR * D ** 3, 0.0),
        "blocks.2.mlp.fc2.weight": (LR * D, WD), "blocks.2.mlp.fc2.bias": (LR * D, 0.0),
        "norm.weight": (LR * D, 0.0),
        "head.weight": (LR, WD), "head.bias": (LR, 0.0),
    }
    for name, (lr, wd) in expected.items():
        assert (g[name]["lr"], g[name]["weight_decay"]) == (pytest.approx(lr), wd), name
        assert g[name]["lr_scale"] == pytest.approx(lr / LR)


def test_extra_no_weight_decay_names():
    model = _vit()
    g = _by_name(model, param_groups_layer_decay(model, LR, WD, D, no_weight_decay=("head.weight",)))
    assert g["head.weight"]["weight_decay"] == 0.0 and g["blocks.1.attn.proj.weight"]["weight_decay"] == WD


def test_cosine_schedule_keeps_layer_ratios():
    model = _vit()
    opt = O.create_optimizer(model, "adamw", lr=LR, weight_decay=WD, layer_decay=D)
    sched = O.create_scheduler(opt, "cosine", epochs=4, steps_per_epoch=2, warmup_epochs=1)
    heads = []
    for _ in range(8):
        head = opt.param_groups[-1]["lr"]
        heads.append(head)
        for group in opt.param_groups:
            assert group["lr"] == pytest.approx(head * group["lr_scale"], rel=1e-9)
        opt.step()
        sched.step()
    assert heads[2] == pytest.approx(LR) and heads[0] < LR and heads[-1] < heads[3]  # warm-up, then cosine decay


def test_tnt_layers_are_timms():
    model = TNT(img_size=32, patch_size=16, outer_dim=16, inner_dim=8, depth=2, outer_heads=2, inner_heads=2)
    # timm's TNT group_matcher: stem = cls_token|patch_pos|pixel_pos|pixel_embed|norm[12]_proj|proj (here
    # cls_token, outer_pos, inner_pos, patch_embed, proj_norm1/2, proj), blocks.i, final norm with the last block
    expected = {"cls_token": 0, "outer_pos": 0, "inner_pos": 0, "patch_embed.proj.weight": 0, "proj_norm1.weight": 0,
                "proj.weight": 0, "proj_norm2.bias": 0, "blocks.0.proj.weight": 1, "blocks.1.outer_mlp.fc1.weight": 2,
                "norm.weight": 2, "head.weight": 3}
    assert set(expected) <= dict(model.named_parameters()).keys()
    assert {n: model.layer_id(n) for n in expected} == expected and model.num_lr_layers == 3


def test_pyramid_tnt_layers_follow_the_blocks():
    model = PyramidTNT(img_size=32, depths=(1, 2, 1, 1), outer_dims=(16, 32, 32, 32), inner_dims=(4, 4, 4, 4),
                       outer_heads=(2, 2, 2, 2), inner_heads=(1, 1, 1, 1), num_classes=3)
    # five blocks -> layers 1-5; a stage's merges and relative bias with its first block (timm's downsample rule)
    expected = {"patch_embed.common_conv.0.weight": 0, "outer_pos": 0, "inner_pos": 0,
                "stages.0.blocks.0.outer_attn.q.weight": 1, "stages.0.relative_pos": 1,
                "word_merges.0.conv.0.weight": 2, "sentence_merges.0.norm.weight": 2, "stages.1.relative_pos": 2,
                "stages.1.blocks.1.outer_mlp.fc1.weight": 3, "sentence_merges.2.conv.0.bias": 5,
                "stages.3.blocks.0.outer_norm1.weight": 5, "norm.weight": 5, "head.weight": 6}
    assert set(expected) <= dict(model.named_parameters()).keys()
    assert {n: model.layer_id(n) for n in expected} == expected and model.num_lr_layers == 6


def test_model_without_layers_is_refused():
    with pytest.raises(ValueError, match="Sequential does not declare its layers"):
        O.create_optimizer(nn.Sequential(nn.Linear(2, 2)), "sgd", lr=0.1, layer_decay=0.7)
    with pytest.raises(ValueError, match="needs the model itself"):
        O.create_optimizer(list(_vit().parameters()), "sgd", lr=0.1, layer_decay=0.7)
    with pytest.raises(ValueError, match=r"layer_decay must be in \(0, 1\]"):
        O.create_optimizer(_vit(), "sgd", lr=0.1, layer_decay=1.5)
