import random

import pytest
import torch

from danlu.data.augment.mixup import Mixup, mixup_target

CLASSES, SMOOTHING = 10, 0.1
OFF = SMOOTHING / CLASSES
ON = 1 - SMOOTHING + OFF


def _constant_batch(n, h=12, w=20):
    """Sample i is the constant i + 1, so every output pixel says which samples it came from."""
    return torch.arange(1.0, n + 1).view(n, 1, 1, 1).expand(n, 2, h, w).contiguous()


def _expected_targets(labels, lam):
    """lam of the smoothed one-hot plus 1 - lam of the flipped batch's, built from an identity matrix."""
    eye = torch.eye(CLASSES)[labels]
    smooth = eye * (ON - OFF) + OFF
    return lam * smooth + (1 - lam) * smooth.flip(0)


def _partner_weight(targets, labels):
    """1 - lam read off sample 0's soft target: the share of its partner's (sample N-1) class."""
    return (targets[0, labels[-1]] - OFF) / (ON - OFF)


@pytest.fixture(autouse=True)
def _python_seeded():
    random.seed(0)


def test_mixup_blends_each_sample_with_its_flipped_partner_and_the_targets_by_the_same_ratio():
    x, labels = _constant_batch(5), torch.tensor([3, 1, 4, 0, 9])
    mixup = Mixup(mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=SMOOTHING, num_classes=CLASSES)
    for _ in range(5):
        out, targets = mixup(x, labels)
        # sample 0 (value 1) mixes with sample 4 (value 5): out = lam * 1 + (1 - lam) * 5
        lam = (5 - out[0, 0, 0, 0].item()) / 4
        assert 0 < lam < 1
        assert torch.allclose(out, lam * x + (1 - lam) * x.flip(0), atol=1e-5)
        assert targets.dtype == torch.float32
        assert torch.allclose(targets, _expected_targets(labels, lam), atol=1e-6)
    assert torch.equal(x, _constant_batch(5)), "the input batch is not modified"


def test_mixup_ratio_follows_beta_alpha_alpha():
    x, labels = _constant_batch(2, 1, 1), torch.tensor([0, 1])
    for alpha in (0.2, 0.8):
        mixup = Mixup(mixup_alpha=alpha, cutmix_alpha=0.0, label_smoothing=0.0, num_classes=2)
        lam = torch.tensor([2 - mixup(x, labels)[0][0, 0, 0, 0].item() for _ in range(3000)])
        # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)): 0.179 for 0.2, 0.096 for 0.8
        assert lam.mean().item() == pytest.approx(0.5, abs=0.03)
        assert lam.var().item() == pytest.approx(1 / (4 * (2 * alpha + 1)), abs=0.015)


def _pasted(out, x):
    """Per sample, the mask of pixels taken from its flipped partner; checks the rest is untouched."""
    pasted = out == x.flip(0)
    assert torch.equal(out[~pasted], x[~pasted])
    return pasted[:, 0]


def test_cutmix_targets_equal_the_pasted_area_fraction():
    x, labels = _constant_batch(4), torch.tensor([2, 7, 5, 8])
    cutmix = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=SMOOTHING, num_classes=CLASSES)
    clipped, lower_half, right_part = 0, 0, 0
    for _ in range(60):
        out, targets = cutmix(x, labels)
        pasted = _pasted(out, x)
        assert (pasted == pasted[:1]).all(), "one box for the whole batch"
        rows, cols = pasted[0].any(1), pasted[0].any(0)
        assert torch.equal(pasted[0], rows[:, None] & cols[None, :]), "the pasted pixels form a box"
        frac = pasted[0].float().mean().item()
        assert _partner_weight(targets, labels).item() == pytest.approx(frac, abs=1e-6)
        assert torch.allclose(targets, _expected_targets(labels, 1 - frac), atol=1e-6)
        clipped += bool(rows[0] or rows[-1] or cols[0] or cols[-1])
        lower_half += bool(rows.any() and not rows[:6].any())
        right_part += bool(cols.any() and not cols[:12].any())
    assert clipped > 5, "boxes at the border occur, so the lam correction is exercised"
    # the box centre is uniform over the whole image: some boxes lie wholly in the lower half or right 40%
    assert lower_half > 0 and right_part > 0


