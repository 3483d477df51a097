import pytest
import torch
from PIL import Image
from torch import nn

import danlu
from danlu.apps.gradcam import grad_cam, save_overlay, spatial_outputs, token_grid


class TwoRegions(nn.Module):
    """Channel 0 sees the top-left quadrant, channel 1 the bottom-right; class c scores channel c minus the other."""

    def __init__(self, size=8):
        super().__init__()
        masks = torch.zeros(2, size, size)
        masks[0, : size // 2, : size // 2] = 1
        masks[1, size // 2:, size // 2:] = 1
        self.register_buffer("masks", masks)
        self.features = nn.Identity()

    def forward_features(self, x):
        return self.features(x * self.masks)

    def forward_head(self, a, pre_logits=False):
        m = a.mean((2, 3))
        return torch.stack([m[:, 0] - m[:, 1], m[:, 1] - m[:, 0]], dim=1)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def test_gradcam_highlights_the_region_of_the_class():
    model = TwoRegions()
    x = torch.rand(2, 1, 8, 8) + 0.5
    for c in (0, 1):
        # weights: +1/64 for channel c, -1/64 for the other; relu keeps exactly channel c's region
        cam, idx = grad_cam(model, x, class_idx=c)
        assert idx.tolist() == [c, c]
        assert torch.equal(cam > 0, model.masks[c].bool().expand(2, 8, 8))
        assert cam.max() == 1 and cam.min() == 0


def test_gradcam_default_class_and_named_target_layer():
    model = TwoRegions()
    x = torch.ones(1, 1, 8, 8)
    x[..., 4:, 4:] = 3  # class 1 wins
    cam, idx = grad_cam(model, x)
    assert idx.item() == 1
    expected = (x[0, 0] * model.masks[1]) / 3  # relu(w * A), scaled to [0, 1]
    torch.testing.assert_close(cam[0], expected)
    cam_hook, _ = grad_cam(model, x, target_layer="features")
    torch.testing.assert_close(cam_hook, cam)


class ColourDetector(nn.Module):
    """A strided conv whose channel c sums colour c (red, blue) around each position; class c scores its mean."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 2, 3, stride=2, padding=1, bias=False), nn.ReLU())
        with torch.no_grad():
            self.features[0].weight.zero_()[0, 0] = 1
            self.features[0].weight[1, 2] = 1

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, a, pre_logits=False):
        return a.mean((2, 3))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def _planted(gen, size=32, patch=6):
    """A dim noise image with a red and a blue patch at random places apart; returns it and each patch's corner."""
    while True:
        corners = torch.randint(0, size - patch + 1, (2, 2), generator=gen)
        if (corners[0] - corners[1]).abs().max() >= patch:
            break
    image = 0.2 * torch.rand(3, size, size, generator=gen)
    for channel, (top, left) in zip((0, 2), corners.tolist()):
        image[:, top:top + patch, left:left + patch] = 0
        image[channel, top:top + patch, left:left + patch] = 1.0
    return image, corners


def test_gradcam_peaks_inside_the_planted_region_of_the_asked_class():
    gen = torch.Generator().manual_seed(0)
    images, corners = zip(*(_planted(gen) for _ in range(6)))
    x = torch.stack(images)
    asked = [i % 2 for i in range(len(x))]
    for i, c in enumerate(asked):
        top, left = corners[i][1 - c].tolist()
        x[i, :, top:top + 6, left:left + 6] *= 2  # the other class's patch is the brighter: it wins by default
    model = ColourDetector()
    assert model(x).argmax(1).tolist() == [1 - c for c in asked]
    cam, idx = grad_cam(model, x, class_idx=asked, target_layer="features.1")
    assert idx.tolist() == asked
    for m, c, corner in zip(cam, asked, corners):
        peak = divmod(int(m.argmax()), m.shape[1])
        (top, left), (other_top, other_left) = corner[c].tolist(), corner[1 - c].tolist()
        assert top <= peak[0] < top + 6 and left <= peak[1] < left + 6
        assert m[other_top:other_top + 6, other_left:other_left + 6].max() < 0.2  # background level at the other colour


def test_overlay_png(tmp_path):
    model = TwoRegions()
    cam, _ = grad_cam(model, torch.rand(1, 1, 8, 8), class_idx=0)
    save_overlay(torch.rand(3, 8, 8), cam[0], tmp_path / "cam.png", title="class 0")
    assert Image.open(tmp_path / "cam.png").format == "PNG"


# --- the default target layer, tokens on their grid, and bad requests ---


def test_token_grid_drops_the_class_tokens_and_keeps_the_aspect():
    assert token_grid(5, (32, 32)) == (1, (2, 2))      # ViT at 32 with patch 16: class token + 2x2
    assert token_grid(7, (32, 48)) == (1, (2, 3))      # not 1x7 nor 7x1: the strides must agree
    assert token_grid(6, (40, 50)) == (0, (2, 3))      # padded last patches: strides 20 and 16.7
    assert token_grid(1, (32, 32)) == (0, (1, 1))
    assert token_grid(5, (32, 32), max_prefix=0) is None


def _hand_cam(acts, grads):
    """Grad-CAM written out for one (C, h, w) activation and gradient, at map resolution."""
    return torch.relu((grads.mean((1, 2))[:, None, None] * acts).sum(0))


def test_vit_default_is_the_last_block_its_class_token_reads():
    torch.manual_seed(0)
    model = danlu.create_model("deit_tiny_patch16_224", img_size=32, num_classes=4).eval()
    x = torch.randn(1, 3, 32, 32)
    cam, idx, layer = grad_cam(model, x, return_layer=True)
    # the oracle: the final norm and the last block's patch tokens have no gradient (the head reads the
    # class token only, and token-wise layers do not mix tokens), the block before has
    features, outputs = spatial_outputs(model, x.requires_grad_(True))
    logits = model.forward_head(features)
    grads = dict(zip(outputs, torch.autograd.grad(logits[0, idx[0]], list(outputs.values()))))
    assert not grads["norm"][:, 1:].any() and not grads["blocks.11"][:, 1:].any() and grads["blocks.10"][:, 1:].any()
    assert layer == "blocks.10"
    acts = outputs["blocks.10"][0, 1:].detach().T.reshape(-1, 2, 2)  # patch tokens on the 2x2 grid
    expected = _hand_cam(acts, grads["blocks.10"][0, 1:].T.reshape(-1, 2, 2))
    expected = torch.nn.functional.interpolate(expected[None, None], size=(32, 32), mode="bilinear")[0, 0]
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    torch.testing.assert_close(cam[0], expected)


def test_simple_cnn_grey_default_is_its_last_pooling():
    model = danlu.create_model("simple_cnn", in_chans=1, img_size=28, num_classes=10).eval()
    x = torch.randn(2, 1, 28, 28)
    cam, idx, layer = grad_cam(model, x, return_layer=True)
    assert layer == "features.8" and cam.shape == (2, 28, 28)
    # the whole conv stack's output is the same map: naming it gives the same Grad-CAM
    torch.testing.assert_close(grad_cam(model, x, target_layer="features")[0], cam)
    assert cam.amax((1, 2)).tolist() == [1.0, 1.0]


def test_a_model_without_a_map_is_refused_with_a_sentence():
    model = danlu.create_model("mlp")
    with pytest.raises(ValueError, match="MLP has no layer that keeps the image's layout"):
        grad_cam(model, torch.randn(1, 1, 28, 28))


def test_bad_class_index_and_layer_name_the_valid_ones():
    model = danlu.create_model("simple_cnn", num_classes=10)
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"class index 10 is out of range: the model scores 10 classes, give 0 to 9"):
        grad_cam(model, x, class_idx=10)
    with pytest.raises(ValueError, match=r"class index -1 is out of range"):
        grad_cam(model, x, class_idx=-1)
    with pytest.raises(ValueError) as err:
        grad_cam(model, x, target_layer="fetures.8")
    valid = str(err.value).split("valid target layers are ")[1].split(" (")[0].split(", ")
    assert valid == [f"features.{i}" for i in range(9)]  # the spatial ones; fc1 and the head are not


# every registered image model has a default target that carries evidence, at a small input; one model
# per family runs by default, the rest are slow (the big ones take seconds each to build on 2 cores)
FAST = {"simple_cnn", "deit_tiny_patch16_224", "tnt_s_patch16_224", "ptnt_ti_patch16_192", "mobilenetv2", "parcnet_xs"}
IMAGE_MODELS = [n for n in danlu.list_models() if danlu.get_model_config(n).input_kind == "image" and n != "mlp"]


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in IMAGE_MODELS])
def test_every_image_model_has_a_working_default_layer(name):
    model = danlu.create_model(name, img_size=64, num_classes=3).eval()
    x = torch.randn(1, model.default_cfg.input_size[0], 64, 64)
    cam, idx, layer = grad_cam(model, x, return_layer=True)
    assert cam.shape == (1, 64, 64) and 0 <= idx.item() < 3
    # the oracle: naming the chosen layer gives the same map (the forward_features output is the default's first choice)
    if layer != "forward_features":
        torch.testing.assert_close(grad_cam(model, x, target_layer=layer)[0], cam)
    assert cam.max() in (0, 1) and cam.min() == 0  # scaled to [0, 1], or zero where relu leaves no evidence
