import pytest
import torch
from reference_weights import formula_input, formula_state_dict, load_reference

import danlu
from danlu.models import VisionTransformer, ViT, load_pretrained
from danlu.models.flops import count_flops, count_params
from danlu.models.layers import attention, fused_attn, resample_grid

REFERENCES = load_reference("vit_references.json")


@pytest.mark.parametrize("name, params", [
    ("vit_tiny_patch16_224", 5_717_416), ("vit_small_patch16_224", 22_050_664),
    ("vit_base_patch16_224", 86_567_656), ("vit_large_patch16_224", 304_326_632)])
def test_param_counts_match_deit_and_timm(name, params):
    with torch.device("meta"):
        model = danlu.create_model(name)
    assert count_params(model) == params


def _small_vit(**kw):
    return ViT(image_size=32, patch_size=8, num_classes=7, dim=48, depth=2, heads=3, mlp_dim=96, dim_head=16, **kw)


def test_fused_attention_equals_explicit_softmax():
    model = _small_vit().eval()
    x = torch.randn(3, 3, 32, 32)
    fused = model(x)
    with fused_attn(False):
        explicit = model(x)
    assert fused.shape == (3, 7)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=0)


def test_explicit_path_is_softmax_qk_v(monkeypatch):
    attn = danlu.models.layers.Attention(dim=8, heads=2, dim_head=4).eval()
    x = torch.randn(1, 5, 8)
    q, k, v = attn.qkv(x).reshape(1, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)  # sqrt(dim_head) = 2
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(1, 5, 8))

    def no_fused_kernel(*args, **kwargs):
        raise AssertionError("the explicit path must not call F.scaled_dot_product_attention")

    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", no_fused_kernel)
    with fused_attn(False):
        out = attn(x)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def _reference_logits(ref):
    return torch.tensor(ref["logits"], dtype=torch.float64)


def test_vision_transformer_gives_timms_outputs():
    ref = REFERENCES["timm"]  # timm's VisionTransformer, same code path as vit_*_patch16_224, depth 2 at 32x32
    model = VisionTransformer(**ref["config"]).double().eval()
    load_pretrained(model, formula_state_dict(ref["state_dict"]))  # timm's own key names, strictly
    with torch.no_grad():
        out = model(formula_input(ref["input_shape"]))
    torch.testing.assert_close(out, _reference_logits(ref), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", ["cls", "mean", "one_head"])  # one head of width dim: no attention projection
def test_vit_loads_vit_pytorch_state_dicts_and_gives_its_outputs(case):
    ref = REFERENCES[f"vit_pytorch_{case}"]
    model = ViT(**ref["config"]).double().eval()
    load_pretrained(model, formula_state_dict(ref["state_dict"]))  # vit-pytorch's key names, strictly
    with torch.no_grad():
        out = model(formula_input(ref["input_shape"]))
    torch.testing.assert_close(out, _reference_logits(ref), rtol=1e-10, atol=1e-10)


def test_vit_keeps_its_own_state_dicts_loading():
    model = _small_vit()
    copy = _small_vit()
    load_pretrained(copy, model.state_dict())  # danlu's names pass through the vit-pytorch mapping
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(copy.eval()(x), model.eval()(x), rtol=0, atol=0)


def test_vit_drops_out_where_vit_pytorch_does():
    model = ViT(image_size=32, patch_size=8, num_classes=7, dim=48, depth=1, heads=3, mlp_dim=96, dropout=0.1,
                emb_dropout=0.2)
    rates = {name: m.p for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout)}
    # vit-pytorch: emb_dropout after the position embedding; dropout after the attention output and after both
    # MLP layers (and on the attention weights); none before the head
    assert rates == {"pos_drop": 0.2, "blocks.0.attn.proj_drop": 0.1, "blocks.0.mlp.drop1": 0.1, "blocks.0.mlp.drop2": 0.1}
    assert model.blocks[0].attn.attn_drop == 0.1


