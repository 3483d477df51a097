import pickle
import random
import shutil
import tarfile
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from danlu.data import create_dataset, folder
from danlu.data.datasets import SampleSeeded, TensorImageDataset
from danlu.data.file_dataset import FileImageDataset, ImageIndex
from danlu.data.folder import IMAGENET_MEAN, index_folder, index_split


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DANLU_CACHE", str(tmp_path / "cache"))


def _image(path, size, value, fmt=None):
    """A flat image whose red channel is `value`, so the test can tell which file a sample came from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 100, 200)).save(path, fmt or ("PNG" if path.suffix.lower() == ".png" else "JPEG"))


def _tree(root, files, size=(12, 8)):
    """files: relative paths `split/class/name`; image k gets red value 10 * k."""
    for k, rel in enumerate(files):
        _image(root / rel, size, 10 * k, "PNG")
    return root


def _red(x):
    return int(x[0, 0, 0])


def test_index_lists_files_in_natural_order(tmp_path):
    root = tmp_path / "data"
    # written out of order, suffixes in any case, with a non-image file and a sub-folder that are skipped
    for rel, size in [("train/dog10/z.JPEG", (20, 10)), ("train/Cat/b10.jpg", (7, 9)),
                      ("train/Cat/b9.Png", (33, 5)), ("train/dog9/c.jpeg", (8, 8))]:
        _image(root / rel, size, 0)
    (root / "train/Cat/notes.txt").write_text("not an image")
    (root / "train/Cat/extra").mkdir()
    index = index_folder(root / "train")
    assert index.classes == ["Cat", "dog9", "dog10"]              # timm's natural_key: digits as numbers, no case
    assert [(n.decode(), int(y)) for n, y in zip(index.names, index.labels)] == [
        ("Cat/b9.Png", 0), ("Cat/b10.jpg", 0), ("dog9/c.jpeg", 1), ("dog10/z.JPEG", 2)]
    assert index.names.dtype.kind == "S" and index.labels.dtype == np.int32  # compact: no object per file
    sizes = [tuple(FileImageDataset(index)[i][0].shape) for i in range(4)]
    assert sizes == [(3, 5, 33), (3, 9, 7), (3, 8, 8), (3, 10, 20)]          # each at its own size
    assert [p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()] == ["index"]  # nothing else cached


def test_index_cache_is_reused_until_a_class_or_image_is_added(tmp_path, monkeypatch):
    root = _tree(tmp_path / "data", ["train/cat/0.png", "train/dog/0.png"])
    scan = folder._scan_folder
    first = index_folder(root / "train")

    def no_rescan(path):
        raise AssertionError("scanned again")
    monkeypatch.setattr(folder, "_scan_folder", no_rescan)
    again = index_folder(root / "train")
    assert again.names.tolist() == first.names.tolist() and again.classes == ["cat", "dog"]
    _image(root / "train/bird/0.png", (4, 4), 0)
    with pytest.raises(AssertionError, match="scanned again"):
        index_folder(root / "train")
    monkeypatch.setattr(folder, "_scan_folder", scan)
    assert index_folder(root / "train").classes == ["bird", "cat", "dog"]
    _image(root / "train/cat/1.png", (4, 4), 0)                # a new file changes its class folder's mtime
    assert index_folder(root / "train").names.tolist() == [b"bird/0.png", b"cat/0.png", b"cat/1.png", b"dog/0.png"]


def test_truncated_image_is_skipped_once_with_a_warning(tmp_path):
    root = _tree(tmp_path / "data", ["train/a/0.png", "train/a/1.png", "train/b/2.png"])
    jpeg = root / "train/a/1.png"
    _image(jpeg, (40, 30), 77, "JPEG")                           # a JPEG under a .png name: PIL sniffs the format
    jpeg.write_bytes(jpeg.read_bytes()[:300])
    ds = FileImageDataset(index_folder(root / "train"))
    with pytest.warns(UserWarning, match=r"a/1\.png.*1 unreadable so far"):
        x, y = ds[1]
    assert (_red(x), y) == (20, 1)                              # the next sample, b/2.png
    with warnings.catch_warnings():
        warnings.simplefilter("error")                          # warned once per file: known bad, skipped quietly
        assert _red(ds[1][0]) == 20 and ds.bad == {1}
    (root / "train/b/2.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=r"b/2\.png.*2 unreadable so far"):
        assert _red(ds[2][0]) == 0                              # the last one wraps round to the first
    (root / "train/a/0.png").write_bytes(b"")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="none of the 3 images"):
        ds[0]
    with pytest.raises(IndexError):
        ds[3]


def test_sample_seed_seeds_random_before_the_transform(tmp_path):
    ds = SampleSeeded(FileImageDataset(index_folder(_tree(tmp_path / "data", ["train/a/0.png", "train/a/1.png"])
                                                    / "train"),
                                       transform=lambda img: torch.tensor([img.getpixel((0, 0))[0], random.random()])))
    first = ds[(1, 123)][0]
    assert first.tolist() == [10.0, pytest.approx(random.Random(123).random(), abs=1e-7)]
    assert torch.equal(ds[(1, 123)][0], first) and not torch.equal(ds[(1, 124)][0], first)


def test_tar_random_access_matches_the_folder(tmp_path, data_dir):
    root = tmp_path / "photos"
    for path in sorted((data_dir / "images").iterdir()):
        split = "val" if path.stem == "coffee" else "train"
        cls = "texture" if path.stem in ("brick", "grass", "gravel") else "photo"
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / split / cls / path.name)
    with tarfile.open(tmp_path / "photos.tar", "w") as tar:
        tar.add(root, arcname="photos")
    in_folder, in_tar = (FileImageDataset(index_split(src, "train")) for src in (root, tmp_path / "photos.tar"))
    assert len(in_tar) == len(in_folder) == 6 and in_tar.index.classes == ["photo", "texture"]
    for i in reversed(range(6)):                                 # seeks backwards too
        assert in_tar.read_bytes(i) == (root / "train" / in_folder.index.names[i].decode()).read_bytes()
        (a, ya), (b, yb) = in_tar[i], in_folder[i]
        assert ya == yb and torch.equal(a, b)
    assert torch.equal(pickle.loads(pickle.dumps(in_tar))[0][0], in_folder[0][0])  # its open tar stays behind
    # a forked DataLoader worker opens its own handle instead of sharing the parent's file position
    loaded = [x for batch, _ in DataLoader(in_tar, batch_size=1, num_workers=2) for x in batch]
    assert all(torch.equal(x, in_folder[i][0]) for i, x in enumerate(loaded))
    bundle = create_dataset("image-folder", root=tmp_path / "photos.tar")  # photos are large: streamed
    assert isinstance(bundle.train, FileImageDataset) and len(bundle.test) == 1
    assert bundle.input_size == (3, None, None) and bundle.meta["mean"] == IMAGENET_MEAN
    assert bundle.classes == ["photo", "texture"] and bundle.test[0][1] == 0  # coffee.png, a photo


def test_small_trees_are_decoded_into_memory(tmp_path):
    root = _tree(tmp_path / "data", ["train/a/0.png", "train/b/1.png", "test/b/2.png"], size=(64, 32))
    bundle = create_dataset("image-folder", root=root)
    assert isinstance(bundle.train, TensorImageDataset) and bundle.input_size == (3, 32, 64)
    assert bundle.meta["mean"] == (0.5,) * 3 and bundle.test.labels.tolist() == [1]
    streamed = create_dataset("image-folder", root=root, in_memory=False)
    assert isinstance(streamed.train, FileImageDataset) and _red(streamed.test[0][0]) == 20
    _image(root / "train/a/0.png", (65, 10), 0)                  # the first image is now larger than 64 px
    assert isinstance(create_dataset("image-folder", root=root).train, FileImageDataset)


def test_big_compressed_tar_cannot_be_streamed(tmp_path):
    root = _tree(tmp_path / "data", ["train/a/0.png"], size=(100, 100))
    with tarfile.open(tmp_path / "data.tar.gz", "w:gz") as tar:
        tar.add(root / "train", arcname="train")
    with pytest.raises(ValueError, match="compressed tar file.*extract it"):
        create_dataset("image-folder", root=tmp_path / "data.tar.gz")
    assert create_dataset("image-folder", root=tmp_path / "data.tar.gz", in_memory=True).input_size == (3, 100, 100)


@pytest.mark.parametrize("files, message", [
    (["train/0.png"], "train' holds no class folders"),
    (["train/a/"], "train' holds no images"),
    (["train/a/0.png", "train/b/"], r"class folder '.*train/b' holds no images"),
])
def test_layout_errors_name_the_folder(tmp_path, files, message):
    for rel in files:
        if rel.endswith("/"):
            (tmp_path / "data" / rel).mkdir(parents=True)
        else:
            _image(tmp_path / "data" / rel, (4, 4), 0)
    with pytest.raises(ValueError, match=message):
        create_dataset("image-folder", root=tmp_path / "data")


def test_truncated_tar_names_the_member(tmp_path):
    root = _tree(tmp_path / "data", ["train/a/0.png", "train/a/1.png", "train/a/2.png"], size=(64, 64))
    with tarfile.open(tmp_path / "data.tar", "w") as tar:
        tar.add(root / "train", arcname="train")
    with tarfile.open(tmp_path / "data.tar") as tar:
        cut = tar.getmember("train/a/0.png").offset_data + 100  # inside the first image's data
    (tmp_path / "data.tar").write_bytes((tmp_path / "data.tar").read_bytes()[:cut])
    with pytest.raises(ValueError, match=r"data.tar' is not a readable tar file .* after member 'train/a/0.png'"):
        create_dataset("image-folder", root=tmp_path / "data.tar")


def test_dataset_pickles_to_the_size_of_its_index(tmp_path):
    names = np.array([f"n{k % 1000:08d}/n{k % 1000:08d}_{k}.JPEG".encode() for k in range(10_000)])
    index = ImageIndex(str(tmp_path), [f"n{k:08d}" for k in range(1000)], names,
                       np.arange(10_000, dtype=np.int32) % 1000)
    blob = pickle.dumps(FileImageDataset(index))
    assert len(blob) < 1_000_000 and len(blob) < names.nbytes + 100_000
    assert pickle.loads(blob).index.names.tolist() == names.tolist()
