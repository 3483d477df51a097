import math
import random
import statistics

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from danlu.data.augment.rand_augment import (
    RAND_INCREASING_TRANSFORMS,
    RAND_TRANSFORMS,
    AugmentOp,
    RandAugment,
    rand_augment_transform,
)

MEAN = (124, 116, 104)
BILINEAR = Image.Resampling.BILINEAR
HPARAMS = {"img_mean": MEAN, "interpolation": BILINEAR}
SIGNED = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel", "ColorIncreasing", "ContrastIncreasing",
          "BrightnessIncreasing", "SharpnessIncreasing"}


@pytest.fixture(scope="module")
def img(data_dir):
    with Image.open(data_dir / "images" / "astronaut.png") as im:
        return im.convert("RGB").resize((128, 96), Image.Resampling.BICUBIC)  # not square: catches w/h swaps


def psnr(a, b):
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def solarize_add(img, add):
    x = np.asarray(img).astype(np.int32)
    return Image.fromarray(np.where(x < 128, np.minimum(x + add, 255), x).astype(np.uint8))


def posterize(img, bits):
    """Keeps the `bits` high bits; 0 bits is black (what timm got from Pillow before Pillow rejected 0)."""
    return Image.fromarray(np.asarray(img) & np.uint8((0xFF << (8 - bits)) & 0xFF if bits > 0 else 0))


def affine(img, matrix):
    return img.transform(img.size, Image.Transform.AFFINE, matrix, resample=BILINEAR, fillcolor=MEAN)


def expected(name, img, m, sign):
    """timm's op at magnitude m written out: its level function (range * m / 10) and its PIL call."""
    f = m / 10
    w, h = img.size
    enhance_inc = max(0.1, 1 + sign * 0.9 * f)
    return {
        "AutoContrast": lambda: ImageOps.autocontrast(img),
        "Equalize": lambda: ImageOps.equalize(img),
        "Invert": lambda: ImageOps.invert(img),
        "Rotate": lambda: img.rotate(sign * 30 * f, resample=BILINEAR, fillcolor=MEAN),
        "Posterize": lambda: posterize(img, int(4 * f)),
        "PosterizeIncreasing": lambda: posterize(img, 4 - int(4 * f)),
        "Solarize": lambda: ImageOps.solarize(img, min(256, int(256 * f))),
        "SolarizeIncreasing": lambda: ImageOps.solarize(img, 256 - min(256, int(256 * f))),
        "SolarizeAdd": lambda: solarize_add(img, min(128, int(110 * f))),
        "Color": lambda: ImageEnhance.Color(img).enhance(0.1 + 1.8 * f),
        "Contrast": lambda: ImageEnhance.Contrast(img).enhance(0.1 + 1.8 * f),
        "Brightness": lambda: ImageEnhance.Brightness(img).enhance(0.1 + 1.8 * f),
        "Sharpness": lambda: ImageEnhance.Sharpness(img).enhance(0.1 + 1.8 * f),
        "ColorIncreasing": lambda: ImageEnhance.Color(img).enhance(enhance_inc),
        "ContrastIncreasing": lambda: ImageEnhance.Contrast(img).enhance(enhance_inc),
        "BrightnessIncreasing": lambda: ImageEnhance.Brightness(img).enhance(enhance_inc),
        "SharpnessIncreasing": lambda: ImageEnhance.Sharpness(img).enhance(enhance_inc),
        "ShearX": lambda: affine(img, (1, sign * 0.3 * f, 0, 0, 1, 0)),
        "ShearY": lambda: affine(img, (1, 0, 0, sign * 0.3 * f, 1, 0)),
        "TranslateXRel": lambda: affine(img, (1, 0, sign * 0.45 * f * w, 0, 1, 0)),
        "TranslateYRel": lambda: affine(img, (1, 0, 0, 0, 1, sign * 0.45 * f * h)),
    }[name]()


@pytest.mark.parametrize("name", sorted(set(RAND_TRANSFORMS) | set(RAND_INCREASING_TRANSFORMS)))
def test_op_matches_timm_pil_call(img, name):
    for m in (0, 5, 9, 10):
        op = AugmentOp(name, prob=1.0, magnitude=m, hparams=HPARAMS)
        # seed 0 draws 0.84 (> 0.5: timm negates), seed 1 draws 0.13; the sign is an op's only draw here
        for seed in (0, 1) if name in SIGNED else (0,):
            random.seed(seed)
            sign = -1 if random.random() > 0.5 else 1
            random.seed(seed)
            out = op(img)
            assert psnr(out, expected(name, img, m, sign)) >= 35, (name, m, sign)


def test_op_sets_are_timms():
    assert RAND_TRANSFORMS == [
        "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast",
        "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"]
    assert RAND_INCREASING_TRANSFORMS == [
        "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd",
        "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY",
        "TranslateXRel", "TranslateYRel"]


def test_random_interpolation_draws_bilinear_or_bicubic(img):
    op = AugmentOp("Rotate", prob=1.0, magnitude=9, hparams={"img_mean": MEAN})
    seen = set()
    for seed in range(8):
        random.seed(seed)
        angle = -27 if random.random() > 0.5 else 27
        resample = random.choice([BILINEAR, Image.Resampling.BICUBIC])  # timm draws it after the sign
        random.seed(seed)
        assert op(img).tobytes() == img.rotate(angle, resample=resample, fillcolor=MEAN).tobytes()
        seen.add(resample)
    assert len(seen) == 2


