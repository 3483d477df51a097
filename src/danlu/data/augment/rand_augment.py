"""RandAugment (Cubuk et al., 2020) built from timm's config strings, e.g. 'rand-m9-mstd0.5-inc1' (DeiT):
timm's op sets, level functions (magnitude -> op argument) and PIL calls, so a recipe means what it
means in timm. Every random draw (op choice, magnitude noise, sign, interpolation) comes from Python's
`random`, which the data set seeds per sample for exact resume; for a given seed each op draws in
timm's order and gives timm's pixels."""
import math
import random
import re

from PIL import Image, ImageEnhance, ImageOps

_LEVEL_DENOM = 10.0  # magnitude M is the fraction M / 10 of each op's range
_FILL = (128, 128, 128)
_BILINEAR, _BICUBIC = Image.Resampling.BILINEAR, Image.Resampling.BICUBIC
_INTERPOLATIONS = {"bilinear": _BILINEAR, "bicubic": _BICUBIC, "random": (_BILINEAR, _BICUBIC)}

RAND_TRANSFORMS = [
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
    "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
]
# 'inc1': the same ops with levels whose severity grows with the magnitude
RAND_INCREASING_TRANSFORMS = [
    "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
    "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing",
    "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
]


def _randomly_negate(v):
    return -v if random.random() > 0.5 else v


# Level functions, with timm's arithmetic in timm's order so the arguments are bit-identical.
def _rotate_level(level, _hparams):
    return _randomly_negate(level / _LEVEL_DENOM * 30.0)  # [-30, 30] degrees


def _enhance_level(level, _hparams):
    return level / _LEVEL_DENOM * 1.8 + 0.1  # [0.1, 1.9]: M 0 is a strong op, not the identity


def _enhance_increasing_level(level, _hparams):
    return max(0.1, 1.0 + _randomly_negate(level / _LEVEL_DENOM * 0.9))  # 1.0 (identity) +- [0, 0.9]


def _shear_level(level, _hparams):
    return _randomly_negate(level / _LEVEL_DENOM * 0.3)


def _translate_rel_level(level, hparams):
    return _randomly_negate(level / _LEVEL_DENOM * hparams.get("translate_pct", 0.45))  # fraction of the size


def _posterize_level(level, _hparams):
    return int(level / _LEVEL_DENOM * 4)  # bits kept: fewer (more severe) at low M


def _posterize_increasing_level(level, hparams):
    return 4 - _posterize_level(level, hparams)


def _solarize_level(level, _hparams):
    return min(256, int(level / _LEVEL_DENOM * 256))  # threshold: more pixels inverted at low M


def _solarize_increasing_level(level, hparams):
    return 256 - _solarize_level(level, hparams)


def _solarize_add_level(level, _hparams):
    return min(128, int(level / _LEVEL_DENOM * 110))


def _fill_for(img, fill):
    # PIL refuses a multi-value fill for a one-band image with an unhelpful TypeError (as it does in timm)
    if len(img.getbands()) == 1 and isinstance(fill, tuple) and len(fill) != 1:
        raise ValueError(f"hparams img_mean {fill} has {len(fill)} values but the image is mode {img.mode!r}; "
                         "convert the image to RGB or pass a single img_mean value")
    return fill


def _rotate(img, degrees, fill, resample):
    return img.rotate(degrees, resample=resample, fillcolor=_fill_for(img, fill))


def _affine(img, matrix, fill, resample):
    return img.transform(img.size, Image.Transform.AFFINE, matrix, resample=resample, fillcolor=_fill_for(img, fill))


def _shear_x(img, factor, fill, resample):
    return _affine(img, (1, factor, 0, 0, 1, 0), fill, resample)


def _shear_y(img, factor, fill, resample):
    return _affine(img, (1, 0, 0, factor, 1, 0), fill, resample)


def _translate_x_rel(img, pct, fill, resample):
    return _affine(img, (1, 0, pct * img.size[0], 0, 1, 0), fill, resample)


