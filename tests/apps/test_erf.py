import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import danlu
from danlu.apps.erf import area_ratios, contribution_scores, erf, last_feature_map, normalise
from danlu.models.layers.parc import ParC


class Features(nn.Module):
    """A model whose forward_features is the given module (what the ERF reads)."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward_features(self, x):
        return self.body(x)


def ones_conv3x3(depth):
    convs = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(depth)]
    for c in convs:
        nn.init.ones_(c.weight)
    return Features(nn.Sequential(*convs))


def test_single_3x3_conv_has_3x3_support(tmp_path):
    x = torch.rand(3, 1, 9, 9)  # positive inputs keep the centre output positive (relu passes it)
    scores = contribution_scores(ones_conv3x3(1), x)
    expected = np.zeros((9, 9))
    expected[3:6, 3:6] = 1.0  # d centre / d input = the kernel, placed around the centre
    np.testing.assert_array_equal(scores, expected)
    data, ratios = erf(ones_conv3x3(1), x, out=tmp_path / "erf.png")
    np.testing.assert_allclose(data, expected)  # log10(1 + 1) / log10(2)
    assert ratios == pytest.approx({0.2: 9 / 81, 0.3: 9 / 81, 0.5: 9 / 81, 0.99: 9 / 81})
    assert Image.open(tmp_path / "erf.png").format == "PNG"


def test_two_3x3_convs_triangle_profile_and_area_ratios():
    scores = contribution_scores(ones_conv3x3(2), torch.rand(2, 1, 11, 11))
    tri = np.array([1, 2, 3, 2, 1.0])  # number of paths through two 3x3 windows
    expected = np.zeros((11, 11))
    expected[3:8, 3:8] = np.outer(tri, tri)
    np.testing.assert_array_equal(scores, expected)
    # By hand: log10(v + 1) of the 5x5 block sums to 14.6056, its central 3x3 to 7.1763 (49.1%),
    # so thresholds 0.2 and 0.3 are met by the 3x3 square and 0.5 and 0.99 by the 5x5 one.
    data = normalise(scores)
    assert data.sum() == pytest.approx(14.6056, abs=1e-4)
    assert area_ratios(data) == pytest.approx({0.2: 9 / 121, 0.3: 9 / 121, 0.5: 25 / 121, 0.99: 25 / 121})


def test_parc_erf_spans_the_whole_row():
    parc = ParC(1, "H", 9, bias=False, use_pe=False)
    with torch.no_grad():
        parc.weight.copy_(torch.arange(1.0, 10.0).view(1, 1, 1, 9))
    scores = contribution_scores(Features(parc), torch.rand(2, 1, 9, 9))
    expected = np.zeros((9, 9))
    # y[4, 4] = sum_s k[s] x[4, (4 + s) % 9]: input column j gets kernel tap (j - 4) % 9
    expected[4] = [(j - 4) % 9 + 1 for j in range(9)]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_needs_a_feature_map():
    # (B, C * H * W): no layer keeps the layout ((B, C, H * W) would read as one token per channel row)
    with pytest.raises(ValueError, match=r"returns shape \(1, 16\) and none of its layers keeps the image's \(B, C, H, W\) layout"):
        contribution_scores(Features(nn.Flatten(1)), torch.rand(1, 1, 4, 4))


def test_all_zero_scores_are_an_error():
    with pytest.raises(ValueError, match="every contribution score is zero"):
        normalise(np.zeros((5, 5)))


def test_last_feature_map_of_models_that_flatten_or_return_tokens():
    cnn = danlu.create_model("simple_cnn", in_chans=1, img_size=28).eval()
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(last_feature_map(cnn, x), cnn.features(x))  # the conv stack, before the flatten
    vit = danlu.create_model("deit_tiny_patch16_224", img_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    tokens = vit.forward_features(x)  # (2, 1 + 2 * 2, 192): the class token, then the patches row by row
    torch.testing.assert_close(last_feature_map(vit, x), tokens[:, 1:].transpose(1, 2).reshape(2, 192, 2, 2))
    with pytest.raises(ValueError, match="none of its layers keeps the image's"):
        last_feature_map(danlu.create_model("mlp"), torch.randn(1, 1, 28, 28))
