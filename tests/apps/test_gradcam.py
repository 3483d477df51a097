import torch
from PIL import Image
from torch import nn

from danlu.apps.gradcam import grad_cam, save_overlay


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
