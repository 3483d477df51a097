import pytest
import torch
from torch.utils.data import Subset

from danlu.data.augment.batch_crop_flip import BatchCropFlip
from danlu.data.datasets import TensorImageDataset, Transformed
from danlu.data.in_memory import InMemoryImages, InMemoryLoader, as_in_memory
from danlu.engine.sampler import EpochSampler, RepeatedAugSampler

IMAGES = torch.randint(0, 256, (40, 3, 6, 6), dtype=torch.uint8)
LABELS = torch.arange(40) % 7


def _loader(sampler, augment=None, batch_size=4, drop_last=False):
    return InMemoryLoader(InMemoryImages(IMAGES, LABELS, augment), batch_size, sampler, torch.device("cpu"), drop_last,
                          seed=3)


def _epoch(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def test_subsets_of_stored_images_are_gathered_in_their_order_and_anything_else_is_left_to_the_dataloader():
    outer = Subset(Subset(TensorImageDataset(IMAGES, LABELS), [5, 1, 30, 2, 7]), [3, 0, 2])  # -> 2, 5, 30
    data = as_in_memory(outer)
    assert torch.equal(data.images, IMAGES[[2, 5, 30]]) and torch.equal(data.labels, LABELS[[2, 5, 30]])
    assert as_in_memory(Transformed(TensorImageDataset(IMAGES, LABELS), lambda x: x)) is None  # a per-sample transform
    assert as_in_memory(list(zip(IMAGES, LABELS))) is None
    flips = BatchCropFlip(1)
    items = lambda x: x.float()  # noqa: E731
    kept = as_in_memory(Subset(InMemoryImages(IMAGES, LABELS, flips, items), [1, 2]))
    assert kept.augment is flips and kept.transform is items and torch.equal(kept.images, IMAGES[1:3])


def test_batches_are_the_samplers_order_and_a_restart_gives_the_rest_of_the_same_epoch():
    sampler = RepeatedAugSampler(40, seed=2, repeats=3)
    loader = _loader(sampler, BatchCropFlip(2, flip_mode="random"))
    sampler.set_epoch(3)
    assert len(loader) == 11  # 42 positions: whole groups of 3 repeats
    images, labels = _epoch(loader)
    order = list(sampler)
    assert torch.equal(labels, LABELS[order])
    sampler.set_epoch(3, start=24)  # 6 batches done
    rest_images, rest_labels = _epoch(loader)
    assert torch.equal(rest_images, images[24:]) and torch.equal(rest_labels, labels[24:])  # augmented alike
    fixed = EpochSampler(40, shuffle=False)
    in_order = _loader(fixed, BatchCropFlip(2))
    first = _epoch(in_order)[0]
    fixed.set_epoch(1)
    assert not torch.equal(_epoch(in_order)[0], first)  # the same images in the same order, augmented afresh


def test_two_processes_get_the_one_process_batches_and_augmentation():
    one = _loader(EpochSampler(40, seed=1), BatchCropFlip(2), batch_size=2)
    ranks = [_loader(EpochSampler(40, seed=1, rank=r, world_size=2), BatchCropFlip(2), batch_size=1) for r in (0, 1)]
    for loader in (one, *ranks):
        loader.sampler.set_epoch(1)
    merged = torch.stack([torch.cat([a, b]) for (a, _), (b, _) in zip(*ranks)])  # batch k of each rank: global batch k
    assert torch.equal(merged, torch.stack([x for x, _ in one]))


def test_drop_last_drops_the_short_batch_and_the_loader_holds_the_whole_set():
    loader = _loader(EpochSampler(40, shuffle=False), batch_size=16, drop_last=True)
    assert len(loader) == 2
    images, labels = _epoch(loader)
    assert torch.equal(images, IMAGES[:32]) and torch.equal(labels, LABELS[:32])
    assert torch.equal(loader.images, IMAGES) and torch.equal(loader.labels, LABELS)


def test_items_are_the_transformed_unaugmented_images():
    data = InMemoryImages(IMAGES, LABELS, augment=BatchCropFlip(2), transform=lambda x: x.float() / 255)
    x, y = data[4]
    assert torch.equal(x, IMAGES[4].float() / 255) and y == LABELS[4]
    assert len(data) == 40


@pytest.mark.parametrize("epoch", [0, 1])
def test_alternate_flip_batches_mirror_each_image_by_its_bit_and_the_epoch(epoch):
    augment = BatchCropFlip(0, flip_mode="alternate", length=40, seed=9)
    sampler = EpochSampler(40, seed=4)
    sampler.set_epoch(epoch)
    images, labels = _epoch(_loader(sampler, augment))
    order = list(sampler)
    flipped = augment.image_flips[order] ^ bool(epoch)
    expected = torch.where(flipped.view(-1, 1, 1, 1), IMAGES[order].flip(-1), IMAGES[order])
    assert torch.equal(images, expected)
