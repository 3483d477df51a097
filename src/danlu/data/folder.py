"""Image-folder trees `<split>/<class>/<image>` (ImageNet's `train/n01440764/*.JPEG` among them), as a
folder or a .tar file: indexed once, then streamed from disk, or for small trees decoded into memory.

The index (file names, labels and for a tar the members' offsets) is cached in `$DANLU_CACHE`
(default ~/.cache/danlu), keyed by a split folder's path and the modification times of it and of its
class folders (a tar file's: its path, size and modification time), so adding a class or an image
rebuilds it. Trees decoded into memory also cache their decoded pixels there."""
import hashlib
import io
import os
import re
import tarfile
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .datasets import TensorImageDataset
from .file_dataset import FileImageDataset, ImageIndex, pil_to_tensor
from .registry import DataBundle, register_dataset

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_VAL_NAMES = ("val", "validation", "valid", "test")  # ImageNet trees may also hold a flat test/ folder
# `in_memory=None` decodes into memory CIFAR/MNIST-like trees: a training split of at most this many
# images whose first image is at most this many pixels on its long side (60,000 of them fill 737 MB)
SMALL_COUNT, SMALL_SIDE = 60_000, 64
_COMPRESSED = (".gz", ".tgz", ".bz2", ".xz")
_MAX_COMPRESSED = 2**30  # listing a compressed tar decompresses all of it: refuse big ones before that


def decode_image(data: bytes, name: str, size=None) -> torch.Tensor:
    """RGB uint8 (3, H, W) from encoded bytes; `size` (h, w) resizes; errors name the file."""
    try:
        img = Image.open(io.BytesIO(data)).convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"'{name}' is not a readable image ({e}); remove or replace it") from None
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    return pil_to_tensor(img)


def cache_dir() -> Path:
    return Path(os.environ.get("DANLU_CACHE", Path.home() / ".cache" / "danlu"))


def _cache_file(key: str, kind: str) -> Path:
    return cache_dir() / f"{kind}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _save_npz(path: Path, arrays: dict) -> None:
    """Written under a per-process name and renamed, so a reader (or another rank) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _cached(key: str, build) -> dict:
    """`build()`'s {split: ImageIndex}, read back from the cache file for `key` when there is one."""
    path = _cache_file(key, "index")
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {str(s): ImageIndex(str(z[f"{s}.root"]), [str(c) for c in z[f"{s}.classes"]], z[f"{s}.names"],
                                       z[f"{s}.labels"], z.get(f"{s}.offsets"), z.get(f"{s}.sizes"), key)
                    for s in z["splits"]}
    indexes = build()
    arrays = {"splits": np.array(list(indexes))}
    for s, ix in indexes.items():
        arrays.update({f"{s}.root": np.array(ix.root), f"{s}.classes": np.array(ix.classes),
                       f"{s}.names": ix.names, f"{s}.labels": ix.labels})
        if ix.offsets is not None:
            arrays.update({f"{s}.offsets": ix.offsets, f"{s}.sizes": ix.sizes})
    _save_npz(path, arrays)
    return {s: replace(ix, key=key) for s, ix in indexes.items()}


