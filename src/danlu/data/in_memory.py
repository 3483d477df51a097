"""Data sets that fit in memory (digits, MNIST, CIFAR-10, small image folders), trained without a
DataLoader: one uint8 tensor on the training device, whole batches gathered by index and augmented
per batch there (`augment.batch_crop_flip`), then normalised with the rest of the batch work
(`engine.batch`). No workers, no per-sample Python: about 4x the DataLoader's images/s on CIFAR-10 and
15x on MNIST (benchmarks/bench_engine.py). Images trained at another size than stored take the
DataLoader path, whose workers can share the resizing: done per batch it was no faster (0.9x at 3x
CIFAR's size).

Batches follow the engine's samplers, so the order, the sharding over processes and where a resumed
epoch restarts are the DataLoader path's; the augmentation of an epoch is drawn at its start from a
generator seeded by (seed, epoch), per position of the global order, so a run resumed at any batch
draws what the straight run drew, whatever the number of processes."""
import math

import torch
from torch.utils.data import Dataset, Subset

from .augment.batch_crop_flip import BatchCropFlip
from .datasets import TensorImageDataset
from .seeding import sample_seeds

_AUGMENT_SEED_KEY = 2 << 40  # keeps the augmentation seeds apart from the sample and batch seeds of a run


class InMemoryImages(Dataset):
    """uint8 images (N, C, H, W) and labels, trained with the per-batch augmentation `augment`. Items,
    for DataLoader users and evaluation reports, are `transform(image)`, unaugmented."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, augment: BatchCropFlip | None = None,
                 transform=None):
        self.images, self.labels, self.augment, self.transform = images, labels, augment, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i]
        return (self.transform(x) if self.transform else x), self.labels[i]


def as_in_memory(dataset) -> InMemoryImages | None:
    """`dataset` as InMemoryImages when the in-memory path gives its batches: an InMemoryImages or a
    TensorImageDataset (items as stored), under any Subsets (gathered once, in the subset's order);
    else None (a per-sample transform, files, a stream: the DataLoader path)."""
    indices = None
    while isinstance(dataset, Subset):
        picked = torch.as_tensor(dataset.indices, dtype=torch.long)
        indices, dataset = (picked if indices is None else picked[indices]), dataset.dataset
    if type(dataset) is TensorImageDataset:  # not a subclass: its items may be something else
        dataset = InMemoryImages(dataset.images, dataset.labels)
    if not isinstance(dataset, InMemoryImages):
        return None
    if indices is None:
        return dataset
    return InMemoryImages(dataset.images[indices], dataset.labels[indices], dataset.augment, dataset.transform)


class InMemoryLoader:
    """Batches (uint8 images, labels) of `data` on `device`, in the order of `sampler` (an engine sampler:
    `set_epoch` it as a DataLoader's); `images` and `labels` hold the whole set there, in its order, and
    `dataset` is `data`, as a DataLoader's."""

    def __init__(self, data: InMemoryImages, batch_size: int, sampler, device: torch.device,
                 drop_last: bool = False, seed: int = 0):
        self.dataset = data
        self.images, self.labels = data.images.to(device), data.labels.to(device)
        self.augment = data.augment
        self.batch_size, self.sampler, self.drop_last, self.seed = batch_size, sampler, drop_last, seed

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _draws(self, indices):
        """The epoch's augmentation parameters for this process's remaining positions, or Nones."""
        if self.augment is None:
            return None, None
        epoch = self.sampler.epoch
        generator = torch.Generator(self.images.device)
        generator.manual_seed(sample_seeds(self.seed + _AUGMENT_SEED_KEY, epoch, range(1))[0])
        return self.augment.draw(generator, self.sampler.positions(), indices, epoch)

    def __iter__(self):
        indices = self.sampler.indices().to(self.images.device)
        shifts, flips = self._draws(indices)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = slice(start, start + self.batch_size)
            picked = indices[batch]
            x = self.images.index_select(0, picked)
            if self.augment is not None:
                x = self.augment(x, None if shifts is None else shifts[batch], None if flips is None else flips[batch])
            yield x, self.labels.index_select(0, picked)
