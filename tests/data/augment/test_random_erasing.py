import math
import random

import pytest
import torch

from danlu.data.augment.random_erasing import RandomErasing


def _rectangles(erased):
    """(top, left, h, w) per sample of a boolean mask (N, H, W), asserting each is one solid rectangle."""
    rows, cols = erased.any(2), erased.any(1)
    h, w = rows.sum(1), cols.sum(1)
    top, left = rows.int().argmax(1), cols.int().argmax(1)
    ys, xs = torch.arange(erased.shape[1]), torch.arange(erased.shape[2])
    box = (((ys >= top[:, None]) & (ys < (top + h)[:, None]))[:, :, None]
           & ((xs >= left[:, None]) & (xs < (left + w)[:, None]))[:, None, :])
    assert torch.equal(box, erased), "the erased pixels of a sample are not one solid rectangle"
    return top, left, h, w


def _timm_erase(img_h, img_w, p=1.0, min_area=0.02, max_area=1 / 3, min_aspect=0.3, min_count=1, max_count=1):
    """(top, left, h, w) of one sample's rectangles, in the order of timm's sequential `_erase` draws."""
    if random.random() > p:
        return []
    count = min_count if min_count == max_count else random.randint(min_count, max_count)
    boxes = []
    for _ in range(count):
        for _ in range(10):
            area = random.uniform(min_area, max_area) * (img_h * img_w) / count
            aspect = math.exp(random.uniform(math.log(min_aspect), math.log(1 / min_aspect)))
            h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if w < img_w and h < img_h:
                boxes.append((random.randint(0, img_h - h), random.randint(0, img_w - w), h, w))
                break
    return boxes


@pytest.mark.parametrize("p, max_count", [(1.0, 1), (0.5, 3)])
def test_rectangles_are_exactly_timms_for_the_same_python_seed(p, max_count):
    n, img_h, img_w = 300, 20, 28
    random.seed(7)
    out = RandomErasing(p, mode="const", max_count=max_count)(torch.ones(n, 2, img_h, img_w))
    next_draw = random.random()
    random.seed(7)
    expected = torch.ones(n, 2, img_h, img_w)
    for sample in expected:  # later rectangles paint over earlier ones, as in timm's loop
        for top, left, h, w in _timm_erase(img_h, img_w, p, max_count=max_count):
            sample[:, top:top + h, left:left + w] = 0
    assert torch.equal(out, expected)
    assert random.random() == next_draw, "as many draws from Python's random as timm"


def test_const_mode_erases_one_rectangle_of_zeros_within_the_area_and_aspect_bounds():
    img_h, img_w = 24, 40
    x = torch.ones(2000, 2, img_h, img_w)
    random.seed(0)
    out = RandomErasing(1.0, mode="const")(x.clone())
    erased = out == 0
    assert torch.equal(erased[:, 0], erased[:, 1]), "all channels share the rectangle"
    assert torch.equal(out[~erased], x[~erased])
    top, left, h, w = _rectangles(erased[:, 0])
    assert (h > 0).all() and (h < img_h).all() and (w < img_w).all()
    # h = round(sqrt(area * aspect)), w = round(sqrt(area / aspect)): undo the rounding by +-0.5
    assert ((h - 0.5) * (w - 0.5) <= img_h * img_w / 3).all()
    assert ((h + 0.5) * (w + 0.5) >= 0.02 * img_h * img_w).all()
    assert ((h - 0.5) / (w + 0.5) <= 1 / 0.3).all() and ((h + 0.5) / (w - 0.5) >= 0.3).all()
    # the whole range is reached: both area bounds, both aspect bounds, both image borders
    frac = (h * w).float() / (img_h * img_w)
    assert frac.min() < 0.03 and frac.max() > 0.28
    assert (h / w).min() < 0.4 and (h / w).max() > 2.5
    assert top.min() == 0 and (top + h).max() == img_h and left.min() == 0 and (left + w).max() == img_w
    # the size distribution matches timm's draw (rejection of too-large boxes included) from another seed
    random.seed(1)
    ref = torch.tensor([_timm_erase(img_h, img_w)[0][2:] for _ in range(len(x))], dtype=torch.float)
    assert frac.mean().item() == pytest.approx((ref[:, 0] * ref[:, 1]).mean().item() / (img_h * img_w), abs=0.01)
    assert h.float().mean().item() == pytest.approx(ref[:, 0].mean().item(), abs=0.6)
    assert w.float().mean().item() == pytest.approx(ref[:, 1].mean().item(), abs=0.8)


def test_probability_zero_leaves_the_batch_unchanged():
    x = torch.randn(64, 3, 16, 16)
    assert torch.equal(RandomErasing(0.0)(x.clone()), x)


def test_about_a_quarter_of_the_samples_are_erased_at_probability_one_quarter():
    out = RandomErasing(0.25, mode="const")(torch.ones(4000, 1, 8, 8))
    erased = (out == 0).flatten(1).any(1).sum().item()
    # Binomial(4000, 0.25): mean 1000, sd 27.4; 5 sd
    assert abs(erased - 1000) < 137


def test_rand_mode_fills_one_colour_per_channel_and_pixel_mode_fresh_noise():
    x = torch.full((200, 3, 16, 16), 100.0)
    out = RandomErasing(1.0, mode="rand")(x.clone())
    erased = out != 100.0
    for sample, mask in zip(out, erased[:, 0]):
        colours = sample[:, mask]  # (C, erased pixels)
        assert torch.equal(colours, colours[:, :1].expand_as(colours))
        assert len(set(colours[:, 0].tolist())) == 3
    noise = RandomErasing(1.0, mode="pixel")(x.clone())
    values = noise[noise != 100.0]
    assert values.numel() > 10_000
    assert values.mean().item() == pytest.approx(0.0, abs=0.05) and values.std().item() == pytest.approx(1.0, abs=0.05)
    # independent per channel too: the correlation of two channels' noise is ~0 (sd 1/sqrt(pixels) < 0.02)
    erased = (noise != 100.0).all(1)
    pair = torch.stack([noise[:, 0][erased], noise[:, 1][erased]])
    assert abs(torch.corrcoef(pair)[0, 1].item()) < 0.1


def test_up_to_max_count_rectangles_each_with_its_own_colour():
    out = RandomErasing(1.0, mode="rand", max_count=3)(torch.full((300, 1, 32, 32), 100.0))
    counts = {len(set(sample[sample != 100.0].tolist())) for sample in out}
    assert counts == {1, 2, 3}


def test_erases_in_place_keeps_dtype_and_is_reproducible():
    erasing = RandomErasing(0.5, mode="pixel", max_count=2)
    x = torch.randn(16, 3, 12, 12, dtype=torch.bfloat16)
    outs = []
    for _ in range(2):
        random.seed(5)
        torch.manual_seed(5)
        batch = x.clone()
        outs.append(erasing(batch))
        assert outs[-1] is batch and outs[-1].dtype == torch.bfloat16
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], x)


@pytest.mark.parametrize("mode", ["pixel", "rand", "const"])
def test_no_host_sync_on_the_batch(monkeypatch, mode):
    def sync(*_):
        raise AssertionError("the batch was read back on the host")

    x = torch.randn(32, 3, 16, 16)
    for name in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    random.seed(0)
    out = RandomErasing(1.0, mode=mode, max_count=2)(x.clone())
    monkeypatch.undo()
    assert not torch.equal(out, x)


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="pixel, rand, const"):
        RandomErasing(mode="gauss")
