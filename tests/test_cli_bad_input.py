import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from danlu.cli import main
from danlu.engine.checkpoint import resolve_checkpoint

QUICK = ["--epochs", "1", "--max-train-samples", "64", "--batch-size", "16", "--model-kwargs", "{hidden: 8}",
         "--no-progress", "--schedule", "none"]


def _error(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("danlu: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "epochs must be at least 1, got 0"),
    (["--img-size", "0"], "img_size must be at least 1, got 0"),
    (["--clip-grad", "-1"], "clip_grad must be above 0, got -1.0"),
    (["--max-train-samples", "-5"], "max_train_samples must be at least 1, got -5"),
    (["--label-smoothing", "-0.1"], "label_smoothing must be in [0, 1), got -0.1"),
    (["--warmup-epochs", "30", "--epochs", "3"], "warmup_epochs (30) is longer than the run (epochs 3)"),
    (["--device", "gpu"], "device 'gpu' is not a device name"),
    (["--augment", "crop-flp"], "augment 'crop-flp' (did you mean crop-flip?) is not one of none, flip, crop-flip, imagenet"),
    (["--model-kwargs", "{hiden: 8}"], "model_kwargs: unknown key(s) hiden (did you mean hidden?)"),
    (["--schedule", "step", "--schedule-kwargs", "{gama: 0.5}"], "schedule_kwargs: unknown key(s) gama (did you mean gamma?)"),
    (["--optimizer-kwargs", "{momentum: [}"], "argument --optimizer-kwargs: expected a YAML dict"),
])
def test_a_bad_option_is_one_sentence_and_exit_status_2(args, message, capsys):
    assert main(["train", *args]) == 2
    assert message in _error(capsys)


