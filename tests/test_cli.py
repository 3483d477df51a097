import csv

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from danlu.cli import main


def test_models_table(capsys):
    assert main(["models", "vit_tiny*"]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line[:3] == ["vit_tiny_patch16_224", "5,717,416", "2.507"] and line[3] == "3x224x224"
    assert main(["models", "lstm_classifier"]) == 0  # token ids, not images, for a text model
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line[1] == "355,393" and line[3] == "70"  # (torch's flop counter has no formula for LSTM)


def test_train_evaluate_predict(tmp_path, capsys):
    args = ["train", "--epochs", "2", "--max-train-samples", "400", "--out", str(tmp_path), "--name", "run",
            "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "final: epoch=2" in out and f"run directory: {tmp_path / 'run'}" in out
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "metrics.csv", "metrics.jsonl", "curves.png", "checkpoints"}
    assert main(["evaluate", str(run)]) == 0
    last = list(csv.DictReader(open(run / "metrics.csv")))[-1]  # evaluate reproduces the run's own metrics
    shown = f"loss={float(last['val_loss']):.4f}, acc1={float(last['val_acc1']):.4f}, acc5={float(last['val_acc5']):.4f}"
    assert shown in capsys.readouterr().out
    digits = load_digits()
    path = tmp_path / "digit.png"
    Image.fromarray((digits.images[0] * 255 / 16).astype(np.uint8)).save(path)
    assert main(["predict", str(run), str(path), "--top-k", "3"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(f"{path}: ") and len(printed.split(", ")) == 3


def test_bad_input_gets_one_sentence(tmp_path, capsys):
    assert main(["train", "--model", "vit_smal_patch16_224"]) == 2
    assert "(did you mean vit_small_patch16_224 or" in capsys.readouterr().err
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path)]) == 2
    assert "CIFAR-10: missing cifar-10-python.tar.gz" in capsys.readouterr().err
    assert main(["predict", str(tmp_path)]) == 2
    assert "no checkpoint found" in capsys.readouterr().err


def test_a_flag_turns_off_what_a_recipe_turns_on(capsys):
    assert main(["train", "--recipe", "cifar10_fast", "--print-config"]) == 0
    assert "bf16: true" in capsys.readouterr().out.splitlines()
    assert main(["train", "--recipe", "cifar10_fast", "--no-bf16", "--print-config"]) == 0
    assert "bf16: false" in capsys.readouterr().out.splitlines()
