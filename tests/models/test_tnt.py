"""TNT against the official model: keys/shapes/parameter counts (spec JSON), MACs (readme), a forward pass
transcribed from the official tnt.py, and loading official and timm-renamed checkpoints."""

import pytest
import torch
import torch.nn.functional as F

import danlu.models.tnt as tnt_module
from danlu.models import create_model, get_model_config, load_pretrained
from danlu.models.flops import count_flops, count_params
from danlu.models.layers import fused_attn
from danlu.models.tnt import TNT

OFFICIAL_GMACS = {"tnt_s_patch16_224": 5.228, "tnt_b_patch16_224": 14.066}
TINY = dict(img_size=48, outer_dim=32, inner_dim=8, depth=2, outer_heads=2, inner_heads=2, num_classes=5)
# timm's renaming of the official names (spec section 4), applied in this order as timm does
TIMM_RENAMES = [("outer_pos", "patch_pos"), ("inner_pos", "pixel_pos"), ("patch_embed", "pixel_embed"),
                ("proj_norm1", "norm1_proj"), ("proj_norm2", "norm2_proj"), ("inner_norm1", "norm_in"),
                ("inner_attn", "attn_in"), ("inner_norm2", "norm_mlp_in"), ("inner_mlp", "mlp_in"),
                ("outer_norm1", "norm_out"), ("outer_attn", "attn_out"), ("outer_norm2", "norm_mlp"),
                ("outer_mlp", "mlp")]


@pytest.fixture(scope="module")
def spec(tnt_spec):
    return tnt_spec


@pytest.fixture(scope="module")
def official_s(spec):
    """Random tensors with the official TNT-S keys and shapes, `outer_tokens` included."""
    gen = torch.Generator().manual_seed(1)
    return {k: torch.randn(shape, generator=gen) for k, shape in spec["tnt_s_patch16_224"]["state_dict"]}


@pytest.fixture(scope="module")
def tnt_s():
    return create_model("tnt_s_patch16_224")


def _tiny(**kw):
    model = TNT(**{**TINY, **kw}).eval()
    gen = torch.Generator().manual_seed(2)
    for m in model.modules():  # non-trivial norms, so the reference checks them too
        if isinstance(m, torch.nn.LayerNorm):
            m.weight.data = 1 + 0.2 * torch.randn(m.weight.shape, generator=gen)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=gen)
    return model


