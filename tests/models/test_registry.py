import re

import pytest
import torch

import danlu
from danlu.models import load_pretrained
from danlu.models.pretrained import WeightMismatchError


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"\(did you mean vit_small_patch16_224 or"):
        danlu.create_model("vit_smal_patch16_224")


def test_list_models_filters():
    assert danlu.list_models("vit_*_patch16_224") == ["vit_base_patch16_224", "vit_large_patch16_224",
                                                      "vit_small_patch16_224", "vit_tiny_patch16_224"]
    assert "simple_cnn" in danlu.list_models("cnn")


def test_create_model_overrides_and_config():
    model = danlu.create_model("simple_cnn", num_classes=3, in_chans=1, img_size=16)
    assert model.default_cfg.input_size == (1, 16, 16) and model.default_cfg.num_classes == 3
    assert model(torch.randn(1, 1, 16, 16)).shape == (1, 3)
    with pytest.raises(ValueError, match="no weights can be downloaded"):
        danlu.create_model("mlp", pretrained=True)


def _tiny():
    return danlu.create_model("mlp", img_size=4, hidden=3, num_classes=2)


@pytest.mark.parametrize("fmt", ["safetensors", "pth", "wrapped"])
def test_load_pretrained_formats(tmp_path, fmt):
    src, dst = _tiny(), _tiny()
    sd = src.state_dict()
    if fmt == "safetensors":
        from safetensors.torch import save_file
        path = tmp_path / "w.safetensors"
        save_file(sd, str(path))
    else:
        path = tmp_path / "w.pth.tar"
        torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3} if fmt == "wrapped" else sd, path)
    assert load_pretrained(dst, path) == ([], [])
    assert torch.equal(dst.hidden.weight, src.hidden.weight)
    assert torch.equal(danlu.create_model("mlp", img_size=4, hidden=3, num_classes=2, pretrained=str(path)).output.bias,
                       src.output.bias)


def test_load_pretrained_names_mismatched_keys(tmp_path):
    sd = _tiny().state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["output.bias"]
    sd["hidden.weight"] = torch.zeros(5, 5)
    with pytest.raises(WeightMismatchError, match=r"missing: output.bias; unexpected: extra.weight; shape mismatch: "
                                                  r"hidden.weight: file \(5, 5\) vs model \(3, 16\)"):
        load_pretrained(_tiny(), sd)


def test_corrupt_weight_file_is_named(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="bad.safetensors' is not a valid safetensors file"):
        load_pretrained(_tiny(), bad)
    bad_pth = tmp_path / "bad.pth"
    bad_pth.write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match="bad.pth' could not be read"):
        load_pretrained(_tiny(), bad_pth)


@pytest.mark.parametrize("kwargs, message", [({"num_classes": -1}, "num_classes must be 0 (a backbone) or more, got -1"),
                                             ({"in_chans": 0}, "in_chans must be at least 1, got 0")])
def test_impossible_sizes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        danlu.create_model("simple_cnn", **kwargs)
