import io
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from danlu.data import create_dataset
from danlu.data.cifar import load_cifar10_archive


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _batch(n, offset):
    data = (np.arange(n * 3072) + offset).astype(np.uint8).reshape(n, 3072)
    return pickle.dumps({b"data": data, b"labels": [(offset + i) % 10 for i in range(n)]})


@pytest.fixture
def tiny_archive(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            _add(tar, f"cifar-10-batches-py/data_batch_{i}", _batch(2, i))
        _add(tar, "cifar-10-batches-py/test_batch", _batch(3, 0))
    return tmp_path


def test_canonical_archive(tiny_archive):
    bundle = create_dataset("cifar10", root=tiny_archive)
    assert len(bundle.train) == 10 and len(bundle.test) == 3 and bundle.classes[0] == "airplane"
    image, label = bundle.train[2]                      # first image of data_batch_2
    assert image.shape == (3, 32, 32) and int(label) == 2
    assert int(image[0, 0, 0]) == 2 and int(image[1, 0, 0]) == (1024 + 2) % 256  # channel-major rows


def test_archive_refuses_code_in_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "cifar-10-batches-py/data_batch_1", pickle.dumps({b"data": Evil()}))
    with pytest.raises(ValueError, match="data_batch_1' is not a valid CIFAR-10 batch .*refusing to load builtins.print"):
        load_cifar10_archive(path)


def test_truncated_archive_is_named(tiny_archive):
    path = tiny_archive / "cifar-10-python.tar.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz' is not a readable CIFAR-10 archive"):
        create_dataset("cifar10", root=tiny_archive)


def test_image_folder_tarball(tmp_path, monkeypatch):
    monkeypatch.setenv("DANLU_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "cifar10-jpg.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", 2), ("test", 1)):
            for label, cls in enumerate(["cat", "dog"]):
                for i in range(n):
                    buf = io.BytesIO()
                    Image.new("RGB", (32, 32), (10 * label, 100, 200)).save(buf, "PNG")
                    _add(tar, f"{split}/{cls}/{i:04d}.png", buf.getvalue())
    for _ in range(2):  # decoded, then from the cache
        bundle = create_dataset("image-folder", root=path)
        assert bundle.classes == ["cat", "dog"] and len(bundle.train) == 4 and len(bundle.test) == 2
        image, label = bundle.train[3]
        assert int(label) == 1 and image[:, 5, 5].tolist() == [10, 100, 200]


def test_non_image_in_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DANLU_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "train" / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg' is not a readable image"):
        create_dataset("image-folder", root=tmp_path / "data")


def test_real_cifar10_jpg_tarball(data_dir):
    bundle = create_dataset("cifar10", root=data_dir / "cifar10")
    assert len(bundle.train) == 50000 and len(bundle.test) == 10000
    assert torch.bincount(bundle.test.labels).tolist() == [1000] * 10
    assert bundle.train.images.shape == (50000, 3, 32, 32)
