import torch

from danlu.data import split_dataset
from danlu.data.transforms import Normalize, RandomCrop, RandomHorizontalFlip, Resize, build_transforms


def test_random_crop_with_padding_shifts_the_image():
    x = torch.arange(16, dtype=torch.uint8).view(1, 4, 4)
    torch.manual_seed(0)
    crops = [RandomCrop(4, padding=1)(x) for _ in range(50)]
    assert all(c.shape == (1, 4, 4) for c in crops)
    # every crop is the image shifted by at most one pixel, zero filled
    shifts = {(int((c == 5).nonzero()[0][1]) - 1, int((c == 5).nonzero()[0][2]) - 1) for c in crops if (c == 5).any()}
    assert shifts <= {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)} and len(shifts) > 3


def test_flip_and_resize_and_normalize():
    x = torch.tensor([[[0, 255]]], dtype=torch.uint8)
    assert RandomHorizontalFlip(p=1.0)(x).tolist() == [[[255, 0]]]
    assert Resize((2, 4))(torch.full((1, 4, 8), 7, dtype=torch.uint8)).tolist() == [[[7] * 4] * 2]
    assert torch.allclose(Normalize((0.5,), (0.25,))(torch.tensor([[[1.0]]])), torch.tensor([[[2.0]]]))
    pipeline = build_transforms(2, (0.5,), (0.5,))
    assert pipeline(torch.tensor([[[0, 255], [255, 0]]], dtype=torch.uint8)).tolist() == [[[-1.0, 1.0], [1.0, -1.0]]]


def test_split_is_seeded_and_disjoint():
    data = list(range(100))
    train, val = split_dataset(data, 0.2, seed=3)
    again, _ = split_dataset(data, 0.2, seed=3)
    assert len(train) == 80 and len(val) == 20 and list(train) == list(again)
    assert not set(train) & set(val)
