"""`danlu train` on a streamed image folder and on tar shards with the DeiT augmentations, end to end:
evaluate reproduces the run's own metrics, resume is exact, and bad input gets one sentence."""
import csv

import numpy as np
import pytest
from image_tree import write_image_tree
from safetensors.torch import load_file

from danlu.cli import main
from danlu.engine.checkpoint import resolve_checkpoint

DEIT = ["--model", "deit_tiny_patch16_224", "--img-size", "32", "--batch-size", "4", "--augment", "imagenet",
        "--auto-augment", "rand-m9-mstd0.5-inc1", "--mixup", "0.8", "--cutmix", "1.0", "--reprob", "0.25",
        "--label-smoothing", "0.1", "--model-ema", "--model-ema-decay", "0.9", "--repeated-aug", "--drop-path", "0.1",
        "--lr", "1e-3", "--warmup-epochs", "1", "--warmup-lr", "1e-5", "--no-progress"]
NO_SCHEDULE = ["--schedule", "none", "--warmup-epochs", "0"]  # a schedule spans the run: 1 epoch != half of 2


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_image_tree(tmp_path_factory.mktemp("tree"), train=6)


def _last_row(run):
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))[-1]


def test_streamed_folder_trains_evaluates_and_resumes_exactly(tree, tmp_path, capsys):
    out = str(tmp_path)
    common = ["train", "--dataset", "image-folder", "--data-dir", str(tree), "--workers", "1", "--out", out, *DEIT,
              *NO_SCHEDULE]
    assert main([*common, "--epochs", "2", "--name", "straight"]) == 0
    assert main([*common, "--epochs", "1", "--name", "split"]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--epochs", "2"]) == 0
    straight, resumed = (load_file(str(resolve_checkpoint(tmp_path / n) / f)) for n in ("straight", "split")
                         for f in ("model.safetensors",))
    assert all(np.array_equal(straight[k].numpy(), resumed[k].numpy()) for k in straight)
    row = _last_row(tmp_path / "straight")
    assert {"val_ema_acc1", "val_ema_loss"} <= set(row)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "straight")]) == 0
    printed = capsys.readouterr().out
    assert f"loss={float(row['val_loss']):.4f}, acc1={float(row['val_acc1']):.4f}" in printed


def test_shards_written_by_the_command_train(tree, tmp_path, capsys):
    shards = tmp_path / "shards"
    assert main(["shards", str(tree), str(shards), "--maxcount", "7"]) == 0
    assert main(["shards", str(tree), str(shards), "--split", "val"]) == 0
    assert "wrote 1 shard(s) of 'val'" in capsys.readouterr().out
    assert sorted(p.name for p in shards.iterdir()) == ["train-000000.tar", "train-000001.tar", "train-000002.tar",
                                                       "train.json", "val-000000.tar", "val.json"]
    assert main(["train", "--dataset", "shards", "--data-dir", str(shards), "--epochs", "1", "--out", str(tmp_path),
                 "--name", "run", *DEIT]) == 0
    row = _last_row(tmp_path / "run")
    assert row["epoch"] == "1" and float(row["images_per_s"]) > 0


def test_bad_input_gets_one_sentence(tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    cases = [
        (["--dataset", "image-folder", "--data-dir", str(empty)], "no class folders"),
        (["--auto-augment", "rand-m9-x3", "--augment", "imagenet", "--dataset", "image-folder", "--data-dir",
          str(write_image_tree(tmp_path / "t"))], "unknown RandAugment key 'x'"),
        (["--mixup", "0.8", "--batch-size", "1"], "need a batch size of at least 2"),
        (["--accum-steps", "0"], "accum_steps must be at least 1"),
    ]
    for args, message in cases:
        assert main(["train", "--out", str(tmp_path), *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("danlu: error: ") and message in err and err.count("\n") == 1, err