def test_without_correct_lam_a_clipped_box_weighs_more_than_its_area():
    x, labels = _constant_batch(4), torch.tensor([2, 7, 5, 8])
    cutmix = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, correct_lam=False, label_smoothing=SMOOTHING,
                   num_classes=CLASSES)
    gaps = []
    for _ in range(40):
        out, targets = cutmix(x, labels)
        gaps.append(_partner_weight(targets, labels).item() - _pasted(out, x)[0].float().mean().item())
    # the unclipped box, int(H sqrt(1 - lam)) x int(W sqrt(1 - lam)), is at most (1 - lam) of the image
    assert min(gaps) > -1e-6 and max(gaps) > 0.05


def test_cutmix_minmax_box_sides_and_exact_targets():
    x, labels = _constant_batch(4), torch.tensor([2, 7, 5, 8])
    cutmix = Mixup(mixup_alpha=0.0, cutmix_alpha=0.0, cutmix_minmax=(0.2, 0.8), correct_lam=False,
                   label_smoothing=SMOOTHING, num_classes=CLASSES)
    heights, widths = set(), set()
    for _ in range(200):
        out, targets = cutmix(x, labels)
        pasted = _pasted(out, x)[0]
        heights.add(pasted.any(1).sum().item())
        widths.add(pasted.any(0).sum().item())
        assert _partner_weight(targets, labels).item() == pytest.approx(pasted.float().mean().item(), abs=1e-6)
    # sides uniform in [int(0.2 * side), int(0.8 * side)): 2..8 of 12 rows, 4..15 of 20 columns
    assert heights == set(range(2, 9)) and widths == set(range(4, 16))


def test_prob_and_switch_prob_choose_between_no_mixing_cutmix_and_mixup():
    x, labels = _constant_batch(2, 4, 4), torch.tensor([0, 1])
    mixer = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=0.6, switch_prob=0.25, num_classes=2)
    kinds = {"none": 0, "cutmix": 0, "mixup": 0}
    for _ in range(2000):
        out = mixer(x, labels)[0][0]
        if torch.equal(out, x[0]):
            kinds["none"] += 1
        elif ((out == 1) | (out == 2)).all():
            kinds["cutmix"] += 1
        else:
            kinds["mixup"] += 1
    # 0.4 unmixed, 0.6 * 0.25 CutMix, 0.6 * 0.75 Mixup; a CutMix box has no pixel, so looks unmixed,
    # when int(4 sqrt(1 - lam)) = 0, lam > 15/16 (1/16 of Beta(1, 1))
    assert kinds["none"] / 2000 == pytest.approx(0.4 + 0.15 / 16, abs=0.04)
    assert kinds["cutmix"] / 2000 == pytest.approx(0.15 * 15 / 16, abs=0.03)
    assert kinds["mixup"] / 2000 == pytest.approx(0.45, abs=0.04)


def test_half_precision_batch_keeps_its_dtype_with_float32_targets():
    out, targets = Mixup(num_classes=CLASSES)(torch.randn(4, 3, 8, 8, dtype=torch.bfloat16), torch.arange(4))
    assert out.dtype == torch.bfloat16 and targets.dtype == torch.float32
    assert torch.allclose(targets.sum(1), torch.ones(4))


def test_mixup_target_without_mixing_is_label_smoothing():
    labels = torch.tensor([4, 0, 9])
    assert torch.allclose(mixup_target(labels, CLASSES, 1.0, SMOOTHING), _expected_targets(labels, 1.0))
    assert torch.equal(mixup_target(labels, CLASSES), torch.eye(CLASSES)[labels])
    assert torch.allclose(mixup_target(labels, CLASSES, 0.3, SMOOTHING), _expected_targets(labels, 0.3))


def test_a_batch_of_one_and_other_modes_raise():
    with pytest.raises(ValueError, match="at least 2 samples per batch"):
        Mixup()(torch.zeros(1, 3, 8, 8), torch.tensor([0]))
    with pytest.raises(ValueError, match="mode='batch'"):
        Mixup(mode="pair")
    with pytest.raises(ValueError, match="mixup_alpha > 0"):
        Mixup(mixup_alpha=0.0, cutmix_alpha=0.0)
