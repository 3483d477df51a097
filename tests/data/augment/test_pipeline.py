import colorsys
import io
import random

import pytest
import torch
from PIL import Image, ImageEnhance

from danlu.data.augment import pipeline
from danlu.data.augment.color_jitter import ColorJitter
from danlu.data.augment.pipeline import (
    build_eval_transform,
    build_train_transform,
    pil_to_tensor,
)

AA = "rand-m9-mstd0.5-inc1"


@pytest.fixture(scope="module")
def jpeg(data_dir):
    """A 500x375 JPEG file (the typical ImageNet size), opened anew by each call, lazily."""
    buf = io.BytesIO()
    Image.open(data_dir / "images" / "coffee.png").convert("RGB").resize((500, 375)).save(buf, "JPEG", quality=90)
    return lambda: Image.open(io.BytesIO(buf.getvalue()))


def seeded(transform, img, seed):
    random.seed(seed)
    return transform(img)


def test_eval_resizes_short_side_then_centre_crops(jpeg):
    out = build_eval_transform(224, crop_pct=0.875)(jpeg())
    # 224 / 0.875 = 256: 500x375 -> int(256 * 500 / 375) = 341 x 256; crop top round(32 / 2) = 16,
    # left round(117 / 2) = 58 (round half to even, as torchvision's CenterCrop)
    expected = jpeg().convert("RGB").resize((341, 256), Image.Resampling.BICUBIC).crop((58, 16, 282, 240))
    assert out.dtype == torch.uint8 and out.shape == (3, 224, 224)
    assert torch.equal(out, pil_to_tensor(expected))


def test_eval_keeps_the_channels_of_a_tensor():
    x = torch.randint(0, 256, (1, 47, 30), dtype=torch.uint8)
    out = build_eval_transform(28, crop_pct=1.0, interpolation="bilinear")(x)
    # 30x47 -> 28 x int(28 * 47 / 30 = 43.87) = 28x43 (truncated); top round(15 / 2) = 8 (half to even)
    expected = Image.fromarray(x[0].numpy()).resize((28, 43), Image.Resampling.BILINEAR).crop((0, 8, 28, 36))
    assert out.shape == (1, 28, 28) and torch.equal(out, pil_to_tensor(expected))


def test_brightness_factor_is_the_pil_enhance_factor(data_dir):
    img = Image.open(data_dir / "images" / "chelsea.png").convert("RGB")
    random.seed(3)
    factor = random.uniform(0.6, 1.4)
    expected = ImageEnhance.Brightness(img).enhance(factor)
    assert seeded(ColorJitter(0.4, 0, 0), img, 3).tobytes() == expected.tobytes()


def test_hue_shift_rotates_the_hue():
    colours = [(255, 0, 0), (40, 200, 90), (10, 20, 230)]
    img = Image.new("RGB", (3, 1))
    img.putdata(colours)
    random.seed(5)
    factor = random.uniform(-0.5, 0.5)
    out = seeded(ColorJitter(0, 0, 0, hue=0.5), img, 5)
    for x, rgb in enumerate(colours):
        got = out.getpixel((x, 0))
        h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
        expected = colorsys.hsv_to_rgb((h + int(factor * 255) / 255) % 1.0, s, v)
        assert max(abs(g - 255 * e) for g, e in zip(got, expected)) <= 3  # PIL's HSV is 8-bit


def test_color_jitter_is_skipped_under_auto_augment(jpeg):
    with_jitter = seeded(build_train_transform(224, auto_augment=AA, color_jitter=0.4), jpeg(), 7)
    without = seeded(build_train_transform(224, auto_augment=AA, color_jitter=None), jpeg(), 7)
    assert torch.equal(with_jitter, without)
    # while without auto-augment the jitter changes the pixels
    jittered = seeded(build_train_transform(224, color_jitter=0.4), jpeg(), 7)
    assert not torch.equal(jittered, seeded(build_train_transform(224, color_jitter=None), jpeg(), 7))


def test_train_transform_is_deterministic_per_seed(jpeg):
    transform = build_train_transform(224, auto_augment=AA)
    out = seeded(transform, jpeg(), 11)
    assert out.dtype == torch.uint8 and out.shape == (3, 224, 224)
    assert torch.equal(out, seeded(transform, jpeg(), 11))
    assert not torch.equal(out, seeded(transform, jpeg(), 12))


def test_hflip_one_mirrors_the_crop(jpeg):
    plain = seeded(build_train_transform(64, hflip=0.0, color_jitter=None), jpeg(), 2)
    flipped = seeded(build_train_transform(64, hflip=1.0, color_jitter=None), jpeg(), 2)
    assert torch.equal(flipped, plain.flip(-1))


def test_grey_inputs():
    grey_tensor = torch.randint(0, 256, (1, 50, 40), dtype=torch.uint8)
    assert build_train_transform(32, auto_augment=AA)(grey_tensor).shape == (1, 32, 32)
    grey_png = Image.fromarray(grey_tensor[0].numpy())
    out = build_train_transform(32)(grey_png)
    assert out.shape == (3, 32, 32) and torch.equal(out[0], out[2])  # a PIL image becomes RGB


def test_rand_augment_hparams_as_timm(monkeypatch):
    seen = []
    monkeypatch.setattr(pipeline, "rand_augment_transform", lambda config, hparams: seen.append(hparams) or (lambda x: x))
    build_train_transform(224, auto_augment=AA, interpolation="bicubic")
    build_train_transform(224, auto_augment=AA)
    # int(224 * 0.45) = 100; round(255 * (0.485, 0.456, 0.406)) = (124, 116, 104)
    assert seen[0] == {"translate_const": 100, "img_mean": (124, 116, 104), "interpolation": Image.Resampling.BICUBIC}
    assert seen[1] == {"translate_const": 100, "img_mean": (124, 116, 104)}  # 'random': RandAugment draws per op


def test_bad_arguments():
    with pytest.raises(ValueError, match="auto_augment"):
        build_train_transform(224, auto_augment="v0")
    with pytest.raises(ValueError, match="random"):
        build_eval_transform(224, interpolation="random")
    with pytest.raises(ValueError, match="uint8"):
        build_eval_transform(224)(torch.zeros(3, 8, 8))
