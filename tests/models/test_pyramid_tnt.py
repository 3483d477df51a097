"""PyramidTNT against the official model: state-dict keys/shapes and parameter counts from the official
code (spec JSON), MACs from the readme, and a forward pass re-written from the official code."""
import math

import pytest
import torch
import torch.nn.functional as F

import danlu.models.layers.attention as attention_module
import danlu.models.pyramid_tnt as ptnt_module
from danlu.models import WeightMismatchError, create_model, get_model_config, load_pretrained
from danlu.models.flops import count_flops, count_params
from danlu.models.layers import fused_attn
from danlu.models.pyramid_tnt import PyramidTNT

OFFICIAL_GMACS = {"ptnt_ti_patch16_192": 0.588, "ptnt_s_patch16_256": 3.291, "ptnt_m_patch16_256": 8.215,
                  "ptnt_b_patch16_256": 15.980}
VARIANTS = list(OFFICIAL_GMACS)
# a tiny pyramid: same structure as the released models, fast on CPU
TINY = dict(depths=(1, 2, 1, 1), outer_dims=(16, 32, 64, 64), inner_dims=(4, 8, 16, 16), outer_heads=(2, 2, 4, 4),
            inner_heads=(1, 2, 2, 2), num_classes=7)


@pytest.fixture(scope="module")
def spec(tnt_spec):
    return tnt_spec


def _official_state_dict(spec, name):
    """Random tensors with the official keys and shapes (BN counters as int64, like torch's)."""
    gen = torch.Generator().manual_seed(1)
    return {k: torch.tensor(3) if k.endswith("num_batches_tracked") else torch.randn(shape, generator=gen)
            for k, shape in spec[name]["state_dict"]}


@pytest.fixture(scope="module")
def official_ti(spec):
    return _official_state_dict(spec, "ptnt_ti_patch16_192")


@pytest.fixture(scope="module")
def ti_model():
    return create_model("ptnt_ti_patch16_192")


def _tiny(**kw):
    return PyramidTNT(**{"img_size": 64, **TINY, **kw}).eval()


def _randomize_norms(model):
    """Non-trivial BatchNorm statistics and LayerNorm affines, so the reference checks them too."""
    gen = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
            m.weight.data = 1 + 0.2 * torch.randn(m.weight.shape, generator=gen)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=gen)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean = 0.1 * torch.randn(m.running_mean.shape, generator=gen)
            m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=gen)
    return model


