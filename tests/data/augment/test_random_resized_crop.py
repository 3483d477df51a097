import io
import math
import random

import numpy as np
import pytest
from PIL import Image

from danlu.data.augment.random_resized_crop import RandomResizedCrop

SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


def psnr(a, b):
    mse = ((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2).mean()
    return 10 * math.log10(255 ** 2 / mse)


def test_get_params_matches_timm():
    # recorded from timm 1.0.31 RandomResizedCropAndInterpolation.get_params on a 400x300 image
    random.seed(0)
    assert RandomResizedCrop.get_params((400, 300), SCALE, RATIO) == (1, 2, 298, 345)
    random.seed(1)
    draws = [RandomResizedCrop.get_params((400, 300), SCALE, RATIO) for _ in range(3)]
    assert draws == [(16, 65, 141, 173), (120, 166, 140, 162), (31, 7, 247, 209)]


def test_get_params_area_and_ratio_in_range():
    random.seed(0)
    draws = np.array([RandomResizedCrop.get_params((400, 300), SCALE, RATIO) for _ in range(10_000)], dtype=float)
    top, left, h, w = draws.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 300).all() and (left + w <= 400).all()
    # w and h are rounded from sqrt(area * r) and sqrt(area / r): the drawn area and ratio lie within that slack
    area = 400 * 300
    assert ((w + 0.5) * (h + 0.5) >= SCALE[0] * area).all() and ((w - 0.5) * (h - 0.5) <= area).all()
    assert ((w + 0.5) / (h - 0.5) >= RATIO[0]).all() and ((w - 0.5) / (h + 0.5) <= RATIO[1]).all()
    # and the draws span the ranges
    assert (w / h).min() < 0.76 and (w / h).max() > 1.31 and ((w * h) / area).min() < 0.09


@pytest.mark.parametrize("scale, ratio, expected", [
    ((0.5, 1.0), (10.0, 10.0), (130, 0, 40, 400)),  # wider than any fit: full width, h = 400 / 10
    ((0.5, 1.0), (0.1, 0.1), (0, 185, 300, 30)),  # taller: full height, w = 300 * 0.1, centred
    ((2.0, 2.0), (0.5, 2.0), (0, 0, 300, 400)),  # no area fits, image ratio in range: the whole image
])
def test_get_params_fallback_is_the_central_crop(scale, ratio, expected):
    random.seed(0)
    assert RandomResizedCrop.get_params((400, 300), scale, ratio) == expected


def test_crop_resize_equals_pil_crop_then_resize(data_dir):
    img = Image.open(data_dir / "images" / "chelsea.png").convert("RGB")
    rrc = RandomResizedCrop(224, interpolation="bicubic")
    for seed in range(3):
        random.seed(seed)
        top, left, h, w = RandomResizedCrop.get_params(img.size, SCALE, RATIO)
        random.seed(seed)
        out = rrc(img)
        expected = img.crop((left, top, left + w, top + h)).resize((224, 224), Image.Resampling.BICUBIC)
        assert out.size == (224, 224) and out.mode == "RGB"
        assert psnr(out, expected) >= 40  # differs only at the edges: resize(box=) filters across them


def test_jpeg_drafted_when_the_crop_allows(data_dir):
    buf = io.BytesIO()
    Image.open(data_dir / "images" / "hubble_deep_field.jpg").convert("RGB").save(buf, "JPEG", quality=90)
    full = Image.open(buf).convert("RGB")
    rrc = RandomResizedCrop(112, scale=(0.5, 1.0), interpolation="bicubic")
    for seed in range(3):
        img = Image.open(buf)  # lazily opened, as the data sets pass it
        random.seed(seed)
        top, left, h, w = RandomResizedCrop.get_params(img.size, rrc.scale, rrc.ratio)
        random.seed(seed)
        out = rrc(img)
        reduction = 4 if min(w, h) >= 4 * 112 else 2  # crops of 0.5..1 of 1000x872 at 112
        assert img.size == (math.ceil(1000 / reduction), math.ceil(872 / reduction))  # decoded at reduced scale
        expected = full.crop((left, top, left + w, top + h)).resize((112, 112), Image.Resampling.BICUBIC)
        assert psnr(out, expected) >= 38


def test_output_size_is_h_w_and_grey_stays_grey(data_dir):
    img = Image.open(data_dir / "images" / "brick.png")
    out = RandomResizedCrop((60, 90), interpolation="random")(img)
    assert out.size == (90, 60) and out.mode == "L"


def test_bad_arguments():
    with pytest.raises(ValueError, match="interpolation"):
        RandomResizedCrop(224, interpolation="lanczos3")
    with pytest.raises(ValueError, match="scale"):
        RandomResizedCrop(224, scale=(1.0, 0.08))