def test_bad_config_files_and_paths_name_the_problem(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("model: null\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "model must be str, got None" in _error(capsys)
    config.write_text("model_kwargs: [1, 2]\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "model_kwargs must be a mapping, got [1, 2]" in _error(capsys)
    assert main(["train", "--out", str(config)]) == 2
    assert f"out '{config}' is a file" in _error(capsys)
    assert main(["predict", str(tmp_path), "x.png", "--top-k", "0"]) == 2
    assert "--top-k must be at least 1, got 0" in _error(capsys)


def test_a_run_name_is_never_overwritten_and_resume_applies_or_refuses_options(tmp_path, capsys):
    run = tmp_path / "x"
    assert main(["train", *QUICK, "--out", str(tmp_path), "--name", "x"]) == 0
    before = (run / "checkpoints" / "epoch_0001" / "model.safetensors").read_bytes()
    assert main(["train", *QUICK, "--out", str(tmp_path), "--name", "x"]) == 2
    assert f"run directory '{run}' already holds a run; continue it with --resume {run}" in _error(capsys)
    assert (run / "checkpoints" / "epoch_0001" / "model.safetensors").read_bytes() == before
    assert main(["train", "--resume", str(run), "--model", "simple_cnn"]) == 2
    assert "a resumed run keeps its model" in _error(capsys)
    capsys.readouterr()
    # options given with --resume take effect and are recorded: the lr of epoch 2 changes its weights
    for lr, name in (("0.05", "a"), ("0.8", "b")):
        copy = tmp_path / name
        import shutil
        shutil.copytree(run, copy)
        assert main(["train", "--resume", str(copy), "--epochs", "2", "--lr", lr]) == 0
        saved = yaml.safe_load((copy / "config.yaml").read_text())
        assert saved["epochs"] == 2 and saved["lr"] == float(lr)
    a, b = (load_file(str(resolve_checkpoint(tmp_path / n) / "model.safetensors")) for n in "ab")
    assert any(not torch.equal(a[k], b[k]) for k in a)
    state = torch.load(resolve_checkpoint(tmp_path / "b") / "training_state.pt", weights_only=True)
    assert all(g["lr"] == 0.8 for g in state["optimizer"]["param_groups"])


def test_kwargs_on_the_command_line_merge_into_the_recipe_key_by_key(capsys):
    assert main(["train", "--recipe", "rt_polarity_lstm_large_vocab", "--dataset-kwargs", "{glove: false}",
                 "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["dataset_kwargs"]["glove"] is False and {"vocab_size", "max_len"} <= set(printed["dataset_kwargs"])


# ---- property: any valid option name with an invalid value is one error line and exit status 2 --------------
BAD_VALUES = {
    "--epochs": ["0", "-3", "x", "1.5"], "--batch-size": ["0", "-1", "many"], "--img-size": ["0", "-224"],
    "--lr": ["0", "-1", "fast"], "--weight-decay": ["-0.1"], "--clip-grad": ["0", "-1"],
    "--label-smoothing": ["1", "2", "-0.5"], "--max-train-samples": ["0", "-5"], "--warmup-epochs": ["-1", "999"],
    "--hflip": ["1.5", "-0.1"], "--reprob": ["2"], "--mixup-prob": ["-1"], "--mixup": ["-0.2"], "--cutmix": ["-1"],
    "--crop-scale": ["[0.5]", "[1.0, 0.5]", "[0, 1]", "{a: 1}", "[x, y]"], "--crop-ratio": ["[2, 1]", "7"],
    "--remode": ["zero", ""], "--augment": ["rotate", "ImageNet"], "--schedule": ["triangle"], "--optimizer": ["adamx"],
    "--device": ["gpu", "cuda:x", "tpu"], "--model": ["resnet5000", ""], "--dataset": ["imagenet-22k"],
    "--model-kwargs": ["{hiden: 1}", "[1]", "{a: [}"], "--dataset-kwargs": ["{size: 3}", "3"],
    "--optimizer-kwargs": ["{momentun: 0.9}", "{"], "--schedule-kwargs": ["{gama: 1}"], "--model-ema-decay": ["1", "-1"],
    "--accum-steps": ["0"], "--log-interval": ["0"], "--workers": ["-1"], "--keep-last": ["-2"], "--threads": ["0"],
    "--recount": ["0"], "--val-split": ["1", "-0.2"], "--drop-path": ["1.5"], "--crop-pct": ["0", "1.5"],
    "--layer-decay": ["0", "2"], "--train-interpolation": ["nearest"], "--lr-base-batch": ["0"],
    "--color-jitter": ["-1"], "--min-lr": ["-1"], "--warmup-lr": ["-1"], "--recipe": ["deit_huge"],
}
TRIED = []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(sorted(BAD_VALUES)), min_size=1, max_size=3, unique=True).flatmap(
    lambda names: st.tuples(*[st.tuples(st.just(n), st.sampled_from(BAD_VALUES[n])) for n in names])))
def test_any_invalid_value_of_a_valid_option_is_one_error_line_and_exit_status_2(capsys, pairs):
    args = ["train", "--print-config"] + [f"{name}={value}" for name, value in pairs]
    TRIED.append(args)
    assert main(args) == 2, args
    _error(capsys)


CONFIG_BAD_VALUES = {flag[2:].replace("-", "_"): values for flag, values in BAD_VALUES.items() if flag != "--recipe"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(sorted(CONFIG_BAD_VALUES)), min_size=1, max_size=3, unique=True).flatmap(
    lambda names: st.tuples(*[st.tuples(st.just(n), st.sampled_from(CONFIG_BAD_VALUES[n])) for n in names])))
def test_any_invalid_value_in_a_config_file_is_one_error_line_and_exit_status_2(capsys, tmp_path, pairs):
    config = tmp_path / "bad.yaml"  # the value as it would be written in YAML (a text that is not YAML included)
    config.write_text("".join(f"{name}: {value}\n" for name, value in pairs))
    TRIED.append(pairs)
    assert main(["train", "--print-config", "--config", str(config)]) == 2, pairs
    _error(capsys)


def test_the_property_test_tried_many_inputs():
    assert len(TRIED) >= 500  # reported: the count of bad command lines and config files tried
    print(f"property test tried {len(TRIED)} argument lists")
