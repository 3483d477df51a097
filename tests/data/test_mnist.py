import gzip
import struct

import numpy as np
import pytest

from danlu.data import create_dataset
from danlu.data.mnist import read_idx


def _write_idx(path, array):
    header = b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


def test_reads_idx_files(tiny_mnist):
    bundle = create_dataset("mnist", root=tiny_mnist)
    assert len(bundle.train) == 12 and len(bundle.test) == 5
    image, label = bundle.train[7]
    assert image.shape == (1, 28, 28) and int(label) == 7
    assert np.array_equal(image[0].numpy(), read_idx(tiny_mnist / "train-images-idx3-ubyte.gz")[7])


def test_truncated_file_is_named(tiny_mnist):
    path = tiny_mnist / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    with gzip.open(path, "wb") as f:
        f.write(data[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz' is truncated"):
        create_dataset("mnist", root=tiny_mnist)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz' is corrupt or truncated"):
        create_dataset("mnist", root=tiny_mnist)


def test_missing_files_say_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz"):
        create_dataset("mnist", root=tmp_path)


def test_real_mnist(data_dir):
    bundle = create_dataset("mnist", root=data_dir / "mnist")
    assert len(bundle.train) == 60000 and len(bundle.test) == 10000
    assert [int(bundle.train[i][1]) for i in range(5)] == [5, 0, 4, 1, 9]  # the canonical first labels
    assert int(bundle.test[0][1]) == 7


def test_label_out_of_range_names_the_file(tiny_mnist):
    labels = np.arange(5) % 10
    labels[3] = 10  # a corrupt byte: no MNIST class
    _write_idx(tiny_mnist / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz' holds label 10 at index 3 \(1 out of range\); "
                                         "MNIST labels are 0 to 9"):
        create_dataset("mnist", root=tiny_mnist)