def test_vit_s_has_vit_pytorchs_parameters():
    model = ViT(image_size=224, patch_size=16, num_classes=1000, dim=384, depth=12, heads=6, mlp_dim=1536)
    # two patch-embedding LayerNorms: over 16 * 16 * 3 = 768 patch values and over dim 384 (weight and bias each)
    norms = count_params(model.patch_embed) - count_params(model.patch_embed.proj)
    assert norms == 2 * 768 + 2 * 384 == 2_304
    assert count_params(model) == 22_039_144  # vit_pytorch.ViT with these arguments (vit-pytorch 1.26)


def test_vit_pytorch_keywords_and_mean_pool():
    model = ViT(image_size=(32, 48), patch_size=(8, 16), num_classes=5, dim=32, depth=1, heads=2, mlp_dim=64,
                pool="mean", channels=1, dim_head=16)
    assert model.cls_token is None and model.pos_embed.shape == (1, 4 * 3, 32)
    assert model(torch.randn(2, 1, 32, 48)).shape == (2, 5)
    with pytest.raises(ValueError, match="pool must be"):
        _small_vit(pool="max")


def test_vit_mlp_width_is_mlp_dim():
    model = ViT(image_size=8, patch_size=8, num_classes=2, dim=7, depth=1, heads=1, mlp_dim=61)
    assert model.blocks[0].mlp.fc1.out_features == 61  # int(7 * (61 / 7)) is 60


def test_backbone_and_head_interface():
    model = ViT(image_size=32, patch_size=8, num_classes=0, dim=48, depth=1, heads=3, mlp_dim=96)
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (2, 1 + 16, 48)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 48)
    assert model(x).shape == (2, 48)
    assert model.no_weight_decay() == {"pos_embed", "cls_token"}


def test_other_input_sizes_resize_the_position_embedding():
    model = _small_vit().eval()
    native = torch.randn(1, 3, 32, 32)
    out = model(native)
    # at the configured size nothing is interpolated: the result equals a manual forward with the stored embedding
    tokens = torch.cat([model.cls_token, model.patch_embed(native).flatten(2).transpose(1, 2)], dim=1) + model.pos_embed
    torch.testing.assert_close(out, model.head(model.norm(model.blocks(tokens))[:, 0]), atol=0, rtol=0)
    assert model(torch.randn(2, 3, 48, 64)).shape == (2, 7)   # rectangular, 6x8 grid
    with pytest.raises(ValueError, match="divisible by 8"):
        model(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match="3 input channels, got 1"):
        model(torch.randn(1, 1, 32, 32))


def test_resample_grid_interpolates_a_linear_ramp_exactly():
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4)  # value = column index
    pos = ramp.permute(0, 2, 3, 1).reshape(1, 16, 1)
    assert resample_grid(pos, (4, 4), (4, 4)) is pos
    wide = resample_grid(pos, (4, 4), (4, 8), mode="bilinear").reshape(4, 8)
    # align_corners=False bilinear upsampling by 2: centres map to (j + 0.5) / 2 - 0.5, clamped to [0, 3]
    expected = ((torch.arange(8.0) + 0.5) / 2 - 0.5).clamp(0, 3)
    torch.testing.assert_close(wide[0], expected)


def test_macs_of_vit_ti_are_its_matmuls_and_timms_1_26():
    model = danlu.create_model("vit_tiny_patch16_224")
    n, d, patches = 197, 192, 196  # tokens (14 x 14 patches + class token), width
    block = n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * 4 * d  # qkv, q k^T and attn v, proj, MLP
    by_hand = patches * d * 3 * 16 * 16 + 12 * block + d * 1000  # patch projection, 12 blocks, head
    macs = count_flops(model, (3, 224, 224)) / 2
    assert macs == by_hand
    # timm lists 1.26 GMACs: fvcore's count, which adds 5 per element of each of the 25 LayerNorms
    assert round((by_hand + 25 * 5 * n * d) / 1e9, 2) == 1.26
    assert abs(macs / 1e9 - 1.26) < 0.01


def test_timm_style_state_dict_names():
    keys = VisionTransformer(img_size=32, patch_size=16, embed_dim=32, depth=1, num_heads=2).state_dict().keys()
    assert {"cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.bias", "blocks.0.mlp.fc1.weight",
            "norm.weight", "head.weight"} <= set(keys)
