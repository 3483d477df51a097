from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from danlu.data.augment.batch_crop_flip import BatchCropFlip
from danlu.data.transforms import RandomCrop


def _draws(augment, positions, indices=None, epoch=0, seed=0):
    indices = torch.arange(positions.stop)[positions.start::positions.step] if indices is None else indices
    return augment.draw(torch.Generator().manual_seed(seed), positions, indices, epoch)


@pytest.mark.parametrize("pad_mode", ["zeros", "reflect"])
def test_each_image_is_its_own_padded_crop_mirrored_where_drawn(pad_mode):
    x = torch.randint(0, 256, (64, 3, 9, 7), dtype=torch.uint8)
    augment = BatchCropFlip(3, pad_mode)
    shifts, flips = _draws(augment, range(64))
    expected = []
    for image, (dy, dx), flip in zip(x, shifts.tolist(), flips.tolist()):  # the per-sample pad, crop and flip
        padded = F.pad(image[None], (3, 3, 3, 3), mode="reflect" if pad_mode == "reflect" else "constant")[0]
        crop = padded[:, 3 + dy:3 + dy + 9, 3 + dx:3 + dx + 7]
        expected.append(crop.flip(-1) if flip else crop)
    assert torch.equal(augment(x, shifts, flips), torch.stack(expected))
    assert torch.equal(augment(x, None, flips), torch.where(flips.view(-1, 1, 1, 1), x.flip(-1), x))  # 'flip'
    assert augment(x, None, None) is x


def test_shifts_and_flips_have_the_per_sample_crop_and_flip_distribution():
    shifts, flips = _draws(BatchCropFlip(2), range(50_000), seed=1)
    counts = Counter(map(tuple, shifts.tolist()))
    assert set(counts) == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
    assert all(abs(c - 2000) < 200 for c in counts.values())  # uniform: 2000 each expected, sd 44
    assert abs(flips.float().mean().item() - 0.5) < 0.01  # a fair coin: sd 0.0022
    torch.manual_seed(0)  # RandomCrop's shifts, read from where the centre pixel (value 13, at 2, 2) lands
    crop, x, seen = RandomCrop(5, padding=2), (torch.arange(25, dtype=torch.uint8) + 1).view(1, 5, 5), Counter()
    for _ in range(2500):
        row, col = (crop(x)[0] == 13).nonzero()[0].tolist()
        seen[(2 - row, 2 - col)] += 1
    assert set(seen) == set(counts) and all(abs(c - 100) < 45 for c in seen.values())  # uniform too: sd 10


def test_a_positions_draw_does_not_depend_on_sharding_or_restart():
    augment = BatchCropFlip(4)
    shifts, flips = _draws(augment, range(0, 12))
    for positions in (range(1, 12, 2), range(5, 12), range(6, 12, 3)):  # rank 1 of 2; a restart; rank 0 of 3 later
        part = _draws(augment, positions)
        assert torch.equal(part[0], shifts[positions.start::positions.step])
        assert torch.equal(part[1], flips[positions.start::positions.step])


def test_alternate_flip_turns_each_image_over_every_other_epoch():
    augment = BatchCropFlip(0, flip_mode="alternate", length=1000, seed=5)
    order = torch.randperm(1000)
    epochs = [_draws(augment, range(1000), order, epoch=e)[1] for e in range(3)]
    assert epochs[0].float().mean().item() == pytest.approx(0.5, abs=0.05)  # one random bit per image
    assert torch.equal(epochs[1], ~epochs[0]) and torch.equal(epochs[2], epochs[0])
    by_image = torch.empty(1000, dtype=torch.bool)
    by_image[order] = epochs[0]
    assert torch.equal(by_image, augment.image_flips)  # the bit follows the image, not its position
    again = BatchCropFlip(0, flip_mode="alternate", length=1000, seed=5).image_flips
    other = BatchCropFlip(0, flip_mode="alternate", length=1000, seed=6).image_flips
    assert torch.equal(again, augment.image_flips) and not torch.equal(other, augment.image_flips)


def test_unknown_modes_are_one_sentence():
    with pytest.raises(ValueError, match="pad_mode 'mirror' is not one of zeros, reflect"):
        BatchCropFlip(2, "mirror")
    with pytest.raises(ValueError, match="flip_mode 'always' is not one of random, alternate"):
        BatchCropFlip(2, flip_mode="always")
