import pytest
import torch
from official_parc import official_split_parc, official_state_dict

import danlu
from danlu.models.layers.parc import parc_split, set_parc_impl
from danlu.models.mobilenetv2 import ParCInvertedResidual


@pytest.mark.parametrize("name,expected", [("mobilenetv2", 3_504_872), ("parc_mobilenetv2", 3_532_136)])
def test_parameter_counts_match_the_official_models(name, expected):
    with torch.device("meta"):
        model = danlu.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_parc_blocks_and_embeddings_placed_like_the_official_code():
    with torch.device("meta"):
        model = danlu.create_model("parc_mobilenetv2")
    blocks = {n: m for n, m in model.named_modules() if isinstance(m, ParCInvertedResidual)}
    assert list(blocks) == ["features.9", "features.10", "features.13", "features.16"]
    assert [m.parc_v.pe is not None for m in blocks.values()] == [True, False, True, True]  # first ParC of a stage only
    assert blocks["features.16"].parc_h.weight.shape == (480, 1, 1, 7)


def test_official_parc_mobilenetv2_loads_and_keeps_the_official_meaning():
    sd, params = official_state_dict("parc_mv2")
    with torch.device("meta"):
        model = danlu.create_model("parc_mobilenetv2").eval()
    model.to_empty(device="cpu")
    danlu.load_pretrained(model, sd)
    assert sum(p.numel() for p in model.parameters()) == params
    block, prefix = model.features[13], "features.13."
    x = torch.randn(2, 576, 14, 14)
    expected = official_split_parc(x, sd, prefix)
    with torch.no_grad():
        torch.testing.assert_close(parc_split(x, block.parc_v, block.parc_h), expected, atol=1e-5, rtol=1e-5)


def test_plain_mobilenetv2_has_the_torchvision_keys_of_the_official_non_parc_blocks():
    sd, _ = official_state_dict("parc_mv2")
    with torch.device("meta"):
        model = danlu.create_model("mobilenetv2")
    parc_blocks = ("features.9.", "features.10.", "features.13.", "features.16.")
    own = {k for k in model.state_dict() if not k.startswith(parc_blocks)}
    assert own == {k for k in sd if not k.startswith(parc_blocks)}


def test_any_input_size_and_both_impls_agree():
    model = danlu.create_model("parc_mobilenetv2", num_classes=10).eval()
    x = torch.randn(2, 3, 96, 64)  # ParC maps 6x4 and 3x2 instead of 14x14 and 7x7
    with torch.no_grad():
        spatial = model(x)
        fft = set_parc_impl(model, "fft")(x)
    assert spatial.shape == (2, 10)
    torch.testing.assert_close(spatial, fft, atol=1e-4, rtol=1e-4)


def test_features_only_returns_five_scales_and_drops_the_head_on_load():
    model = danlu.create_model("parc_mobilenetv2", features_only=True)
    feats = model(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(1, 16, 32, 48), (1, 24, 16, 24), (1, 32, 8, 12), (1, 96, 4, 6), (1, 320, 2, 3)]
    sd, _ = official_state_dict("parc_mv2")
    assert danlu.load_pretrained(model, sd) == ([], [])  # strict: the head conv and classifier weights are dropped
