"""Images read from disk one at a time: an index of (file, label) and the map-style data set over it.

The index is a few numpy arrays, not a Python object per file, so DataLoader workers forked from the
main process share it without touching (and so copying) millions of reference counts."""
import io
import operator
import os
import tarfile
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .augment.pipeline import pil_to_tensor as any_tensor


@dataclass
class ImageIndex:
    """The images of one split: `names` (a numpy bytes array) are paths relative to the folder `root`,
    or members of the tar file `root` whose data start at byte `offsets` and hold `sizes` bytes;
    `labels` (int32) index `classes`. `key` identifies this version of the files, for caches."""
    root: str
    classes: list
    names: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray | None = None
    sizes: np.ndarray | None = None
    key: str = ""

    def __len__(self) -> int:
        return len(self.names)

    def path(self, i: int) -> str:
        """Where image i is, for messages: a file path, or `archive.tar:member`."""
        name = os.fsdecode(self.names[i])
        return f"{self.root}:{name}" if self.offsets is not None else os.path.join(self.root, name)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """An image as RGB uint8 (3, H, W)."""
    return any_tensor(img.convert("RGB"))


class FileImageDataset(Dataset):
    """Items `(transform(image), label)` of an ImageIndex, each file opened (not decoded) by PIL when
    asked for; `transform` (PIL image -> uint8 (3, H, W) tensor) decodes it, and without one the image
    comes at its own size. (Per-sample seeds come from `datasets.SampleSeeded`, which wraps it in training.)

    An unreadable file is skipped with a warning, once per file and process, and the next readable
    image is returned instead, so that one bad file among millions cannot stop a long run."""

    def __init__(self, index: ImageIndex, transform=None):
        self.index, self.transform = index, transform
        self.bad = set()  # indices found unreadable in this process
        self._tar, self._pid = None, None

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self):
        # an open file cannot travel to a worker: each process opens its own on first use
        return {**self.__dict__, "_tar": None, "_pid": None}

    def read_bytes(self, i: int) -> bytes:
        """The encoded file of image i."""
        index = self.index
        if index.offsets is None:
            with open(index.path(i), "rb") as f:
                return f.read()
        if self._pid != os.getpid():  # a forked worker must not share its parent's file position
            self._tar, self._pid = tarfile.open(index.root), os.getpid()  # noqa: SIM115 (kept open)
        stream = self._tar.fileobj  # the (decompressed) byte stream that the offsets point into
        stream.seek(int(index.offsets[i]))
        data = stream.read(int(index.sizes[i]))
        if len(data) != index.sizes[i]:
            raise OSError(f"the tar file ends inside '{os.fsdecode(index.names[i])}'")
        return data

    def open_image(self, i: int) -> Image.Image:
        """Image i, opened lazily: its pixels are decoded when first used."""
        if self.index.offsets is None:
            return Image.open(self.index.path(i))
        return Image.open(io.BytesIO(self.read_bytes(i)))

    def __getitem__(self, i):
        i, n = operator.index(i), len(self)
        if not 0 <= i < n:
            raise IndexError(f"index {i} is out of range for {n} images")
        for j in (k % n for k in range(i, i + n)):
            if j in self.bad:
                continue
            try:
                with self.open_image(j) as img:
                    x = self.transform(img) if self.transform else pil_to_tensor(img)
                return x, int(self.index.labels[j])
            except OSError as e:  # PIL's UnidentifiedImageError and truncated files are OSErrors
                self.bad.add(j)
                warnings.warn(f"skipping unreadable image '{self.index.path(j)}' ({e}); "
                              f"{len(self.bad)} unreadable so far in this process", stacklevel=2)
        raise ValueError(f"none of the {n} images in '{self.index.root}' can be read; check the files")