def natural_key(name: str):
    """timm's sort order for class folders and files (`class2` before `class10`, case ignored); ties
    broken by the name itself, so that the order never depends on the file system's listing."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name.lower())], name


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _scan_folder(split_dir: Path) -> ImageIndex:
    class_dirs = sorted(((e.name, e.path) for e in os.scandir(split_dir) if e.is_dir()),
                        key=lambda d: natural_key(d[0]))
    if not class_dirs:
        raise ValueError(f"'{split_dir}' holds no class folders; lay the images out as <split>/<class>/<image>")
    names, empty = [], []
    for cls, path in class_dirs:
        files = sorted((e.name for e in os.scandir(path) if e.is_file() and _is_image(e.name)), key=natural_key)
        names.append(np.array([os.fsencode(f"{cls}/{f}") for f in files], dtype=bytes))
        if not files:
            empty.append(path)
    counts = [len(n) for n in names]
    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    if not sum(counts):
        raise ValueError(f"'{split_dir}' holds no images ({suffixes}) in its class folders")
    if empty:
        raise ValueError(f"class folder '{empty[0]}' holds no images ({suffixes}); remove it or add images"
                         + (f" (and {len(empty) - 1} more empty class folders)" if len(empty) > 1 else ""))
    return ImageIndex(str(split_dir), [c for c, _ in class_dirs], np.concatenate(names),
                      np.repeat(np.arange(len(counts), dtype=np.int32), counts))


def index_folder(split_dir: str | os.PathLike) -> ImageIndex:
    """The images of one split folder `<split>/<class>/<image>`, classes and files in natural order (cached)."""
    split_dir = Path(split_dir).resolve()
    stamps = sorted(f"{e.name}:{e.stat().st_mtime_ns}" for e in os.scandir(split_dir) if e.is_dir())
    key = f"folder-v1|{split_dir}|{split_dir.stat().st_mtime_ns}|{'|'.join(stamps)}"
    return _cached(key, lambda: {split_dir.name: _scan_folder(split_dir)})[split_dir.name]


def _scan_tar(path: Path) -> dict:
    members, name = {}, None  # {split: {class: [(name, offset, size)]}}
    try:
        with tarfile.open(path) as tar:
            while (info := tar.next()) is not None:
                name = info.name
                parts = PurePosixPath(name).parts
                if info.isfile() and len(parts) >= 3 and _is_image(name):
                    members.setdefault(parts[-3], {}).setdefault(parts[-2], []).append(
                        (os.fsencode(name), info.offset_data, info.size))
                tar.members.clear()  # tarfile keeps every TarInfo: millions of them on ImageNet
    except (tarfile.TarError, OSError, EOFError) as e:
        where = f" after member '{name}'" if name else ""
        raise ValueError(f"'{path}' is not a readable tar file ({e}){where}; it may be truncated: "
                         "copy or download it again") from None
    indexes = {}
    for split, groups in sorted(members.items()):
        classes = sorted(groups, key=natural_key)
        rows = [(n, o, s, label) for label, c in enumerate(classes)
                for n, o, s in sorted(groups[c], key=lambda m: natural_key(os.fsdecode(m[0])))]
        names, offsets, sizes, labels = zip(*rows)
        indexes[split] = ImageIndex(str(path), classes, np.array(names, dtype=bytes), np.array(labels, np.int32),
                                    np.array(offsets, np.int64), np.array(sizes, np.int64))
    return indexes


def _index_tar(path: Path) -> dict:
    path = path.resolve()
    st = path.stat()
    return _cached(f"tar-v1|{path}|{st.st_size}|{st.st_mtime_ns}", lambda: _scan_tar(path))


def index_split(source: str | os.PathLike, split: str) -> ImageIndex:
    """Split `split` of an image-folder tree or tar file (.tar; compressed ones read slowly)."""
    source = Path(source)
    if source.is_dir():
        if not (source / split).is_dir():
            raise FileNotFoundError(f"'{source}' has no '{split}' folder; pass the folder holding "
                                    f"{split}/<class>/<image>")
        return index_folder(source / split)
    indexes = _index_tar(source)
    if split not in indexes:
        raise FileNotFoundError(f"'{source}' has no images under '{split}/<class>/'; it holds the splits "
                                f"{sorted(indexes) or 'none'}")
    return indexes[split]


def _train_and_val(source: Path):
    """(training index, validation index or None), labelled with the classes of both in natural order."""
    splits = (sorted(e.name for e in os.scandir(source) if e.is_dir()) if source.is_dir()
              else sorted(_index_tar(source)))
    if not splits:
        raise ValueError(f"'{source}' holds no images laid out as <split>/<class>/<image>")
    train_name = "train" if "train" in splits else splits[0]
    val_name = next((n for n in _VAL_NAMES if n in splits and n != train_name), None)
    train = index_split(source, train_name)
    val = index_split(source, val_name) if val_name else None
    classes = sorted(set(train.classes) | set(val.classes if val else ()), key=natural_key)
    return _relabel(train, classes), val and _relabel(val, classes)


def _relabel(index: ImageIndex, classes: list) -> ImageIndex:
    if index.classes == classes:
        return index
    lookup = np.array([classes.index(c) for c in index.classes], np.int32)
    return replace(index, classes=classes, labels=lookup[index.labels])


def _looks_small(files: FileImageDataset) -> bool:
    """CIFAR/MNIST-like: see SMALL_COUNT and SMALL_SIDE."""
    if len(files) > SMALL_COUNT:
        return False
    for i in range(len(files)):
        try:
            with files.open_image(i) as img:
                return max(img.size) <= SMALL_SIDE
        except OSError:
            continue
    return True  # nothing readable: decoding into memory names the first bad file


def _decode_split(index: ImageIndex, img_size) -> TensorImageDataset:
    files = FileImageDataset(index)
    # in stream order: a compressed tar is read forwards only, never rewound
    order = np.argsort(index.offsets, kind="stable") if index.offsets is not None else range(len(index))
    images = [None] * len(index)
    for i in order:
        images[i] = decode_image(files.read_bytes(i), index.path(i), img_size)
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        raise ValueError(f"images in '{index.root}' have different sizes {sorted(shapes)[:3]}...; "
                         "pass img_size (--img-size) to resize them while loading")
    return TensorImageDataset(torch.stack(images), torch.from_numpy(index.labels.astype(np.int64)))


def _in_memory(train: ImageIndex, val: ImageIndex | None, img_size):
    """Decoded (train, val) TensorImageDatasets, from the pixel cache when it has them."""
    path = _cache_file(f"{train.key}|{val.key if val else ''}|{img_size}", "pixels")
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return tuple(TensorImageDataset(torch.from_numpy(z[f"{s}_x"]), torch.from_numpy(z[f"{s}_y"]))
                         if f"{s}_x" in z else None for s in ("train", "val"))
    sets = {"train": _decode_split(train, img_size), "val": _decode_split(val, img_size) if val else None}
    _save_npz(path, {k: v for s, d in sets.items() if d for k, v in
                     ((f"{s}_x", d.images.numpy()), (f"{s}_y", d.labels.numpy()))})
    return sets["train"], sets["val"]


def bundle_from_folder(source: str | os.PathLike, img_size: tuple | None = None, meta: dict | None = None,
                       in_memory: bool | None = True) -> DataBundle:
    """The training split ('train', else the first) and validation split (test, val, ...) of an image
    folder tree or tar file. `in_memory`: True decodes every image into uint8 tensors (one size, or
    resized to `img_size` (h, w)); False streams the files (FileImageDataset, input_size (3, None, None),
    ImageNet's mean and std unless `meta` says otherwise); None chooses, see SMALL_COUNT."""
    source = Path(source)
    compressed = source.is_file() and source.name.lower().endswith(_COMPRESSED)
    streaming_refused = (f"'{source}' is a compressed tar file, whose images cannot be read one at a time; "
                         "extract it and pass the folder, or write tar shards from it (danlu shards)")
    if compressed and in_memory is not True and (in_memory is False or source.stat().st_size > _MAX_COMPRESSED):
        raise ValueError(streaming_refused)
    train, val = _train_and_val(source)
    if in_memory is None:
        in_memory = _looks_small(FileImageDataset(train))
        if compressed and not in_memory:
            raise ValueError(streaming_refused)
    if in_memory:
        train_set, val_set = _in_memory(train, val, img_size)
        return DataBundle(train=train_set, test=val_set, classes=train.classes,
                          input_size=tuple(train_set.images.shape[1:]),
                          meta=meta or {"mean": (0.5,) * 3, "std": (0.5,) * 3})
    return DataBundle(train=FileImageDataset(train), test=FileImageDataset(val) if val else None,
                      classes=train.classes, input_size=(3, None, None),
                      meta=meta or {"mean": IMAGENET_MEAN, "std": IMAGENET_STD})


@register_dataset("image-folder")
def image_folder(root=None, download=False, img_size=None, in_memory: bool | None = None) -> DataBundle:
    if root is None or not Path(root).exists():
        raise FileNotFoundError(f"image-folder: '{root}' does not exist; give --data-dir a folder or .tar(.gz) "
                                "laid out as <split>/<class>/<image>")
    return bundle_from_folder(root, img_size, in_memory=in_memory)
