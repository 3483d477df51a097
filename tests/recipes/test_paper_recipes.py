"""The papers' training recipes: each holds its paper's command, and each trains 3 steps on a small
streamed ImageNet-like tree with its exact settings but for the image size and the batch."""
import math

import pytest
import torch
from image_tree import write_image_tree

from danlu.engine import build_trainer
from danlu.engine.config import list_recipes, resolve_config

# recipe: image size for the 3-step run (the smallest each architecture accepts comfortably)
PAPER_RECIPES = {"deit_tiny": 32, "deit_small": 32, "tnt_s": 32, "ptnt_ti": 64, "ptnt_s": 64,
                 "ptnt_m": 64, "ptnt_b": 64, "parc_convnext_xt": 64, "parcnet_s": 64}
SLOW = {"ptnt_m", "ptnt_b"}  # 85M and 157M parameters: most of their time is the optimizer and EMA copies


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_image_tree(tmp_path_factory.mktemp("imagenet-like"))


def test_recipes_carry_the_papers_commands():
    assert set(PAPER_RECIPES) <= set(list_recipes())
    ptnt = resolve_config("ptnt_s")
    official = {"model": "ptnt_s_patch16_256", "optimizer": "adamw", "optimizer_kwargs": {"eps": 1e-8}, "lr": 1e-3,
                "lr_base_batch": 1024, "batch_size": 128, "weight_decay": 0.05, "schedule": "cosine",
                "warmup_epochs": 20, "warmup_lr": 1e-6, "mixup": 0.8, "cutmix": 1.0, "model_ema": True,
                "model_ema_decay": 0.99996, "auto_augment": "rand-m9-mstd0.5-inc1", "color_jitter": 0.4,
                "repeated_aug": True, "remode": "pixel", "reprob": 0.25, "fp16": True, "drop_path": 0.1,
                "label_smoothing": 0.1, "augment": "imagenet", "dataset": "image-folder"}
    assert {k: getattr(ptnt, k) for k in official} == official
    assert resolve_config("tnt_s").warmup_epochs == 5 and resolve_config("tnt_s").model == "tnt_s_patch16_224"
    deit = resolve_config("deit_small")
    assert (deit.lr, deit.lr_base_batch, deit.warmup_epochs, deit.min_lr, deit.train_interpolation) == \
        (5e-4, 512, 5, 1e-5, "bicubic")
    convnext = resolve_config("parc_convnext_xt")
    assert convnext.batch_size * 8 * convnext.accum_steps == convnext.lr_base_batch == 4096
    parcnet = resolve_config("parcnet_s")
    assert (parcnet.lr, parcnet.weight_decay, parcnet.epochs, parcnet.model_ema) == (4e-3, 0.025, 300, True)


def test_a_recipe_option_is_overridden_by_the_command_line():
    assert resolve_config("ptnt_s", lr=5e-4).lr == 5e-4
    with pytest.raises(ValueError, match=r"unknown recipe 'ptnt_x' \(did you mean ptnt_s or ptnt_m or ptnt_b\?\); known: "):
        resolve_config("ptnt_x")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in PAPER_RECIPES])
def test_recipe_trains_3_steps(name, tree, tmp_path):
    # loader workers do not change what is trained (samples carry their own seeds): none here, for speed
    cfg = resolve_config(name, data_dir=str(tree), img_size=PAPER_RECIPES[name], batch_size=4, max_train_samples=12,
                         workers=0, out=str(tmp_path), name=name, progress=False)
    trainer = build_trainer(cfg)
    assert len(trainer.train_loader) == 3
    metrics, _, seen = trainer._train_epoch(0)
    assert seen == 12 and math.isfinite(metrics["loss"])
    raw, ema = trainer.model.state_dict(), trainer.ema.module.state_dict()
    assert any(not torch.equal(raw[k], ema[k]) for k in raw if raw[k].is_floating_point())
