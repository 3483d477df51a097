import pytest
import torch
import torch.nn.functional as F

from danlu.models.pretrained import WeightMismatchError
from danlu.models.vgg import IMAGENET_MEAN, IMAGENET_STD, LAYER_NAMES, VGG19Features, vgg19_features

# torchvision's vgg19: conv indices in `features` and their (out, in) channels
CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256), 14: (256, 256),
         16: (256, 256), 19: (512, 256), 21: (512, 512), 23: (512, 512), 25: (512, 512), 28: (512, 512),
         30: (512, 512), 32: (512, 512), 34: (512, 512)}


def _torchvision_state_dict():
    sd = {}
    for i, (cout, cin) in CONVS.items():
        sd[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3) * 0.01
        sd[f"features.{i}.bias"] = torch.randn(cout) * 0.01
    for i in (0, 3, 6):  # the classifier is dropped; tiny stand-ins with its names are enough
        sd[f"classifier.{i}.weight"], sd[f"classifier.{i}.bias"] = torch.zeros(2, 2), torch.zeros(2)
    return sd


def test_layer_names_follow_torchvision_indices():
    assert len(LAYER_NAMES) == 37
    assert {LAYER_NAMES[i] for i in CONVS} == {f"conv{b}_{j}" for b in (1, 2) for j in (1, 2)} | \
        {f"conv{b}_{j}" for b in (3, 4, 5) for j in (1, 2, 3, 4)}
    assert [LAYER_NAMES.index(n) for n in ("conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1")] == [5, 10, 19, 21, 28]


def test_loads_a_torchvision_file_and_matches_a_direct_convolution(tmp_path):
    sd = _torchvision_state_dict()
    path = tmp_path / "vgg19.pth"
    torch.save(sd, path)
    model = vgg19_features(path)
    assert torch.equal(model.features[28].weight, sd["features.28.weight"])
    assert not any(p.requires_grad for p in model.parameters())
    x = torch.rand(1, 3, 8, 8)
    normed = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = F.relu(F.conv2d(normed, sd["features.0.weight"], sd["features.0.bias"], padding=1))
    out = model(x, ["relu1_1", "conv1_1"])
    torch.testing.assert_close(out["relu1_1"], expected)
    assert out["conv1_1"].min() < 0  # the conv output is kept before the ReLU


def test_truncated_network_ignores_deeper_layers_but_reports_missing_ones():
    sd = _torchvision_state_dict()
    model = VGG19Features(last="relu2_1")
    from danlu.models.pretrained import load_pretrained
    load_pretrained(model, sd)
    assert len(model.features) == 7
    del sd["features.5.bias"]
    with pytest.raises(WeightMismatchError, match=r"missing: features.5.bias"):
        load_pretrained(VGG19Features(last="relu2_1"), sd)


def test_without_weights_warns_and_gives_random_features_of_the_right_shapes():
    with pytest.warns(UserWarning, match="random-weight VGG19 features"):
        model = vgg19_features(None, last="relu5_1")
    out = model(torch.rand(1, 3, 32, 48), ["relu1_1", "relu4_2", "relu5_1"])
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "relu1_1": (1, 64, 32, 48), "relu4_2": (1, 512, 4, 6), "relu5_1": (1, 512, 2, 3)}
    with pytest.raises(ValueError, match=r"unknown VGG19 layer\(s\) \['relu5_2'\]"):
        model(torch.rand(1, 3, 32, 32), ["relu5_2"])
