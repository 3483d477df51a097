"""The one model contract (models/_base.py, pretrained.load_pretrained): timm's forward_intermediates, features_only
with out_indices, reset_classifier and head dropping on load, checked against the models' own layers run by hand."""
import warnings

import pytest
import torch

import danlu
from danlu.models import load_pretrained
from danlu.models.convnext import ConvNeXt
from danlu.models.layers.parc import freeze_parc, unfreeze_parc
from danlu.models.parcnet import AxialEmbedding
from danlu.models.resnet import ResNet
from danlu.models.vit import VisionTransformer


def _vit(**kw):
    torch.manual_seed(0)
    return VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=3, num_heads=2, num_classes=4, **kw).eval()


def _vit_by_hand(model, x):
    """Each block's tokens, run block by block from the model's own embedding."""
    tokens, out = model._pos_embed(model.patch_embed(x)), []
    for block in model.blocks:
        tokens = block(tokens)
        out.append(tokens)
    return out


@torch.no_grad()
def test_vit_forward_intermediates_follows_timms_convention():
    model, x = _vit(), torch.randn(2, 3, 32, 48)
    tokens = _vit_by_hand(model, x)
    as_map = [t[:, 1:].reshape(2, 4, 6, 16).permute(0, 3, 1, 2) for t in tokens]  # class token dropped, 4x6 patches
    final, maps = model.forward_intermediates(x)
    assert torch.equal(final, model.norm(tokens[-1])) and torch.equal(final, model.forward_features(x))
    assert len(maps) == 3 and all(torch.equal(m, e) for m, e in zip(maps, as_map))
    only = model.forward_intermediates(x, indices=[0, -1], norm=True, output_fmt="NLC", intermediates_only=True)
    assert isinstance(only, list) and len(only) == 2
    assert torch.equal(only[0], model.norm(tokens[0])[:, 1:]) and torch.equal(only[1], model.norm(tokens[2])[:, 1:])
    early, last_two = model.forward_intermediates(x, indices=2, stop_early=True)  # int n: the last n taps
    assert torch.equal(early, model.norm(tokens[-1])) and [m.shape for m in last_two] == [as_map[1].shape] * 2
    early, (first,) = model.forward_intermediates(x, indices=[0], stop_early=True)
    assert torch.equal(early, model.norm(tokens[0])) and torch.equal(first, as_map[0])


def test_bad_indices_and_formats_are_one_clear_error():
    model = _vit()
    with pytest.raises(ValueError, match=r"feature indices \[3\] must be .* in -3..2"):
        model.forward_intermediates(torch.randn(1, 3, 32, 32), indices=[3])
    with pytest.raises(ValueError, match="the last 4 of 3 feature taps"):
        model.forward_intermediates(torch.randn(1, 3, 32, 32), indices=4)
    with pytest.raises(ValueError, match=r"output_fmt must be one of \('NCHW',\) for ResNet, got 'NLC'"):
        ResNet((1, 1, 1, 1), num_classes=2).forward_intermediates(torch.randn(1, 3, 32, 32), output_fmt="NLC")


@torch.no_grad()
def test_features_only_out_indices_and_feature_info():
    torch.manual_seed(0)
    classifier = ResNet((1, 1, 1, 1), num_classes=3).eval()
    backbone = ResNet((1, 1, 1, 1), features_only=True, out_indices=(1, -1)).eval()
    assert load_pretrained(backbone, classifier.state_dict()) == ([], [])  # strict; fc dropped silently
    assert [(f["num_chs"], f["reduction"], f["module"]) for f in backbone.feature_info] == [(512, 8, "layer2"),
                                                                                          (2048, 32, "layer4")]
    x = torch.randn(1, 3, 64, 64)
    stem = classifier.maxpool(classifier.relu(classifier.bn1(classifier.conv1(x))))
    l2 = classifier.layer2(classifier.layer1(stem))
    l4 = classifier.layer4(classifier.layer3(l2))
    maps = backbone(x)
    assert len(maps) == 2 and torch.equal(maps[0], l2) and torch.equal(maps[1], l4)
    assert "fc.weight" not in backbone.state_dict()


def test_reset_classifier():
    model = danlu.create_model("mobilenetv2", num_classes=0, img_size=32)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1280)
    model.reset_classifier(5)
    assert model.num_classes == 5 and model.classifier[1].weight.shape == (5, 1280)
    assert isinstance(model.classifier[0], torch.nn.Dropout)
    assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    vit = _vit()
    vit.reset_classifier(0)
    assert vit(torch.randn(1, 3, 32, 32)).shape == (1, 16)


def test_load_pretrained_drops_a_head_of_another_size_with_a_warning():
    torch.manual_seed(0)
    src = ConvNeXt(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), num_classes=10)
    for num_classes in (3, 0):
        dst = ConvNeXt(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), num_classes=num_classes)
        own_head = {k: v.clone() for k, v in dst.state_dict().items() if k.startswith("head.")}
        with pytest.warns(UserWarning, match=rf"classifier 'head' \(10 classes\) does not fit the model's \({num_classes} "):
            assert load_pretrained(dst, src.state_dict()) == ([], [])
        assert torch.equal(dst.stages[3][0].pwconv1.weight, src.stages[3][0].pwconv1.weight)
        assert all(torch.equal(dst.state_dict()[k], v) for k, v in own_head.items())
    same = ConvNeXt(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), num_classes=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a head of the same size loads without a word
        load_pretrained(same, src.state_dict())
    assert torch.equal(same.head.weight, src.head.weight)


def test_freeze_parc_freezes_every_module_with_freeze_and_unfreeze():
    model = danlu.create_model("parcnet_xs", num_classes=2).eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        before = model(x)
    frozen = freeze_parc(model, x)
    embeddings = [m for m in model.modules() if isinstance(m, AxialEmbedding)]
    assert embeddings and all(m in frozen for m in embeddings) and all(m.frozen_pe is not None for m in embeddings)
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="frozen at length"):
        model(torch.randn(1, 3, 64, 48))
    unfreeze_parc(model)
    assert all(m.frozen_pe is None for m in embeddings)
