import json
import random
import tarfile
from collections import Counter

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from danlu.data.shards import ShardDataset, write_shards

N, CLASSES = 22, ["bird", "cat", "dog"]


@pytest.fixture
def shards(tmp_path, monkeypatch):
    """22 tiny PNGs (image k has red value 10 * k, class k % 3) written as shards of 5: 5, 5, 5, 5, 2."""
    monkeypatch.setenv("DANLU_CACHE", str(tmp_path / "cache"))
    for k in range(N):
        path = tmp_path / "data" / "train" / CLASSES[k % 3] / f"img.{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (6, 4), (10 * k, 0, 0)).save(path)
    write_shards(tmp_path / "data", tmp_path / "shards", maxcount=5, seed=0)
    return tmp_path / "shards"


ALL = sorted((k, k % 3) for k in range(N))
PATTERN = "train-{000000..000004}.tar"


def _ids(items):
    return [(int(x[0, 0, 0]) // 10, int(y)) for x, y in items]


def _loader(ds, workers=2):
    return [(x, y) for xs, ys in DataLoader(ds, batch_size=ds.batch_size, num_workers=workers)
            for x, y in zip(xs, ys)]


def _with_random(img):
    return torch.tensor([[[img.getpixel((0, 0))[0], random.random()]]])


def test_shards_hold_every_image_once_with_its_label(shards, tmp_path):
    meta = json.loads((shards / "train.json").read_text())
    assert meta == {"classes": CLASSES, "shards": {f"train-{i:06d}.tar": n for i, n in enumerate([5, 5, 5, 5, 2])}}
    assert sorted(p.name for p in shards.iterdir()) == sorted(meta["shards"]) + ["train.json"]  # no temporaries
    members = {}
    for name in meta["shards"]:
        with tarfile.open(shards / name) as tar:
            members.update({m.name: tar.extractfile(m).read() for m in tar})
    # the key drops the dots of the file name (webdataset's key ends at the first one)
    assert sorted(members) == sorted(f"{CLASSES[k % 3]}/img_{k}.{ext}" for k in range(N) for ext in ("cls", "png"))
    assert all(members[f"{CLASSES[k % 3]}/img_{k}.cls"] == str(k % 3).encode() for k in range(N))
    one_each = write_shards(tmp_path / "data", tmp_path / "small", maxsize=1)  # every image is over 1 byte
    assert len(one_each) == N and sum(json.loads((tmp_path / "small/train.json").read_text())["shards"].values()) == N


def test_an_epoch_reads_every_sample_once_across_2_ranks_x_2_workers(shards):
    orders = []
    for epoch in (0, 1):
        seen = []
        for rank in (0, 1):
            ds = ShardDataset(str(shards / PATTERN), seed=3, buffer=4, batch_size=2, rank=rank, world_size=2)
            ds.set_epoch(epoch)
            loaded = _ids(_loader(ds))
            assert len(loaded) == len(ds) == N // 2
            assert loaded == _ids(ds)                  # the workers' batches in turn give the one-process order
            seen += loaded
        assert sorted(seen) == ALL
        orders.append(seen)
    assert orders[0] != orders[1]                      # a new shard order and buffer shuffle each epoch


def test_set_epoch_start_resumes_with_the_tail_of_the_same_sequence(shards):
    ds = ShardDataset(sorted(shards.glob("train-*.tar")), seed=5, transform=_with_random, buffer=3, batch_size=2)
    ds.set_epoch(2)
    full = list(ds)
    assert len(full) == len(ds) == N
    ds.set_epoch(2, start=7)
    assert len(ds) == N - 7
    tail = list(ds)                                    # images and per-sample random draws alike
    assert len(tail) == N - 7 and all(torch.equal(a[0], b[0]) for a, b in zip(tail, full[7:]))
    ds.set_epoch(2, start=4)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(_loader(ds), full[4:], strict=True))


def test_ranks_take_equal_parts_wrapping_round(shards):
    parts = [ShardDataset(str(shards / PATTERN), seed=1, rank=r, world_size=3) for r in range(3)]
    counts = Counter(s for ds in parts for s in _ids(ds))
    assert [len(ds) for ds in parts] == [8, 8, 8]      # ceil(22 / 3): two samples are seen twice
    assert sorted(counts) == ALL and sum(counts.values()) == 24 and max(counts.values()) == 2


def test_a_shard_cut_short_warns_and_the_epoch_goes_on(shards):
    with tarfile.open(shards / "train-000002.tar") as tar:
        members = tar.getmembers()                     # png, cls of each sample in turn
    lost = [int(m.name.split("_")[1].split(".")[0]) for m in members[4::2]]  # from the third sample on
    data = (shards / "train-000002.tar").read_bytes()
    (shards / "train-000002.tar").write_bytes(data[:members[4].offset_data + 10])
    ds = ShardDataset(str(shards / PATTERN), seed=0, buffer=4)
    with pytest.warns(UserWarning, match=r"train-000002.tar' ends early in or after member '.*img_\d+.png'"):
        got = _ids(ds)
    assert len(got) == N and len(lost) == 3            # every position still yields a sample
    assert sorted(set(got)) == sorted(set(ALL) - {(k, k % 3) for k in lost})


def test_missing_shards_and_metadata_are_named(shards):
    with pytest.raises(FileNotFoundError, match="train-000009.tar' does not exist"):
        ShardDataset(str(shards / "train-{000004,000009}.tar"))
    (shards / "train.json").unlink()
    with pytest.raises(FileNotFoundError, match="train.json'.* does not exist; write the shards"):
        ShardDataset(str(shards / PATTERN))
