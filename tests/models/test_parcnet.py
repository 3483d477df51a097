import functools

import pytest
import torch
import torch.nn.functional as F
from reference_weights import formula_input, formula_state_dict, load_reference

import danlu
from danlu.models import load_pretrained
from danlu.models.flops import count_params
from danlu.models.layers.parc import ParC, set_parc_impl
from danlu.models.parcnet import AxialEmbedding, ParCMetaFormerBlock

# the official model (hkzhang91/ParC-Net cvnets `edgeformer`, 10 classes) run once on formula weights
OFFICIAL = load_reference("parcnet_official_references.json.gz")


@functools.cache
def _official_state_dict(name):
    return formula_state_dict(OFFICIAL[name]["state_dict"])


@pytest.mark.parametrize("name, keys", [("parcnet_s", 557), ("parcnet_xs", 487)])
def test_official_state_dict_loads_strictly_and_gives_the_official_outputs(name, keys):
    assert len(OFFICIAL[name]["state_dict"]) == keys  # with the duplicate `residual.*` copy of layer_5.0
    model = danlu.create_model(name, num_classes=10).double().eval()
    load_pretrained(model, _official_state_dict(name))  # strict
    for size, logits in OFFICIAL[name]["logits"].items():  # 64: kernels interpolated; 256: used as stored
        ref = torch.tensor(logits, dtype=torch.float64)
        with torch.no_grad():
            out = model(formula_input((2, 3, int(size), int(size))))
        # to 1e-10 of the logits' scale (they reach 1e3-1e6: the formula weights grow activations layer by layer)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10 * ref.abs().max().item())


def test_official_state_dict_loads_into_a_backbone():
    model = danlu.create_model("parcnet_xs", features_only=True)
    load_pretrained(model, _official_state_dict("parcnet_xs"))  # strict: the classifier is dropped
    torch.testing.assert_close(model.stem[0].weight, _official_state_dict("parcnet_xs")["conv_1.block.conv.weight"].float())


def test_parcnet_s_has_the_papers_5_0m_parameters():
    n = count_params(danlu.create_model("parcnet_s"))
    assert n == pytest.approx(5.0e6, rel=0.02)  # paper and official model_info.txt: 5.0M
    assert n == 5_037_088


def test_metaformer_block_parameter_count_by_hand():
    # dim 192 (two halves of 96), FFN 384, kernels of 32 taps, embeddings on, no ParC bias:
    # 2 pre-norms 2*2*96 + 4 ParC (96*32 kernel + 96*32 embedding) + FFN (BN 2*192, 192*384+384, 384*192+192)
    # + channel attention (192*12, BN 2*12, 12*192, BN 2*192)
    expected = 2 * 2 * 96 + 4 * 2 * 96 * 32 + 2 * 192 + 192 * 384 + 384 + 384 * 192 + 192 + 192 * 12 + 24 + 12 * 192 + 384
    assert count_params(ParCMetaFormerBlock(192, 384, 32, use_pe=True)) == expected == 178_392


@pytest.mark.parametrize("direction, size", [("V", (5, 7)), ("H", (7, 5)), ("V", (1, 3))])
def test_axial_embedding_resizes_like_the_parc_kernels(direction, size):
    emb = AxialEmbedding(3, direction, 8).double()
    n = size[0] if direction == "V" else size[1]
    expected = F.interpolate(emb.pe, size=(n, 1) if direction == "V" else (1, n), mode="bilinear", align_corners=True)
    with torch.no_grad():
        out = emb(torch.zeros(2, 3, *size, dtype=torch.float64))
    torch.testing.assert_close(out, expected.expand(2, 3, *size), rtol=0, atol=1e-15)


def _circular(x, k, dim):
    """Independent oracle: y = sum_s k[:, s] * x shifted by s along dim (circular cross-correlation)."""
    shape = (1, -1, 1, 1)
    return sum(k[:, s].view(shape) * torch.roll(x, -s, dims=dim) for s in range(k.shape[1]))


def test_metaformer_block_mixes_v_then_h_and_h_then_v():
    torch.manual_seed(0)
    block = ParCMetaFormerBlock(32, 16, base_size=6).eval()
    torch.nn.init.zeros_(block.ffn[4].weight)  # FFN output 0, so the channel mixer adds nothing
    torch.nn.init.zeros_(block.ffn[4].bias)
    x = torch.randn(2, 32, 6, 6)
    x1, x2 = x.chunk(2, 1)
    kv1, kh1 = (p.weight.view(16, 6) for p in block.mixer1)
    kh2, kv2 = (p.weight.view(16, 6) for p in block.mixer2)
    with torch.no_grad():
        y1 = x1 + _circular(_circular(block.norm1(x1), kv1, 2), kh1, 3)
        y2 = x2 + _circular(_circular(block.norm2(x2), kh2, 3), kv2, 2)
        torch.testing.assert_close(block(x), torch.cat([y1, y2], 1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(64, 64), (160, 96), (97, 131)])
def test_any_input_size(size):
    model = danlu.create_model("parcnet_s", num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 10)


def test_kernels_used_as_stored_at_256():
    with torch.device("meta"):  # shapes only: no arithmetic needed to see the runtime lengths
        model = danlu.create_model("parcnet_s").eval()
    seen = {}
    for m in model.modules():
        if isinstance(m, ParC):
            m.register_forward_pre_hook(lambda mod, a: seen.__setitem__(mod, a[0].shape[mod.dim]))
    with torch.no_grad():
        model(torch.randn(1, 3, 256, 256, device="meta"))
    assert {m.base_size for m in seen} == {32, 16, 8}
    assert all(n == m.base_size for m, n in seen.items())  # feature size == base size: no interpolation


def test_kernels_stored_for_the_training_size():
    with torch.device("meta"):
        model = danlu.create_model("parcnet_xs", img_size=(64, 96)).eval()
    sizes = {(m.direction, m.base_size) for m in model.modules() if isinstance(m, ParC)}
    assert sizes == {("V", 8), ("V", 4), ("V", 2), ("H", 12), ("H", 6), ("H", 3)}  # ceil(64 / 8..32), ceil(96 / 8..32)


def test_fft_and_spatial_give_the_same_network_output():
    model = danlu.create_model("parcnet_xs").eval()
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        ref = model(x)
        out = set_parc_impl(model, "fft")(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_features_only():
    model = danlu.create_model("parcnet_s", features_only=True).eval()
    assert not any(n.startswith(("head", "conv_head")) for n, _ in model.named_parameters())
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [i["num_chs"] for i in model.feature_info] == [32, 64, 96, 128, 160]
    assert [64 // f.shape[-1] for f in feats] == [i["reduction"] for i in model.feature_info] == [2, 4, 8, 16, 32]


def test_backbone_pre_logits_and_no_weight_decay():
    model = danlu.create_model("parcnet_s", num_classes=0).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 640)  # min(4 * 160, 960) channels, pooled
    nwd = model.no_weight_decay()
    assert len(nwd) == 3 * 4 and all(n.endswith(".pe") for n in nwd)  # embeddings only in each stage's first block


def test_wrong_channels_is_one_clear_error():
    with pytest.raises(ValueError, match="expects 3 input channels, got 1"):
        danlu.create_model("parcnet_xs")(torch.randn(1, 1, 64, 64))