def official_forward(sd, x, outer_heads, inner_heads, sr_ratios):
    """PyramidTNT's eval forward transcribed from the official pyramid_tnt.py (spec section 1), on a state dict."""
    def ln(t, p):
        return F.layer_norm(t, t.shape[-1:], sd[p + ".weight"], sd[p + ".bias"])

    def lin(t, p):
        return F.linear(t, sd[p + ".weight"], sd.get(p + ".bias"))

    def conv_bn_relu(t, p, i, stride):
        t = F.conv2d(t, sd[f"{p}.{i}.weight"], sd[f"{p}.{i}.bias"], stride, 1)
        bn = f"{p}.{i + 1}"
        t = F.batch_norm(t, sd[bn + ".running_mean"], sd[bn + ".running_var"], sd[bn + ".weight"], sd[bn + ".bias"])
        return F.relu(t)

    def attn(t, p, heads, H, W, sr, relative_pos):
        B, N, C = t.shape
        q = lin(t, p + ".q").reshape(B, N, heads, C // heads).permute(0, 2, 1, 3)
        if sr > 1:
            t = t.permute(0, 2, 1).reshape(B, C, H, W)
            t = F.avg_pool2d(t, sr, sr).reshape(B, C, -1).permute(0, 2, 1)
            t = ln(lin(t, p + ".linear"), p + ".norm")
        kv = lin(t, p + ".kv").reshape(B, -1, 2, heads, C // heads).permute(2, 0, 3, 1, 4)
        a = (q @ kv[0].transpose(-2, -1)) * (C // heads) ** -0.5
        if relative_pos is not None:
            a = a + relative_pos
        return lin((a.softmax(-1) @ kv[1]).transpose(1, 2).reshape(B, N, C), p + ".proj")

    def mlp(t, p):
        return lin(F.gelu(lin(t, p + ".fc1")), p + ".fc2")

    B, _, H, W = x.shape
    Ho, Wo = H // 8, W // 8
    x = conv_bn_relu(x, "patch_embed.common_conv", 0, 2)
    c = sd["inner_pos"].shape[-1]
    inner = F.unfold(conv_bn_relu(x, "patch_embed.inner_convs", 0, 1), 4, stride=4).transpose(1, 2)
    inner = inner.reshape(B * Ho * Wo, c, 16).transpose(1, 2)
    for i, stride in ((0, 2), (3, 2), (6, 1)):
        x = conv_bn_relu(x, "patch_embed.outer_convs", i, stride)
    outer = x.permute(0, 2, 3, 1).reshape(B, Ho * Wo, -1)
    inner = inner + sd["inner_pos"]
    outer = outer + sd["outer_pos"]
    for i in range(4):
        if i > 0:
            p = f"word_merges.{i - 1}"
            _, M, C = inner.shape
            t = ln(inner, p + ".norm").reshape(-1, Ho, Wo, 4, 4, C)
            if Ho % 2 == 1 or Wo % 2 == 1:
                t = F.pad(t.permute(0, 3, 4, 5, 1, 2), (0, Wo % 2, 0, Ho % 2)).permute(0, 4, 5, 1, 2, 3)
            x1, x2, x3, x4 = t[:, 0::2, 0::2], t[:, 1::2, 0::2], t[:, 0::2, 1::2], t[:, 1::2, 1::2]
            t = torch.cat([torch.cat([x1, x2], 3), torch.cat([x3, x4], 3)], 4)
            t = t.reshape(-1, 8, 8, C).permute(0, 3, 1, 2)
            t = F.conv2d(t, sd[p + ".conv.0.weight"], sd[p + ".conv.0.bias"], 2, 1)
            inner = t.reshape(-1, t.shape[1], M).transpose(1, 2)
            p = f"sentence_merges.{i - 1}"
            C = outer.shape[-1]
            t = ln(outer, p + ".norm").transpose(1, 2).reshape(B, C, Ho, Wo)
            t = F.conv2d(t, sd[p + ".conv.0.weight"], sd[p + ".conv.0.bias"], 2, 1)
            Ho, Wo = math.ceil(Ho / 2), math.ceil(Wo / 2)
            outer = t.reshape(B, -1, Ho * Wo).transpose(1, 2)
        rel = sd[f"stages.{i}.relative_pos"]
        j = 0
        while f"stages.{i}.blocks.{j}.outer_norm1.weight" in sd:
            p = f"stages.{i}.blocks.{j}."
            N = outer.shape[1]
            if p + "inner_norm1.weight" in sd:
                inner = inner + attn(ln(inner.reshape(B, N, -1), p + "inner_norm1").reshape(B * N, 16, -1),
                                     p + "inner_attn", inner_heads[i], 4, 4, 1, None)
                inner = inner + mlp(ln(inner.reshape(B, N, -1), p + "inner_norm2").reshape(B * N, 16, -1),
                                    p + "inner_mlp")
                outer = outer + ln(lin(ln(inner.reshape(B, N, -1), p + "proj_norm1"), p + "proj"), p + "proj_norm2")
            outer = outer + attn(ln(outer, p + "outer_norm1"), p + "outer_attn", outer_heads[i], Ho, Wo,
                                 sr_ratios[i], rel)
            outer = outer + mlp(ln(outer, p + "outer_norm2"), p + "outer_mlp")
            j += 1
    return lin(ln(outer, "norm").mean(1), "head")


# ---- exactness against the official model ------------------------------------------------------------------

@pytest.mark.parametrize("name", VARIANTS)
def test_state_dict_keys_shapes_and_params_are_official(spec, name):
    with torch.device("meta"):
        model = create_model(name)
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == [(k, s) for k, s in spec[name]["state_dict"]]
    assert count_params(model) == spec[name]["params"]


@pytest.mark.parametrize("name", VARIANTS)
def test_macs_within_3_percent_of_official(name):
    with torch.device("meta"):
        model = create_model(name)
    macs = count_flops(model, torch.zeros(1, *get_model_config(name).input_size, device="meta")) / 2
    assert macs / 1e9 == pytest.approx(OFFICIAL_GMACS[name], rel=0.03)


def test_registered_configs():
    sizes = {"ptnt_ti_patch16_192": 192, "ptnt_s_patch16_256": 256, "ptnt_m_patch16_256": 256,
             "ptnt_b_patch16_256": 256}
    for name, size in sizes.items():
        cfg = get_model_config(name)
        assert (cfg.input_size, cfg.mean, cfg.std, cfg.num_classes) == ((3, size, size), (0.5,) * 3, (0.5,) * 3, 1000)


def test_stage_layout_drop_path_and_init_follow_official():
    with torch.device("meta"):
        model = create_model("ptnt_s_patch16_256", drop_path_rate=0.1)
    inner = [[j for j, b in enumerate(s.blocks) if b.has_inner] for s in model.stages]
    assert inner == [[0], [0, 1], [0], [0]]
    rates = [b.drop_path.p for s in model.stages for b in s.blocks]
    assert rates == pytest.approx(torch.linspace(0, 0.1, 16).tolist())
    assert [s.outer_attn.sr_ratio for s in (st.blocks[0] for st in model.stages)] == [4, 2, 1, 1]
    assert model.no_weight_decay() == {"outer_pos", "inner_pos"}
    real = _tiny()
    assert real.stages[0].relative_pos.std().item() == pytest.approx(1.0, abs=0.1)  # torch.randn, not trunc_normal
    conv = real.patch_embed.common_conv[0]
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * conv.out_channels)), rel=0.2)