def _translate_y_rel(img, pct, fill, resample):
    return _affine(img, (1, 0, 0, 0, 1, pct * img.size[1]), fill, resample)


def _posterize(img, bits):
    if bits >= 8:  # reachable with mmax > 10
        return img
    if bits < 1:  # keeps no bits: black, as Pillow gave timm before it began to reject bits < 1
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits)


def _solarize_add(img, add, thresh=128):
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    if img.mode == "L":
        return img.point(lut)
    if img.mode == "RGB":
        return img.point(lut * 3)
    return img  # timm leaves other modes unchanged


def _enhance(enhancer):
    return lambda img, factor: enhancer(img).enhance(factor)


# name -> (PIL op, level function giving its argument, or None for ops without one)
_OPS = {
    "AutoContrast": (ImageOps.autocontrast, None),
    "Equalize": (ImageOps.equalize, None),
    "Invert": (ImageOps.invert, None),
    "Rotate": (_rotate, _rotate_level),
    "Posterize": (_posterize, _posterize_level),
    "PosterizeIncreasing": (_posterize, _posterize_increasing_level),
    "Solarize": (ImageOps.solarize, _solarize_level),
    "SolarizeIncreasing": (ImageOps.solarize, _solarize_increasing_level),
    "SolarizeAdd": (_solarize_add, _solarize_add_level),
    "Color": (_enhance(ImageEnhance.Color), _enhance_level),
    "ColorIncreasing": (_enhance(ImageEnhance.Color), _enhance_increasing_level),
    "Contrast": (_enhance(ImageEnhance.Contrast), _enhance_level),
    "ContrastIncreasing": (_enhance(ImageEnhance.Contrast), _enhance_increasing_level),
    "Brightness": (_enhance(ImageEnhance.Brightness), _enhance_level),
    "BrightnessIncreasing": (_enhance(ImageEnhance.Brightness), _enhance_increasing_level),
    "Sharpness": (_enhance(ImageEnhance.Sharpness), _enhance_level),
    "SharpnessIncreasing": (_enhance(ImageEnhance.Sharpness), _enhance_increasing_level),
    "ShearX": (_shear_x, _shear_level),
    "ShearY": (_shear_y, _shear_level),
    "TranslateXRel": (_translate_x_rel, _translate_rel_level),
    "TranslateYRel": (_translate_y_rel, _translate_rel_level),
}
_GEOMETRIC = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}  # these also take fill, resample


def _resample(interpolation):
    """hparams 'interpolation' as a PIL filter or a tuple to draw from: a name, a PIL filter or a sequence."""
    if isinstance(interpolation, str):
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"unknown RandAugment interpolation {interpolation!r}; "
                             f"valid: {', '.join(_INTERPOLATIONS)} or a PIL resampling filter")
        return _INTERPOLATIONS[interpolation]
    return tuple(interpolation) if isinstance(interpolation, (list, tuple)) else interpolation