def test_grey_images(img):
    grey = img.convert("L")
    out = AugmentOp("SolarizeAdd", prob=1.0, magnitude=9, hparams=HPARAMS)(grey)
    assert out.tobytes() == solarize_add(grey, 99).tobytes()
    with pytest.raises(ValueError, match="img_mean .* mode 'L'"):
        AugmentOp("Rotate", prob=1.0, magnitude=9, hparams=HPARAMS)(grey)
    random.seed(1)  # positive sign
    out = AugmentOp("ShearX", prob=1.0, magnitude=5, hparams={"img_mean": 7, "interpolation": BILINEAR})(grey)
    assert out.tobytes() == grey.transform(grey.size, Image.Transform.AFFINE, (1, 0.15, 0, 0, 1, 0),
                                           resample=BILINEAR, fillcolor=7).tobytes()


@pytest.mark.parametrize("config, hparams, n, m, mstd, mmax, p, ops", [
    ("rand-m9-mstd0.5-inc1", {}, 2, 9, 0.5, None, 0.5, RAND_INCREASING_TRANSFORMS),
    ("rand-n3-m7", {}, 3, 7, 0, None, 0.5, RAND_TRANSFORMS),
    ("rand", {}, 2, 10, 0, None, 0.5, RAND_TRANSFORMS),
    ("rand-m9-mstd101", {}, 2, 9, math.inf, None, 0.5, RAND_TRANSFORMS),
    ("rand-mstdinf-inc0-p0.8", {}, 2, 10, math.inf, None, 0.8, RAND_TRANSFORMS),
    ("rand-m12-mmax15-n1", {}, 1, 12, 0, 15, 0.5, RAND_TRANSFORMS),
    ("rand-m9-mstd0.5", {"magnitude_std": 1.0}, 2, 9, 1.0, None, 0.5, RAND_TRANSFORMS),  # hparams win, as in timm
])
def test_config_string(config, hparams, n, m, mstd, mmax, p, ops):
    t = rand_augment_transform(config, hparams)
    assert t.num_layers == n
    assert {(op.magnitude, op.magnitude_std, op.magnitude_max, op.prob) for op in t.ops} == {(m, mstd, mmax, p)}
    assert [op.name for op in t.ops] == ops


@pytest.mark.parametrize("config, message", [
    ("rand-m9-x3", "unknown RandAugment key 'x' in 'rand-m9-x3'; valid keys: m, n, mstd, mmax, inc, p"),
    ("rand-m9-w0", "key 'w'"),
    ("rand-m9-p0.x", "key 'p' in 'rand-m9-p0.x' needs a number, got '0.x'"),
    ("augmix-m5", "must start with 'rand'"),
])
def test_bad_config_string(config, message):
    with pytest.raises(ValueError, match=message):
        rand_augment_transform(config, HPARAMS)


def test_bad_op_or_interpolation():
    with pytest.raises(ValueError, match="unknown RandAugment op 'Cutout'; valid ops: AutoContrast, Equalize"):
        AugmentOp("Cutout")
    with pytest.raises(ValueError, match="unknown RandAugment interpolation 'nearest'"):
        AugmentOp("Rotate", hparams={"interpolation": "nearest"})


def record_magnitudes(op, n):
    seen, pixel = [], Image.new("RGB", (1, 1))
    op.level_fn = lambda m, _: seen.append(m) or 1.0  # Brightness 1.0 is the identity
    for _ in range(n):
        op(pixel)
    return seen


@pytest.mark.parametrize("hparams, magnitude, draw", [
    ({"magnitude_std": 0.5}, 9, lambda: min(10.0, random.gauss(9, 0.5))),
    ({"magnitude_std": math.inf}, 9, lambda: random.uniform(0, 9)),
    ({}, 12, lambda: 10.0),
    ({"magnitude_max": 20}, 12, lambda: 12),
])
def test_magnitude_noise_and_clip(hparams, magnitude, draw):
    op = AugmentOp("Brightness", prob=1.0, magnitude=magnitude, hparams=hparams)
    random.seed(0)
    seen = record_magnitudes(op, 200)
    random.seed(0)
    assert seen == [draw() for _ in range(200)]


def test_magnitude_std_moments():
    seen = record_magnitudes(AugmentOp("Brightness", prob=1.0, magnitude=9, hparams={"magnitude_std": 0.5}), 20000)
    # N(9, 0.5) clipped at 10 (2 sigma): mean 8.996, std 0.490, 2.28% of draws at 10
    assert abs(statistics.mean(seen) - 8.996) < 0.015
    assert abs(statistics.pstdev(seen) - 0.490) < 0.01
    assert abs(sum(m == 10 for m in seen) / len(seen) - 0.0228) < 0.005
    assert min(seen) > 6


def test_prob_skips_the_op():
    op = AugmentOp("Brightness", prob=0.3)
    random.seed(0)
    applied = len(record_magnitudes(op, 4000))
    random.seed(0)
    assert applied == sum(random.random() <= 0.3 for _ in range(4000))


def test_ops_drawn_uniformly_with_replacement():
    chosen = []
    t = RandAugment([lambda x, i=i: chosen.append(i) or x for i in range(15)], num_layers=3)
    random.seed(0)
    for _ in range(100):
        t(None)
    random.seed(0)
    assert chosen == [i for _ in range(100) for i in random.choices(range(15), k=3)]


def test_transform_is_reproducible_from_the_seed(img):
    t = rand_augment_transform("rand-m9-mstd0.5-inc1", {"img_mean": MEAN})
    outs = []
    for seed in (5, 5, 6):
        random.seed(seed)
        outs.append(t(img).tobytes())
    assert outs[0] == outs[1] != outs[2]