@pytest.mark.parametrize("size,sr_ratios", [(64, (4, 2, 1, 1)), ((40, 56), (1, 1, 1, 1))])
def test_forward_matches_official_code(size, sr_ratios):
    # (40, 56) is a 5x7 sentence grid: the odd-grid padding of the word merge and the ceil of the sentence merge
    model = _randomize_norms(_tiny(img_size=size, sr_ratios=sr_ratios))
    x = torch.randn(2, 3, *((size, size) if isinstance(size, int) else size))
    with torch.no_grad():
        expected = official_forward(model.state_dict(), x, TINY["outer_heads"], TINY["inner_heads"], sr_ratios)
        with fused_attn(False):
            explicit = model(x)
        fused = model(x)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(explicit, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(fused, expected, rtol=0, atol=1e-5)


# ---- fused attention -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(64, 64), (72, 104)])
def test_fused_equals_explicit_fp32_and_bf16(size, monkeypatch):
    # danlu sends bf16 on CPU down the explicit path (faster there); force the SDPA kernel (the CUDA path) so
    # the relative-position bias as its additive attn_mask is checked in bf16 too
    monkeypatch.setattr(attention_module, "_slow_fused_kernel", lambda q: False)
    model = _randomize_norms(_tiny())
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        fused = model(x)
        with fused_attn(False):
            explicit = model(x)
        torch.testing.assert_close(fused, explicit, rtol=0, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fused16 = model(x).float()
            with fused_attn(False):
                explicit16 = model(x).float()
    scale = explicit.abs().max()
    assert (fused16 - explicit16).abs().max() < 0.02 * scale
    assert (fused16 - explicit).abs().max() < 0.05 * scale


# ---- any input size ----------------------------------------------------------------------------------------------

def test_native_size_uses_position_terms_untouched(monkeypatch):
    model = _randomize_norms(_tiny())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)

    def never(*args, **kwargs):
        raise AssertionError("position terms were resized at the native size")
    monkeypatch.setattr(ptnt_module, "resample_abs_pos_embed",
                        lambda pos, new, old, *a, **k: pos if tuple(old) == tuple(new) else never())
    monkeypatch.setattr(ptnt_module, "resample_rel_pos",
                        lambda b, oq, ok, nq, nk: b if (oq, ok) == (nq, nk) else never())
    with torch.no_grad():
        assert torch.equal(model(x), before)


def test_other_sizes_resize_outer_pos_and_relative_pos():
    model = _tiny()
    calls = []
    original = ptnt_module.resample_rel_pos

    def spy(bias, old_q, old_k, new_q, new_k):
        out = original(bias, old_q, old_k, new_q, new_k)
        calls.append((tuple(new_q), tuple(new_k), tuple(out.shape)))
        return out
    ptnt_module.resample_rel_pos = spy
    try:
        with torch.no_grad():
            out = model(torch.randn(1, 3, 96, 160))  # 12x20 sentences
    finally:
        ptnt_module.resample_rel_pos = original
    assert out.shape == (1, 7)
    assert calls == [((12, 20), (3, 5), (1, 2, 240, 15)), ((6, 10), (3, 5), (1, 2, 60, 15)),
                     ((3, 5), (3, 5), (1, 4, 15, 15)), ((2, 3), (2, 3), (1, 4, 6, 6))]


def test_inputs_not_multiple_of_8_are_padded_not_cropped():
    model = _tiny(features_only=True)
    x = torch.randn(1, 3, 61, 83)
    with torch.no_grad():
        maps = model(x)
        padded = model(F.pad(x, (0, 5, 0, 3)))
    assert [tuple(m.shape[-2:]) for m in maps] == [(8, 11), (4, 6), (2, 3), (1, 2)]  # ceil(61/8) x ceil(83/8)
    assert all(torch.equal(a, b) for a, b in zip(maps, padded))


@pytest.mark.parametrize("size,grids", [
    ((200, 333), [(25, 42), (13, 21), (7, 11), (4, 6)]),
    pytest.param((800, 1333), [(100, 167), (50, 84), (25, 42), (13, 21)], marks=pytest.mark.slow),
])
def test_detection_sizes_give_stride_8_to_64_maps(size, grids):
    # 1333x800-style rectangles: width padded to a multiple of 8, odd grids padded by the word merge
    model = _tiny(features_only=True)
    with torch.no_grad():
        maps = model(torch.randn(1, 3, *size))
    assert [tuple(m.shape) for m in maps] == [(1, c, *g) for c, g in zip(TINY["outer_dims"], grids)]
    assert all(torch.isfinite(m).all() for m in maps)


@pytest.mark.slow
def test_ti_runs_at_224_and_320x480():
    model = create_model("ptnt_ti_patch16_192", num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 10)
        assert model(torch.randn(1, 3, 320, 480)).shape == (1, 10)


# ---- multi-scale features ------------------------------------------------------------------------------------------

def test_features_only_maps_feature_info_and_consistency_with_classifier():
    classifier = _randomize_norms(_tiny())
    backbone = _tiny(features_only=True)
    load_pretrained(backbone, classifier.state_dict())  # drops norm/head, strict otherwise
    assert backbone.feature_info == [{"num_chs": c, "reduction": r, "module": f"stages.{i}"}
                                     for i, (c, r) in enumerate(zip(TINY["outer_dims"], (8, 16, 32, 64)))]
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        maps = backbone(x)
        assert [tuple(m.shape) for m in maps] == [(2, 16, 8, 12), (2, 32, 4, 6), (2, 64, 2, 3), (2, 64, 1, 2)]
        last = maps[-1].flatten(2).transpose(1, 2)
        torch.testing.assert_close(classifier.forward_head(classifier.norm(last)), classifier(x), rtol=0, atol=1e-6)
    assert [tuple(m.shape) for m in classifier.forward_intermediates(x, intermediates_only=True)] == [tuple(m.shape) for m in maps]


def test_create_model_features_only():
    with torch.device("meta"):  # shapes only
        model = create_model("ptnt_ti_patch16_192", features_only=True).eval()
        maps = model(torch.randn(1, 3, 192, 192))
    assert [tuple(m.shape) for m in maps] == [(1, 80, 24, 24), (1, 160, 12, 12), (1, 320, 6, 6), (1, 320, 3, 3)]
    assert [f["reduction"] for f in model.feature_info] == [8, 16, 32, 64]


# ---- training --------------------------------------------------------------------------------------------------------

def test_backward_reaches_every_parameter_with_drop_path():
    # the official first commits crashed here (in-place += on the stem's ReLU output)
    model = _tiny(img_size=128, drop_path_rate=0.2, drop_rate=0.1).train()  # 2x2 last grid: softmax over >1 key
    model(torch.randn(2, 3, 128, 128)).logsumexp(-1).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


# ---- loading official weights -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["plain", "state_dict", "model", "safetensors"])
def test_load_official_checkpoint_files(official_ti, ti_model, tmp_path, fmt):
    sd = official_ti
    if fmt == "safetensors":
        from safetensors.torch import save_file
        path = tmp_path / "ptnt_ti.safetensors"
        save_file(sd, str(path))
    else:
        path = tmp_path / "ptnt-ti-75.2.pth.tar"
        torch.save(sd if fmt == "plain" else {fmt: sd, "epoch": 300}, path)
    assert load_pretrained(ti_model, path) == ([], [])
    loaded = ti_model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())