def official_forward(sd, x, outer_heads, inner_heads, patch=16):
    """TNT's eval forward transcribed from the official tnt.py, on a state dict."""
    def ln(t, p):
        return F.layer_norm(t, t.shape[-1:], sd[p + ".weight"], sd[p + ".bias"])

    def lin(t, p):
        return F.linear(t, sd[p + ".weight"], sd.get(p + ".bias"))

    def attn(t, p, heads):
        B, N, C = t.shape
        qk = lin(t, p + ".qk").reshape(B, N, 2, heads, C // heads).permute(2, 0, 3, 1, 4)
        v = lin(t, p + ".v").reshape(B, N, heads, -1).permute(0, 2, 1, 3)
        a = ((qk[0] @ qk[1].transpose(-2, -1)) * (C // heads) ** -0.5).softmax(-1)
        return lin((a @ v).transpose(1, 2).reshape(B, N, -1), p + ".proj")

    def mlp(t, p):
        return lin(F.gelu(lin(t, p + ".fc1")), p + ".fc2")

    B, C, H, W = x.shape
    N = (H // patch) * (W // patch)
    inner = F.unfold(x, patch, stride=patch).transpose(1, 2).reshape(B * N, C, patch, patch)
    inner = F.conv2d(inner, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=4, padding=3)
    inner = inner.reshape(B * N, inner.shape[1], -1).transpose(1, 2) + sd["inner_pos"]
    outer = ln(lin(ln(inner.reshape(B, N, -1), "proj_norm1"), "proj"), "proj_norm2")
    outer = torch.cat((sd["cls_token"].expand(B, -1, -1), outer), dim=1) + sd["outer_pos"]
    j = 0
    while f"blocks.{j}.outer_norm1.weight" in sd:
        p = f"blocks.{j}."
        inner = inner + attn(ln(inner, p + "inner_norm1"), p + "inner_attn", inner_heads)
        inner = inner + mlp(ln(inner, p + "inner_norm2"), p + "inner_mlp")
        outer = outer.clone()
        words = ln(lin(ln(inner.reshape(B, N, -1), p + "proj_norm1"), p + "proj"), p + "proj_norm2")
        outer[:, 1:] = outer[:, 1:] + words
        outer = outer + attn(ln(outer, p + "outer_norm1"), p + "outer_attn", outer_heads)
        outer = outer + mlp(ln(outer, p + "outer_norm2"), p + "outer_mlp")
        j += 1
    return lin(ln(outer, "norm")[:, 0], "head")


@pytest.mark.parametrize("name", list(OFFICIAL_GMACS))
def test_state_dict_is_official_less_outer_tokens(spec, name):
    with torch.device("meta"):
        model = create_model(name)
    official = spec[name]["state_dict"]
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == [(k, s) for k, s in official
                                                                           if k != "outer_tokens"]
    outer_tokens = dict((k, s) for k, s in official)["outer_tokens"]
    assert count_params(model) == spec[name]["params"] - outer_tokens[1] * outer_tokens[2]
    cfg = get_model_config(name)
    assert (cfg.input_size, cfg.mean, cfg.std) == ((3, 224, 224), (0.5,) * 3, (0.5,) * 3)


@pytest.mark.parametrize("name", list(OFFICIAL_GMACS))
def test_macs_within_3_percent_of_official(name):
    with torch.device("meta"):
        model = create_model(name)
    macs = count_flops(model, torch.zeros(1, 3, 224, 224, device="meta")) / 2
    assert macs / 1e9 == pytest.approx(OFFICIAL_GMACS[name], rel=0.03)


def test_forward_matches_official_code_fused_and_explicit():
    model = _tiny()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        expected = official_forward(model.state_dict(), x, 2, 2)
        fused = model(x)
        with fused_attn(False):
            explicit = model(x)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(fused, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(explicit, expected, rtol=0, atol=1e-5)


def test_native_size_leaves_outer_pos_untouched(monkeypatch):
    model = _tiny()
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        before = model(x)
    monkeypatch.setattr(tnt_module, "resample_abs_pos_embed", lambda pos, new, old, *a, **k: pos if tuple(new) == tuple(old)
                        else pytest.fail("outer_pos resized at native size"))
    with torch.no_grad():
        assert torch.equal(model(x), before)


def test_other_sizes_pad_to_the_patch_grid_and_resize_outer_pos():
    model = _tiny()
    x = torch.randn(1, 3, 40, 70)  # 3x5 patches after padding to 48x80
    with torch.no_grad():
        out = model(x)
        assert torch.equal(out, model(F.pad(x, (0, 10, 0, 8))))
        with fused_attn(False):
            torch.testing.assert_close(model(x), out, rtol=0, atol=1e-5)
    assert out.shape == (1, 5)
    # an oracle for the resized case: a model built for 48x80 holding the interpolated outer_pos
    wide = _tiny(img_size=(48, 80))
    wide.load_state_dict(model.state_dict() | {"outer_pos": wide.checkpoint_filter_fn(model.state_dict())["outer_pos"]})
    with torch.no_grad():
        torch.testing.assert_close(official_forward(wide.state_dict(), F.pad(x, (0, 10, 0, 8)), 2, 2), out,
                                   rtol=0, atol=1e-5)


def test_backward_reaches_every_parameter():
    model = _tiny(drop_path_rate=0.1).train()
    model(torch.randn(8, 3, 48, 48)).logsumexp(-1).sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0] == []


@pytest.mark.parametrize("fmt", ["pth.tar", "safetensors"])
def test_load_official_checkpoint_file(official_s, tnt_s, tmp_path, fmt):
    path = tmp_path / f"tnt_s_81.5.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file
        save_file(official_s, str(path))
    else:
        torch.save(official_s, path)
    assert load_pretrained(tnt_s, path) == ([], [])
    loaded = tnt_s.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in official_s.items() if k != "outer_tokens")


def test_load_timm_renamed_checkpoint(official_s, tnt_s):
    timm_sd = {}
    for k, v in official_s.items():
        if k == "outer_tokens":  # timm pops it
            continue
        for old, new in TIMM_RENAMES:
            k = k.replace(old, new)
        if k == "pixel_pos":  # timm stores the word embedding as a (1, c, 4, 4) map
            v = v.permute(0, 2, 1).reshape(1, -1, 4, 4)
        timm_sd[k] = v
    assert "blocks.0.norm_mlp_in.weight" in timm_sd and "blocks.0.mlp.fc1.weight" in timm_sd
    load_pretrained(tnt_s, timm_sd)
    loaded = tnt_s.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in official_s.items() if k != "outer_tokens")
