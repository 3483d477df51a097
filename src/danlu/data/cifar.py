"""CIFAR-10 from the canonical `cifar-10-python.tar.gz` (pickled batches), or from an image-folder
tree or tarball (`train/<class>/*.jpg`, `test/<class>/*.jpg`)."""
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from .datasets import TensorImageDataset
from .download import ensure_files
from .folder import bundle_from_folder
from .registry import DataBundle, register_dataset

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
_ARCHIVE = "cifar-10-python.tar.gz"
_SOURCE = {_ARCHIVE: ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")}
_FOLDER_FORMS = ("cifar10-jpg.tar.gz", "cifar10-jpg.tar", "cifar10-jpg", ".")


class _BatchUnpickler(pickle.Unpickler):
    """The batches are pickles: allow only what numpy arrays need, so a crafted file cannot run code."""
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_batch(data, name):
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as e:  # any malformed pickle ends here, named
        raise ValueError(f"'{name}' is not a valid CIFAR-10 batch ({type(e).__name__}: {e})") from None
    return images, labels


def load_cifar10_archive(path):
    """(train, test) TensorImageDatasets from the canonical python-version tarball."""
    splits = {"train": [], "test": []}
    try:
        with tarfile.open(path) as tar:
            for info in sorted(tar.getmembers(), key=lambda i: i.name):
                base = Path(info.name).name
                if info.isfile() and (base.startswith("data_batch_") or base == "test_batch"):
                    part = _read_batch(tar.extractfile(info).read(), f"{path}:{info.name}")
                    splits["test" if base == "test_batch" else "train"].append(part)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ValueError(f"'{path}' is not a readable CIFAR-10 archive ({e}); delete it and download it again") from None
    if len(splits["train"]) != 5 or len(splits["test"]) != 1:
        raise ValueError(f"'{path}' should hold data_batch_1..5 and test_batch, found "
                         f"{len(splits['train'])} training and {len(splits['test'])} test batches")
    return tuple(TensorImageDataset(torch.from_numpy(np.concatenate([p[0] for p in parts])),
                                    torch.from_numpy(np.concatenate([p[1] for p in parts])))
                 for parts in (splits["train"], splits["test"]))


@register_dataset("cifar10")
def cifar10(root=None, download=False):
    if root is None:
        raise ValueError(f"CIFAR-10 needs --data-dir, the folder holding {_ARCHIVE} or an image-folder tarball")
    root = Path(root)
    if not (root / _ARCHIVE).is_file():
        for form in _FOLDER_FORMS:
            candidate = root / form
            if candidate.is_file() or (candidate / "train").is_dir():
                return bundle_from_folder(candidate, meta={"mean": MEAN, "std": STD})
    (path,) = ensure_files(root, _SOURCE, "CIFAR-10", download)
    train, test = load_cifar10_archive(path)
    return DataBundle(train=train, test=test, classes=CLASSES, input_size=(3, 32, 32), meta={"mean": MEAN, "std": STD})
