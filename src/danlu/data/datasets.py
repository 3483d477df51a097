"""In-memory data set containers and the train/validation split."""
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


def split_dataset(dataset, val_fraction, seed=0):
    """A seeded random (train, val) split holding out `val_fraction` of the items."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_split must be between 0 and 1 (exclusive), got {val_fraction}")
    n_val = max(1, round(len(dataset) * val_fraction))
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, order[n_val:]), Subset(dataset, order[:n_val])
