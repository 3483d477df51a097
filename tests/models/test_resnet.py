import pytest
import torch
from official_parc import official_parc, official_state_dict

import danlu
from danlu.models.layers.parc import parc_split, set_parc_impl
from danlu.models.pretrained import check_state_dict
from danlu.models.resnet import Bottleneck, ResNet


@pytest.mark.parametrize("name,expected", [("resnet50", 25_557_032), ("parc_resnet50", 23_737_640)])
def test_parameter_counts_match_the_official_models(name, expected):
    with torch.device("meta"):
        model = danlu.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_parc_blocks_are_dense_and_placed_like_the_official_code():
    with torch.device("meta"):
        model = danlu.create_model("parc_resnet50")
    parc_blocks = [n for n, m in model.named_modules() if isinstance(m, Bottleneck) and hasattr(m, "parc_v")]
    assert parc_blocks == ["layer3.3", "layer3.4", "layer3.5", "layer4.2"]
    assert model.layer3[3].parc_v.weight.shape == (128, 128, 14, 1) and model.layer4[2].parc_h.groups == 1


def test_official_resnet50_keys_load_as_they_are():
    sd, params = official_state_dict("resnet50")
    with torch.device("meta"):
        model = danlu.create_model("resnet50")
    check_state_dict(model, model.checkpoint_filter_fn(sd))
    assert sum(p.numel() for p in model.parameters()) == params


def test_official_parc_resnet50_loads_and_keeps_the_official_meaning():
    sd, params = official_state_dict("parc_res50")
    with torch.device("meta"):
        model = danlu.create_model("parc_resnet50").eval()
    model.to_empty(device="cpu")  # every value comes from the state dict
    danlu.load_pretrained(model, sd)
    torch.testing.assert_close(model.fc.weight, sd["fc.weight"])
    block, prefix = model.layer4[2], "layer4.2."
    x = torch.randn(2, 512, 7, 7)
    x1, x2 = x.chunk(2, dim=1)
    expected = torch.cat([official_parc(x1, sd[prefix + "parc_H.gcc_conv.weight"], sd[prefix + "parc_H.gcc_conv.bias"],
                                        sd[prefix + "parc_H.pe"], "H"),
                          official_parc(x2, sd[prefix + "parc_W.gcc_conv.weight"], sd[prefix + "parc_W.gcc_conv.bias"],
                                        sd[prefix + "parc_W.pe"], "W")], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(parc_split(x, block.parc_v, block.parc_h), expected, atol=1e-4, rtol=1e-4)


def tiny(**kwargs):
    """Fewer blocks, same code path: a ParC bottleneck closes layers 2-4."""
    return ResNet(layers=(1, 2, 2, 2), parc_insert_locs=(1, 1, 1, 1), **kwargs)


def test_any_input_size_and_both_impls_agree():
    model = tiny(num_classes=10).eval()
    x = torch.randn(2, 3, 80, 48)  # layer-3 map 5x3, layer-4 map 3x2, base sizes 14 and 7
    with torch.no_grad():
        spatial = model(x)
        fft = set_parc_impl(model, "fft")(x)
    assert spatial.shape == (2, 10)
    torch.testing.assert_close(spatial, fft, atol=1e-4, rtol=1e-4)


def test_features_only_returns_the_four_layer_maps():
    model = tiny(features_only=True)
    feats = model(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(1, 256, 16, 24), (1, 512, 8, 12), (1, 1024, 4, 6), (1, 2048, 2, 3)]
    assert [f["num_chs"] for f in model.feature_info] == [256, 512, 1024, 2048]
    assert "fc.weight" not in model.state_dict()