class AugmentOp:
    """One RandAugment op: applied with probability `prob`, at `magnitude` (0-10) plus the noise of
    hparams 'magnitude_std' (inf: uniform in [0, magnitude]), clipped to [0, 'magnitude_max' or 10].
    hparams also sets 'img_mean' (fill of geometric ops), 'interpolation' and 'translate_pct'."""

    def __init__(self, name: str, prob: float = 0.5, magnitude: float = 10, hparams: dict | None = None):
        if name not in _OPS:
            raise ValueError(f"unknown RandAugment op {name!r}; valid ops: {', '.join(_OPS)}")
        hparams = dict(hparams or {})
        self.name, self.prob, self.magnitude, self.hparams = name, prob, magnitude, hparams
        self.op, self.level_fn = _OPS[name]
        fill = hparams.get("img_mean", _FILL)
        self.fill = fill if isinstance(fill, (int, float)) else tuple(fill)
        self.resample = _resample(hparams.get("interpolation", "random"))
        self.magnitude_std = hparams.get("magnitude_std", 0)
        self.magnitude_max = hparams.get("magnitude_max")

    def __call__(self, img: Image.Image) -> Image.Image:
        if self.prob < 1.0 and random.random() > self.prob:
            return img
        magnitude = self.magnitude
        if self.magnitude_std == math.inf:
            magnitude = random.uniform(0, magnitude)
        elif self.magnitude_std > 0:
            magnitude = random.gauss(magnitude, self.magnitude_std)
        magnitude = max(0.0, min(magnitude, self.magnitude_max or _LEVEL_DENOM))  # mmax0 means 10, as in timm
        if self.level_fn is None:
            return self.op(img)
        arg = self.level_fn(magnitude, self.hparams)
        if self.name not in _GEOMETRIC:
            return self.op(img, arg)
        resample = random.choice(self.resample) if isinstance(self.resample, tuple) else self.resample
        return self.op(img, arg, self.fill, resample)

    def __repr__(self):
        return (f"AugmentOp(name={self.name}, p={self.prob}, m={self.magnitude}, mstd={self.magnitude_std}"
                + ("" if self.magnitude_max is None else f", mmax={self.magnitude_max}") + ")")


class RandAugment:
    """Applies `num_layers` ops drawn uniformly, with replacement, from `ops` (each keeps its own prob)."""

    def __init__(self, ops: list[AugmentOp], num_layers: int = 2):
        self.ops, self.num_layers = ops, num_layers

    def __call__(self, img: Image.Image) -> Image.Image:
        for op in random.choices(self.ops, k=self.num_layers):
            img = op(img)
        return img

    def __repr__(self):
        return f"RandAugment(n={self.num_layers}, ops=[{', '.join(map(repr, self.ops))}])"


_PARSE = {"m": int, "n": int, "mstd": float, "mmax": int, "inc": int, "p": float}
# keys that share a first letter come first, so 'mstd0.5' is mstd (not m) and 'mstdinf' is mstd inf
_SECTION = re.compile(r"(mstd|mmax|inc|[^\d.]*)(.*)")


def rand_augment_transform(config_str: str, hparams: dict | None = None) -> RandAugment:
    """RandAugment from a timm config string 'rand-<key><value>-...': m magnitude (10), n ops per image (2),
    mstd magnitude noise std (> 100 or inf: uniform), mmax magnitude clip (10), inc1 the increasing op set,
    p per-op probability (0.5). hparams as for AugmentOp; its magnitude_std / magnitude_max win over the string."""
    name, *sections = config_str.split("-")
    if name != "rand":
        raise ValueError(f"RandAugment config {config_str!r} must start with 'rand', e.g. 'rand-m9-mstd0.5-inc1'")
    values = {}
    for section in sections:
        key, value = _SECTION.fullmatch(section).groups()
        if key == "w":
            raise ValueError(f"RandAugment key 'w' (op weights) in {config_str!r} is not supported (timm dropped it "
                             "too); remove it to draw ops uniformly")
        if key not in _PARSE:
            raise ValueError(f"unknown RandAugment key {key!r} in {config_str!r}; valid keys: {', '.join(_PARSE)}")
        try:
            values[key] = _PARSE[key](value)
        except ValueError:
            raise ValueError(f"RandAugment key {key!r} in {config_str!r} needs a number, got {value!r}") from None
    hparams = dict(hparams or {})
    if "mstd" in values:
        hparams.setdefault("magnitude_std", math.inf if values["mstd"] > 100 else values["mstd"])
    if "mmax" in values:
        hparams.setdefault("magnitude_max", values["mmax"])
    transforms = RAND_INCREASING_TRANSFORMS if values.get("inc", 0) else RAND_TRANSFORMS
    ops = [AugmentOp(op, values.get("p", 0.5), values.get("m", _LEVEL_DENOM), hparams) for op in transforms]
    return RandAugment(ops, values.get("n", 2))
