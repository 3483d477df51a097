"""Image-folder trees `<split>/<class>/<image>`, as a directory or inside a .tar/.tar.gz file.

Decoding tens of thousands of JPEGs takes a while, so the decoded uint8 arrays are cached in
`$DANLU_CACHE` (default ~/.cache/danlu), keyed by the source's path, size and modification time."""
import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .datasets import TensorImageDataset
from .registry import DataBundle, register_dataset

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_VAL_NAMES = ("test", "val", "valid", "validation")


def decode_image(data, name, size=None):
    """RGB uint8 (3, H, W) from encoded bytes; `size` (h, w) resizes; errors name the file."""
    try:
        img = Image.open(io.BytesIO(data)).convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"'{name}' is not a readable image ({e}); remove or replace it") from None
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


def _members(source):
    """{(split, class): [(name, bytes-loader), ...]} from a directory or a tarball."""
    source = Path(source)
    groups = {}
    if source.is_dir():
        for path in sorted(source.glob("*/*/*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                split, cls = path.parts[-3], path.parts[-2]
                groups.setdefault((split, cls), []).append((str(path), path.read_bytes))
        return groups
    try:
        tar = tarfile.open(source)
        infos = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ValueError(f"'{source}' is not a readable tar archive ({e}); it may be truncated: download it again") from None
    for info in infos:
        parts = Path(info.name).parts
        if info.isfile() and len(parts) >= 3 and Path(info.name).suffix.lower() in IMAGE_SUFFIXES:
            groups.setdefault((parts[-3], parts[-2]), []).append(
                (f"{source}:{info.name}", lambda info=info: tar.extractfile(info).read()))
    return groups


def _cache_path(source, img_size):
    st = Path(source).stat()
    key = hashlib.sha1(f"{Path(source).resolve()}|{st.st_size}|{st.st_mtime_ns}|{img_size}".encode()).hexdigest()[:16]
    return Path(os.environ.get("DANLU_CACHE", Path.home() / ".cache" / "danlu")) / f"folder-{key}.npz"


def load_image_folder(source, img_size=None):
    """{split: TensorImageDataset} and the sorted class names of an image-folder tree or tarball."""
    cache = _cache_path(source, img_size)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            classes = [str(c) for c in z["classes"]]
            splits = {s: TensorImageDataset(torch.from_numpy(z[f"{s}_x"]), torch.from_numpy(z[f"{s}_y"]))
                      for s in (str(s) for s in z["splits"])}
        return splits, classes
    groups = _members(source)
    if not groups:
        raise ValueError(f"'{source}' holds no images laid out as <split>/<class>/<image>")
    classes = sorted({cls for _, cls in groups})
    splits = {}
    for split in sorted({s for s, _ in groups}):
        images, labels = [], []
        for label, cls in enumerate(classes):
            for name, read in groups.get((split, cls), []):
                images.append(decode_image(read(), name, img_size))
                labels.append(label)
        shapes = {tuple(x.shape) for x in images}
        if len(shapes) > 1:
            raise ValueError(f"images in '{source}' ({split}) have different sizes {sorted(shapes)[:3]}...; "
                             "pass img_size (--img-size) to resize them while loading")
        splits[split] = TensorImageDataset(torch.stack(images), torch.tensor(labels))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, classes=np.array(classes), splits=np.array(list(splits)),
             **{f"{s}_x": d.images.numpy() for s, d in splits.items()},
             **{f"{s}_y": d.labels.numpy() for s, d in splits.items()})
    os.replace(tmp, cache)
    return splits, classes


def bundle_from_folder(source, img_size=None, meta=None):
    splits, classes = load_image_folder(source, img_size)
    train_name = "train" if "train" in splits else sorted(splits)[0]
    test_name = next((n for n in _VAL_NAMES if n in splits), None)
    train = splits[train_name]
    return DataBundle(train=train, test=splits[test_name] if test_name else None, classes=classes,
                      input_size=tuple(train.images.shape[1:]), meta=meta or {"mean": (0.5,) * 3, "std": (0.5,) * 3})


@register_dataset("image-folder")
def image_folder(root=None, download=False, img_size=None):
    if root is None or not Path(root).exists():
        raise FileNotFoundError(f"image-folder: '{root}' does not exist; give --data-dir a folder or .tar(.gz) "
                                "laid out as <split>/<class>/<image>")
    return bundle_from_folder(root, img_size)
