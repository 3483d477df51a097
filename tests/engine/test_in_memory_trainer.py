"""The trainer on the in-memory path: the same training as the DataLoader path, resumable bit for bit,
the training images exposed, and a run directory written as often as the config says."""
import os

import pytest
import torch
from safetensors.torch import load_file
from test_trainer import interrupt_training_at

from danlu.data import create_dataset, split_dataset
from danlu.data.datasets import SampleSeeded, Transformed
from danlu.data.in_memory import InMemoryLoader
from danlu.data.transforms import build_transforms
from danlu.engine import TrainConfig, Trainer, build_trainer
from danlu.engine import logger as logger_module
from danlu.engine.checkpoint import BEST, POINTER, STATE, WEIGHTS, load_training_state, resolve_checkpoint
from danlu.models import create_model

QUICK = dict(model="mlp", dataset="digits", max_train_samples=96, batch_size=16, lr=3e-3, progress=False,
             model_kwargs={"hidden": 16})
# crop-flip with reflection and alternating flips, and dropout: every draw of the fast path
AUGMENTED = dict(QUICK, model="simple_cnn", augment="crop-flip", pad_mode="reflect", crop_padding=2,
                 flip_mode="alternate", model_kwargs={"widths": [4, 4, 4], "hidden": 8, "drop_rate": 0.3})


def _weights(run_dir):
    return load_file(str(resolve_checkpoint(run_dir) / "model.safetensors"))


def test_in_memory_batches_train_exactly_as_the_per_sample_dataloader_path(tmp_path):
    cfg = TrainConfig(**QUICK, epochs=2, schedule="none", out=str(tmp_path), name="fast")
    fast = build_trainer(cfg)
    assert isinstance(fast.train_loader, InMemoryLoader) and isinstance(fast.val_loader, InMemoryLoader)
    fast.fit()
    # what build_data gave before: per-sample uint8 -> float -> normalise in the loader, per-sample seeds
    bundle = create_dataset("digits")
    train, val = split_dataset(bundle.train, 0.2, cfg.seed)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))
    train = torch.utils.data.Subset(train, sorted(order[:cfg.max_train_samples].tolist()))
    pipeline = build_transforms(8, bundle.meta["mean"], bundle.meta["std"], "none")
    torch.manual_seed(cfg.seed)
    model = create_model("mlp", **fast.model_info["model_kwargs"])
    slow = Trainer(model, SampleSeeded(Transformed(train, pipeline)), Transformed(val, pipeline), cfg,
                   model_info=fast.model_info)
    assert isinstance(slow.train_loader, torch.utils.data.DataLoader)
    slow.fit()
    for k, v in _weights(fast.run_dir).items():
        assert torch.equal(v, slow.model.state_dict()[k]), k
    assert [r["val_loss"] for r in fast.history] == [r["val_loss"] for r in slow.history]
    assert [r["train_loss"] for r in fast.history] == [r["train_loss"] for r in slow.history]


def test_a_run_interrupted_mid_epoch_resumes_to_the_straight_runs_weights(tmp_path, monkeypatch):
    straight = build_trainer(TrainConfig(**AUGMENTED, epochs=2, out=str(tmp_path), name="straight"))
    assert isinstance(straight.train_loader, InMemoryLoader) and straight.train_loader.augment.padding == 2
    straight.fit()
    cut = build_trainer(TrainConfig(**AUGMENTED, epochs=2, out=str(tmp_path), name="cut"))
    interrupt_training_at(monkeypatch, cut, 6 + 4)  # 6 training steps per epoch: stop at step 4 of epoch 2
    with pytest.raises(KeyboardInterrupt, match="interrupted at epoch 2, step 3"):
        cut.fit()
    resumed = build_trainer(TrainConfig(**AUGMENTED, epochs=2, out=str(tmp_path), name="cut"), resume=cut.run_dir)
    assert (resumed.start_epoch, resumed.start_step) == (1, 3)
    resumed.fit()
    a, b = _weights(straight.run_dir), _weights(resumed.run_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("train_loss", "train_acc1", "val_loss"):  # the interrupted epoch's sums continue exactly
        assert [r[key] for r in resumed.history] == [r[key] for r in straight.history]


def test_the_loader_holds_the_training_subsets_images_and_labels_in_its_order(tmp_path):
    trainer = build_trainer(TrainConfig(**QUICK, epochs=1, val_split=0.25, out=str(tmp_path), name="images"))
    digits = create_dataset("digits").train
    split = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0)).tolist()[round(len(digits) / 4):]
    subset = sorted(torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:96].tolist())
    indices = [split[i] for i in subset]
    loader = trainer.train_loader
    assert torch.equal(loader.images, digits.images[indices]) and torch.equal(loader.labels, digits.labels[indices])
    assert loader.images.dtype == torch.uint8 and loader.images.device == trainer.device


def test_epoch_checkpoints_every_n_epochs_the_last_always_and_best_as_links(tmp_path):
    trainer = build_trainer(TrainConfig(**QUICK, epochs=5, checkpoint_interval=2, keep_last=5, out=str(tmp_path),
                                        name="every2"))
    trainer.fit()
    ckpts = trainer.run_dir / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("epoch_*")) == ["epoch_0002", "epoch_0004", "epoch_0005"]
    scores = [r["val_acc1"] for r in trainer.history]
    best = scores.index(max(scores)) + 1
    assert load_training_state(ckpts / "best")["epoch"] == best
    resumed = build_trainer(TrainConfig(**QUICK, epochs=6, out=str(tmp_path), name="every2"), resume=trainer.run_dir)
    assert resumed.start_epoch == 5


@pytest.mark.parametrize("plot_interval, draws", [(None, 1), (2, 2), (1, 3)])
def test_curves_are_drawn_every_plot_interval_epochs_and_at_the_end(tmp_path, monkeypatch, plot_interval, draws):
    drawn = []
    monkeypatch.setattr(logger_module, "plot_curves", lambda rows, path: drawn.append(len(rows)))
    build_trainer(TrainConfig(**QUICK, epochs=3, plot_interval=plot_interval, out=str(tmp_path), name="plots")).fit()
    assert len(drawn) == draws and drawn[-1] == 3


def test_best_shares_the_files_of_the_epoch_checkpoint_written_with_it(tmp_path):
    trainer = build_trainer(TrainConfig(**QUICK, epochs=1, out=str(tmp_path), name="linked"))
    trainer.fit()  # epoch 1 improves on nothing and is the last: written, then best
    ckpts = trainer.run_dir / "checkpoints"
    for file in (WEIGHTS, STATE):
        assert os.stat(ckpts / BEST / file).st_ino == os.stat(ckpts / "epoch_0001" / file).st_ino
    assert (ckpts / POINTER).read_text() == "epoch_0001"


def test_images_trained_at_another_size_than_stored_take_the_dataloader_path(tmp_path):
    resized = build_trainer(TrainConfig(**QUICK, epochs=1, img_size=12, augment="crop-flip", out=str(tmp_path),
                                        name="resized"))
    assert isinstance(resized.train_loader, torch.utils.data.DataLoader)
    assert resized.train_loader.dataset[(0, 1)][0].shape == (1, 12, 12)  # (index, sample seed) keys
    with pytest.raises(ValueError, match="flip_mode 'alternate' flips each image by epoch, which only the in-memory "
                                         "path does: .*; drop --img-size or use --flip-mode random"):
        build_trainer(TrainConfig(**QUICK, epochs=1, img_size=12, augment="flip", flip_mode="alternate",
                                  out=str(tmp_path), name="alternate"))
