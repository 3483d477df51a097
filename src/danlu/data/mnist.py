"""MNIST from the canonical gzipped IDX files (LeCun et al.)."""
import gzip
import struct
import zlib

import numpy as np
import torch

from .datasets import TensorImageDataset
from .download import ensure_files
from .registry import DataBundle, register_dataset

_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MEAN, STD = (0.1307,), (0.3081,)


def read_idx(path):
    """A uint8 numpy array from an IDX file (gzipped or not); errors name the file."""
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"'{path}' is corrupt or truncated ({e}); delete it and download it again") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError(f"'{path}' is not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise ValueError(f"'{path}' is truncated: header says {shape} = {int(np.prod(shape))} bytes, "
                         f"found {len(body)}; delete it and download it again")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def load_mnist_split(root, train=True, download=False):
    prefix = "train" if train else "t10k"
    names = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
    images_path, labels_path = ensure_files(root, {n: (_URL + n, _FILES[n]) for n in names}, "MNIST", download)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"'{images_path}' and '{labels_path}' do not match: images {images.shape}, labels {labels.shape}")
    bad = np.flatnonzero(labels > 9)
    if len(bad):
        raise ValueError(f"'{labels_path}' holds label {labels[bad[0]]} at index {bad[0]} ({len(bad)} out of range); "
                         "MNIST labels are 0 to 9: the file is corrupt, delete it and download it again")
    return TensorImageDataset(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))


@register_dataset("mnist")
def mnist(root=None, download=False):
    if root is None:
        raise ValueError("MNIST needs --data-dir, the folder holding the four *-idx?-ubyte.gz files")
    return DataBundle(train=load_mnist_split(root, True, download), test=load_mnist_split(root, False, download),
                      classes=[str(i) for i in range(10)], input_size=(1, 28, 28), meta={"mean": MEAN, "std": STD})
