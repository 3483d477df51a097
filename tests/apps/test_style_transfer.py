import warnings

import pytest
import torch

from danlu.apps.style_transfer import (
    STYLE_LAYERS,
    StyleLoss,
    gram_matrix,
    load_image,
    save_image,
    stylize,
    stylize_files,
)
from danlu.models.vgg import VGG19Features


def test_gram_matrix_matches_a_loop_over_channel_pairs():
    f = torch.randn(2, 3, 4, 5)
    g = gram_matrix(f)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                expected = (f[b, i] * f[b, j]).sum() / (3 * 4 * 5)
                torch.testing.assert_close(g[b, i, j], expected)


def test_seed_layer_weights():
    assert STYLE_LAYERS == {"conv1_1": 1.0, "conv2_1": 0.8, "conv3_1": 0.25, "conv4_1": 0.21, "conv5_1": 0.18}


def test_losses_vanish_when_target_equals_content_and_style():
    vgg = VGG19Features(last="relu5_1").eval().requires_grad_(False)
    img = torch.rand(1, 3, 32, 32)
    content, style = StyleLoss(vgg, img, img)(img)
    assert content.item() == 0.0 and style.item() == 0.0


def test_load_image_resizes_longer_side_and_reports_non_images(tmp_path):
    from PIL import Image
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "red.png")
    img = load_image(tmp_path / "red.png", 16)
    assert img.shape == (1, 3, 8, 16)
    torch.testing.assert_close(img[0, :, 3, 5], torch.tensor([1.0, 0.0, 0.0]))
    assert load_image(tmp_path / "red.png", (5, 7)).shape == (1, 3, 5, 7)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="notes.png' is not an image file"):
        load_image(tmp_path / "notes.png")


def test_save_image_round_trips_pixels(tmp_path):
    img = torch.randint(0, 256, (1, 3, 6, 9)).float() / 255
    save_image(img, tmp_path / "out" / "x.png")
    torch.testing.assert_close(load_image(tmp_path / "out" / "x.png"), img)


def test_style_of_another_size_is_resized_and_files_round_trip(tmp_path):
    from PIL import Image
    Image.new("RGB", (24, 16), (200, 100, 50)).save(tmp_path / "c.png")
    Image.new("RGB", (50, 70), (10, 20, 200)).save(tmp_path / "s.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random VGG weights
        history = stylize_files(tmp_path / "c.png", tmp_path / "s.png", tmp_path / "o.png", size=24, steps=2,
                                progress=False)
    assert len(history) == 2 and history[0]["content"] == 0.0  # the image starts as the content
    assert Image.open(tmp_path / "o.png").size == (24, 16)


def test_out_naming_a_directory_is_one_sentence(tmp_path, capsys):
    from danlu.cli import main

    argv = ["stylize", "--content", "c.png", "--style", "s.png", "--out", str(tmp_path), "--steps", "1"]
    assert main(argv) == 2  # refused before the images are even read
    assert capsys.readouterr().err == (f"danlu: error: --out '{tmp_path}' is a directory; give the PNG file to write, "
                                       f"e.g. '{tmp_path / 'stylized.png'}'\n")


@pytest.mark.slow
def test_fifty_steps_halve_the_total_loss_on_real_images(data_dir):
    """~50 s on a busy 2-core machine: VGG19 forward and backward per step."""
    content = load_image(data_dir / "images" / "chelsea.png", (64, 64))
    style = load_image(data_dir / "images" / "hubble_deep_field.jpg", (64, 64))
    vgg = VGG19Features(last="relu5_1").eval().requires_grad_(False)
    _, history = stylize(content, style, vgg, steps=50, progress=False)
    assert history[-1]["total"] <= 0.5 * history[0]["total"]
