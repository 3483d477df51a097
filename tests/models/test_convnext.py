import pytest
import torch
from official_parc import official_split_parc, official_state_dict

import danlu
from danlu.models.convnext import Block, ConvNeXt
from danlu.models.layers import ParC
from danlu.models.layers.parc import parc_split, set_parc_impl
from danlu.models.pretrained import check_state_dict


@pytest.mark.parametrize("name,expected", [("convnext_xt", 7_438_360), ("parc_convnext_xt", 7_412_824)])
def test_parameter_counts_match_the_official_models(name, expected):
    with torch.device("meta"):
        model = danlu.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_parc_blocks_sit_in_the_last_third_of_stages_3_and_4():
    with torch.device("meta"):
        model = danlu.create_model("parc_convnext_xt")
    parc_blocks = [n for n, m in model.named_modules() if isinstance(m, Block) and hasattr(m, "parc_v")]
    assert parc_blocks == ["stages.2.6", "stages.2.7", "stages.2.8", "stages.3.2"]
    assert model.stages[2][6].parc_v.weight.shape == (96, 1, 14, 1) and model.stages[3][2].parc_h.base_size == 7


def test_official_convnext_xt_keys_load_as_they_are():
    sd, params = official_state_dict("convnext_xt")
    with torch.device("meta"):  # a strict key and shape check; values need no real model
        model = danlu.create_model("convnext_xt")
    check_state_dict(model, model.checkpoint_filter_fn(sd))
    assert sum(p.numel() for p in model.parameters()) == params


def test_official_parc_convnext_xt_loads_and_keeps_the_official_meaning():
    sd, params = official_state_dict("parc_convnext_xt")
    with torch.device("meta"):
        model = danlu.create_model("parc_convnext_xt").eval()
    model.to_empty(device="cpu")  # every value comes from the state dict: skip the slow random init
    assert sum(p.numel() for p in model.parameters()) == params
    danlu.load_pretrained(model, sd)
    torch.testing.assert_close(model.head.weight, sd["head.weight"])
    # the official gcc_H (first channel half) runs along the height: it must have become our parc_v
    block, prefix = model.stages[2][7], "stages.2.7."
    x = torch.randn(2, 192, 14, 14)
    expected = official_split_parc(x, sd, prefix)
    with torch.no_grad():
        torch.testing.assert_close(parc_split(x, block.parc_v, block.parc_h), expected, atol=1e-5, rtol=1e-5)


def test_official_weights_map_onto_a_model_for_another_resolution():
    sd, _ = official_state_dict("parc_convnext_xt")
    with torch.device("meta"):
        model = danlu.create_model("parc_convnext_xt", img_size=(256, 192))
    mapped = model.checkpoint_filter_fn(sd)
    check_state_dict(model, mapped)  # every shape fits after resizing
    k = mapped["stages.2.6.parc_h.weight"]  # base 14 -> 192/16 = 12 along the width
    assert k.shape == (96, 1, 1, 12) and mapped["stages.2.6.parc_v.pe"].shape == (1, 96, 16, 1)
    official = sd["stages.2.6.gcc_W.gcc_conv.weight"][0, 0, 0]
    pos = torch.arange(12) * 13 / 11  # align_corners=True sample points
    lo = pos.floor().long().clamp(max=12)
    expected = official[lo] + (pos - lo) * (official[lo + 1] - official[lo])
    torch.testing.assert_close(k[0, 0, 0], expected)


def tiny(**kwargs):
    """A small ParC-ConvNeXt (same code path, ParC in the last block of stages 2-4) for fast functional tests."""
    return ConvNeXt(depths=(1, 2, 2, 2), dims=(8, 16, 32, 64), parc_insert_locs=(1, 1, 1, 1), **kwargs)


def test_any_input_size_and_both_impls_agree():
    model = tiny(num_classes=10).eval()
    x = torch.randn(2, 3, 96, 64)  # stage-3 map 6x4 and stage-4 map 3x2 instead of 14x14 and 7x7
    with torch.no_grad():
        spatial = model(x)
        fft = set_parc_impl(model, "fft")(x)
    assert spatial.shape == (2, 10)
    torch.testing.assert_close(spatial, fft, atol=1e-4, rtol=1e-4)


def test_features_only_returns_the_four_stage_maps():
    model = tiny(features_only=True)
    feats = model(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(1, 8, 16, 24), (1, 16, 8, 12), (1, 32, 4, 6), (1, 64, 2, 3)]
    assert [f["reduction"] for f in model.feature_info] == [4, 8, 16, 32]
    assert not any(k.startswith(("head", "norm.")) for k in model.state_dict())


def test_backbone_and_no_weight_decay():
    model = tiny(num_classes=0)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 64)
    assert "stages.3.1.parc_v.pe" in model.no_weight_decay()
    assert sum(isinstance(m, ParC) for m in model.modules()) == 6


def test_too_small_input_gets_one_clear_sentence():
    with pytest.raises(ValueError, match="at least 32x32 pixels, got 17x200"):
        tiny()(torch.randn(1, 3, 17, 200))
