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


def test_overlay_png(tmp_path):
    model = TwoRegions()
    cam, _ = grad_cam(model, torch.rand(1, 1, 8, 8), class_idx=0)
    save_overlay(torch.rand(3, 8, 8), cam[0], tmp_path / "cam.png", title="class 0")
    assert Image.open(tmp_path / "cam.png").format == "PNG"
