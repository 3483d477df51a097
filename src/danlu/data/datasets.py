"""In-memory data set containers, wrappers and the train/validation split."""
import copy
import random

import torch
from torch.utils.data import Dataset, Subset


class TensorImageDataset(Dataset):
    """uint8 images (N, C, H, W) with integer labels (N,); items are (image, label) tensors."""

    def __init__(self, images, labels):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, torch.as_tensor(labels, dtype=torch.long)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


class Transformed(Dataset):
    """Applies `transform` to the input of each (input, target) item of another data set."""

    def __init__(self, dataset, transform=None):
        self.dataset, self.transform = dataset, transform

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i]
        return (self.transform(x) if self.transform else x), y


class SampleSeeded(Dataset):
    """Takes `(index, sample_seed)` keys (from a sampler with `sample_seeds=True`) and seeds Python's
    `random` (timm's PIL augmentations) and torch's CPU generator (danlu's tensor augmentations), which
    the per-sample augmentations draw from, before reading the item: a sample's
    augmentation then depends only on (seed, epoch, position), not on which worker reads it, how many
    processes share the epoch, or where a resumed epoch restarts."""

    sample_seeds = True  # what the trainer's sampler checks to yield (index, seed) keys

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        random.seed(seed)
        torch.default_generator.manual_seed(seed)
        return self.dataset[index]


def with_transform(dataset, transform):
    """`dataset` (or the data set under its Subsets) with `transform` applied to each input: set on a copy
    of a data set that decodes its own files (its `transform` attribute, so decoding can use the
    transform's draft scale), else wrapped in `Transformed`. Copies share the index, so the train and
    validation splits of one folder can carry different transforms."""
    if isinstance(dataset, Subset):
        return Subset(with_transform(dataset.dataset, transform), dataset.indices)
    if hasattr(dataset, "transform"):
        dataset = copy.copy(dataset)
        dataset.transform = transform
        return dataset
    return Transformed(dataset, transform)


def split_dataset(dataset, val_fraction, seed=0):
    """A seeded random (train, val) split holding out `val_fraction` of the items."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_split must be between 0 and 1 (exclusive), got {val_fraction}")
    n_val = max(1, round(len(dataset) * val_fraction))
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, order[n_val:]), Subset(dataset, order[:n_val])