def test_load_into_other_size_interpolates_position_terms(official_ti):
    sd = official_ti
    model = create_model("ptnt_ti_patch16_192", img_size=256)
    load_pretrained(model, sd)
    assert model.outer_pos.shape == (1, 32 * 32, 80)
    assert model.stages[0].relative_pos.shape == (1, 2, 1024, 64)
    # bicubic resizing keeps a constant bias constant
    const = {**sd, "stages.3.relative_pos": torch.full((1, 8, 9, 9), 0.25)}
    load_pretrained(model, const)
    torch.testing.assert_close(model.stages[3].relative_pos, torch.full((1, 8, 16, 16), 0.25))


def test_load_reports_missing_and_unexpected_keys(official_ti, ti_model):
    sd = dict(official_ti)
    sd.pop("stages.1.relative_pos")
    sd["stages.0.blocks.0.se_layer.fc.1.weight"] = torch.zeros(20, 80)
    with pytest.raises(WeightMismatchError, match=r"missing: stages\.1\.relative_pos.*unexpected: "
                                                  r"stages\.0\.blocks\.0\.se_layer"):
        load_pretrained(ti_model, sd)


def test_bad_input_channels_is_one_clear_error():
    with pytest.raises(ValueError, match="expects 3 input channels, got 1"):
        _tiny()(torch.randn(1, 1, 64, 64))


@pytest.mark.slow
def test_cifar10_two_epochs_reach_45_percent(data_dir, tmp_path):
    # the figure: `danlu train --model ptnt_ti_patch16_192 --dataset cifar10 --img-size 32 --epochs 2`
    from danlu import train
    trainer = train(model="ptnt_ti_patch16_192", dataset="cifar10", data_dir=str(data_dir / "cifar10"), img_size=32,
                    epochs=2, out=str(tmp_path), progress=False)
    assert trainer.history[-1]["val_acc1"] >= 45.0
