"""Tar shards in webdataset's layout: `train-000000.tar`, ... holding `KEY.jpg` + `KEY.cls` (the label
in ASCII digits), beside `train.json` with the class names and each shard's sample count.

`write_shards` copies the encoded images of an image-folder split into shards, unchanged;
`ShardDataset` streams them back. It reads them with tarfile, not webdataset's pipeline: here an
epoch's order depends only on (seed, epoch), however many loader workers share it, and a resumed
epoch passes over the samples it had done without reading them; webdataset's per-worker shard split
and stream shuffle buffer give neither."""
import io
import itertools
import json
import math
import os
import posixpath
import random
import tarfile
import warnings
from pathlib import Path

import numpy as np
import torch.distributed as dist
from braceexpand import braceexpand
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from .file_dataset import FileImageDataset, ImageIndex, pil_to_tensor
from .folder import IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD, index_split
from .registry import DataBundle, register_dataset
from .seeding import sample_seeds

_IMAGE_EXTS = {s[1:] for s in IMAGE_SUFFIXES}


def _split_name(name: str):
    """webdataset's (key, extension): the key runs to the first dot of the file name."""
    folder, base = posixpath.split(name)
    stem, _, ext = base.partition(".")
    return posixpath.join(folder, stem), ext


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _tmp(path: Path) -> Path:
    """Where `path` is written before a rename: a reader never finds a half-written file under its name."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _close(tar: tarfile.TarFile, path: Path) -> None:
    tar.close()
    os.replace(_tmp(path), path)


def write_shards(source: str | os.PathLike | ImageIndex, out_dir: str | os.PathLike, split: str = "train",
                 maxcount: int = 10000, maxsize: int | None = None, seed: int = 0) -> list[Path]:
    """Writes split `split` of an image-folder tree or .tar file (or an ImageIndex) to `out_dir` as
    `{split}-000000.tar`, ... of at most `maxcount` samples and, when given, about `maxsize` bytes of
    image data, in an order drawn from `seed` so that every shard mixes the classes; then
    `{split}.json`. Returns the shard paths."""
    if maxcount < 1 or (maxsize is not None and maxsize < 1):
        raise ValueError(f"maxcount and maxsize must be positive, got {maxcount} and {maxsize}")
    index = source if isinstance(source, ImageIndex) else index_split(source, split)
    files, out_dir = FileImageDataset(index), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts, tar, path, size = {}, None, None, 0
    for i in np.random.default_rng(seed).permutation(len(index)).tolist():
        data = files.read_bytes(i)
        if tar is None or counts[path.name] == maxcount or (maxsize and size and size + len(data) > maxsize):
            if tar is not None:
                _close(tar, path)
            path, size = out_dir / f"{split}-{len(counts):06d}.tar", 0
            tar, counts[path.name] = tarfile.open(_tmp(path), "w"), 0  # noqa: SIM115 (see _close)
        stem, suffix = posixpath.splitext(os.fsdecode(index.names[i]))
        key = stem.replace(".", "_")  # webdataset's key ends at the first dot
        _add(tar, f"{key}.{suffix[1:].lower().replace('jpeg', 'jpg')}", data)
        _add(tar, f"{key}.cls", str(int(index.labels[i])).encode())
        counts[path.name], size = counts[path.name] + 1, size + len(data)
    if tar is not None:
        _close(tar, path)
    meta = out_dir / f"{split}.json"
    _tmp(meta).write_text(json.dumps({"classes": list(index.classes), "shards": counts}))
    os.replace(_tmp(meta), meta)
    return [out_dir / name for name in counts]


def _read_counts(urls: list):
    """(class names, sample count of each shard) from the `{split}.json` beside the shards."""
    infos, counts = {}, []
    for url in urls:
        path = Path(url)
        meta = path.with_name(f"{path.name.rsplit('-', 1)[0]}.json")
        if meta not in infos:
            if not meta.is_file():
                raise FileNotFoundError(f"'{meta}', the class names and counts of shard '{url}', does not exist; "
                                        "write the shards with write_shards (danlu shards)")
            infos[meta] = json.loads(meta.read_text())
        if path.name not in infos[meta]["shards"]:
            raise ValueError(f"shard '{url}' is not listed in '{meta}'; write the shards again")
        counts.append(infos[meta]["shards"][path.name])
    classes = [info["classes"] for info in infos.values()]
    if any(c != classes[0] for c in classes):
        raise ValueError(f"the shards' JSON files {sorted(map(str, infos))} list different classes; "
                         "pass shards of one data set")
    return classes[0], np.array(counts, np.int64)


def _buffer_order(n: int, size: int, rng: np.random.Generator) -> list:
    """The order in which a shuffle buffer of `size` items emits a stream of n: each arriving item takes
    the place of a random buffered one, which is emitted (webdataset's `shuffle` stage), then the rest."""
    buffer = list(range(min(size, n)))
    out = []
    for p, k in zip(range(size, n), rng.integers(0, size, max(n - size, 0)).tolist()):
        out.append(buffer[k])
        buffer[k] = p
    rng.shuffle(buffer)
    return out + buffer


def _shard_samples(url: str, wanted: set):
    """(i, (where, image bytes, label)) for each sample number i in `wanted` of shard `url`, in order;
    other samples are passed over unread. Samples that a shard ending early lacks come as (i, None)."""
    left, error, member = set(wanted), None, None
    try:
        with tarfile.open(url) as tar:
            key, parts, i = None, {}, -1
            for info in tar:
                if not info.isfile():
                    continue
                member = info.name
                name_key, ext = _split_name(member)
                if name_key != key or ext in parts:  # a new sample starts
                    if i in left:
                        left.discard(i)
                        yield i, _sample(url, key, parts)
                    if not left:
                        return
                    key, parts, i = name_key, {}, i + 1
                if i in left:
                    parts[ext] = tar.extractfile(info).read()
            if i in left:
                left.discard(i)
                yield i, _sample(url, key, parts)
    except (tarfile.TarError, OSError, EOFError) as e:
        error = e
    if left:
        warnings.warn(f"shard '{url}' ends early" + (f" in or after member '{member}'" if member else "")
                      + f" ({error or 'fewer samples than its JSON file lists'}); its {len(left)} missing "
                      "samples are replaced by others")
        yield from ((i, None) for i in sorted(left))


def _sample(url: str, key: str, parts: dict):
    image = next((parts[e] for e in parts if e.lower() in _IMAGE_EXTS), None)
    label = parts.get("cls", b"").strip()
    return f"{url}:{key}", image, int(label) if label.isdigit() else None


class ShardDataset(IterableDataset):
    """`(transform(image), label)` samples streamed from tar shards: `urls` a list of paths or a brace
    pattern such as `train-{000000..000146}.tar`; `transform` (PIL image -> tensor) decodes, and
    without one the image comes as uint8 (3, H, W) at its own size.

    An epoch (`set_epoch`) concatenates the shards in an order drawn from (seed, epoch) and cuts the
    stream into one contiguous part per process (torch.distributed's rank, or `rank` / `world_size`),
    of `len(self)` samples each, the last part wrapping round to the first samples so that every
    process takes the same number of steps. A part is shuffled by a buffer of `buffer` samples (drawn
    from (seed, epoch, rank)), and Python's `random` is seeded before each sample's transform from
    (seed, epoch, stream position). DataLoader workers take `batch_size` samples in turn, so a loader
    with that batch size yields the one-process order. An unreadable sample is replaced, with a
    warning, by the worker's previous readable one (or, at the start, by the next)."""

    def __init__(self, urls, seed: int = 0, transform=None, *, buffer: int = 2000, batch_size: int = 1,
                 rank: int | None = None, world_size: int | None = None):
        self.urls = list(braceexpand(os.fspath(urls))) if isinstance(urls, (str, os.PathLike)) else list(map(str, urls))
        missing = [u for u in self.urls if not os.path.isfile(u)]
        if not self.urls or missing:
            raise FileNotFoundError(f"shard '{missing[0]}' does not exist" if missing else f"no shards in {urls!r}")
        if buffer < 1 or batch_size < 1:
            raise ValueError(f"buffer and batch_size must be positive, got {buffer} and {batch_size}")
        if (rank is None) != (world_size is None) or (rank is not None and not 0 <= rank < world_size):
            raise ValueError(f"pass both rank and world_size, with 0 <= rank < world_size (got {rank} and "
                             f"{world_size}), or neither to take them from torch.distributed")
        self.classes, self.counts = _read_counts(self.urls)
        self.seed, self.transform, self.buffer, self.batch_size = seed, transform, buffer, batch_size
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0
        self.bad = 0  # unreadable samples met in this process

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's order; `start` is the number of this process's samples already done."""
        self.epoch, self.start = epoch, start

    def _placement(self):
        """(rank, world size, samples per rank)."""
        if self.rank is not None:
            rank, world = self.rank, self.world_size
        elif dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
        else:
            rank, world = 0, 1
        return rank, world, math.ceil(int(self.counts.sum()) / world)

    def __len__(self) -> int:
        return max(self._placement()[2] - self.start, 0)

    def __iter__(self):
        rank, _, n = self._placement()
        first = rank * n  # this rank's part: stream positions first .. first + n - 1, modulo the total
        emitted = _buffer_order(n, self.buffer, np.random.default_rng([self.seed, self.epoch, rank]))
        worker = get_worker_info()
        wid, workers = (worker.id, worker.num_workers) if worker else (0, 1)
        mine = [emitted[j] for j in range(self.start, n) if (j - self.start) // self.batch_size % workers == wid]
        seeds = sample_seeds(self.seed, self.epoch, range(first, first + n))
        samples, pending = self._read(sorted(mine), first), {}
        good, owed = None, []  # the last readable sample; seeds of samples still to be replaced
        for q in mine:
            while q not in pending:
                got, raw = next(samples)
                pending[got] = raw
            raw = pending.pop(q)
            item = self._decode(raw, seeds[q]) if raw else None
            if item is None and good is None:
                owed.append(seeds[q])
                continue
            if item is None:
                item = self._decode(good, seeds[q])
            else:
                good = raw
            yield item
            yield from (self._decode(good, s) for s in owed)
            owed = []
        if owed:
            raise ValueError(f"none of the {len(owed)} samples this worker read from {len(self.urls)} shards "
                             f"({self.urls[0]}, ...) can be read; check the shards")

    def _read(self, positions: list, first: int):
        """(q, raw sample or None) for each of this rank's ascending positions q, reading each shard once."""
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.urls))
        starts = np.concatenate([[0], np.cumsum(self.counts[order])])  # each shard's first stream position
        total = int(starts[-1])

        def shard(q):  # (shard slot, lap): a part that wraps round reads its first shards a second time
            p = (first + q) % total
            return int(np.searchsorted(starts, p, side="right") - 1), (first + q) // total

        for (slot, _), qs in itertools.groupby(positions, key=shard):
            wanted = {(first + q) % total - int(starts[slot]): q for q in qs}
            for i, raw in _shard_samples(self.urls[order[slot]], set(wanted)):
                yield wanted[i], raw

    def _decode(self, raw, seed: int):
        """(transform(image), label), or None with a warning when the sample cannot be read."""
        where, data, label = raw
        random.seed(seed)
        try:
            if data is None or label is None:
                raise OSError("it lacks an image or a valid .cls member")
            with Image.open(io.BytesIO(data)) as img:
                return (self.transform(img) if self.transform else pil_to_tensor(img)), label
        except OSError as e:
            self.bad += 1
            warnings.warn(f"skipping unreadable sample '{where}' ({e}); {self.bad} unreadable so far in this process")
            return None


@register_dataset("shards")
def shards(root=None, download=False, train="train", val="val"):
    """Tar shards written by `write_shards` (`danlu shards`): `{train}-*.tar` and `{val}-*.tar`, each with
    its JSON, in `root`. A stream cannot hold out a validation split, so the validation shards are needed."""
    root = Path(root) if root else None
    if root is None or not root.is_dir():
        raise FileNotFoundError(f"shards: '{root}' is not a folder; give --data-dir the folder that danlu shards wrote")

    def split(name):
        urls = sorted(str(p) for p in root.glob(f"{name}-*.tar"))
        return ShardDataset(urls) if urls else None

    train_set, val_set = split(train), split(val)
    if train_set is None:
        raise FileNotFoundError(f"shards: no {train}-*.tar in '{root}'; write them with danlu shards SRC {root}")
    if val_set is None:
        raise FileNotFoundError(f"shards: no {val}-*.tar in '{root}'; a stream cannot hold out a validation split, "
                                f"so write the validation shards too (danlu shards SRC {root} --split {val})")
    return DataBundle(train=train_set, test=val_set, classes=train_set.classes, input_size=(3, None, None),
                      meta={"mean": IMAGENET_MEAN, "std": IMAGENET_STD})
