"""The danlu export / erf / gradcam commands end to end on a small registered model."""
import numpy as np
import pytest
import torch
from PIL import Image

import danlu
from danlu import cli
from danlu.apps import gradcam
from danlu.apps.gradcam import grad_cam, save_overlay
from danlu.data.image_files import load_images


def test_erf_command(tmp_path, capsys):
    out = tmp_path / "erf.png"
    assert cli.main(["erf", "--model", "parcnet_xs", "--num-images", "1", "--img-size", "32", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    ratios = [float(line.split()[1]) for line in lines if line.strip()[:4] in ("0.20", "0.30", "0.50", "0.99")]
    assert len(ratios) == 4 and ratios == sorted(ratios) and 0 < ratios[0] and ratios[-1] <= 1
    assert Image.open(out).format == "PNG"


def test_gradcam_command(tmp_path, capsys, monkeypatch):
    torch.manual_seed(0)
    model = danlu.create_model("parcnet_xs", num_classes=10, img_size=32).eval()  # trained at 32
    weights = tmp_path / "w.pth"
    torch.save(model.state_dict(), weights)
    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "cam.png"
    drawn = []  # the map the command draws, kept on its way to the PNG
    monkeypatch.setattr(gradcam, "save_overlay", lambda img, cam, *a: drawn.append(cam) or save_overlay(img, cam, *a))
    argv = ["gradcam", "--model", "parcnet_xs", "--weights", str(weights), "--image", str(image),
            "--out", str(out), "--img-size", "32", "--class-idx", "7", "--target-layer", "stages.3", "--num-classes", "10"]
    assert cli.main(argv) == 0
    # the oracle: the library's Grad-CAM of the saved model on the image resized and normalised as the model expects
    x = load_images([image], 32, model.default_cfg.mean, model.default_cfg.std)
    expected, _ = grad_cam(model, x, class_idx=7, target_layer="stages.3")
    with torch.no_grad():
        probs = model(x).softmax(1)[0]
    assert probs.argmax() != 7 and expected.amax() == 1  # class 7 is not the default choice, and its map is not flat
    torch.testing.assert_close(drawn[0], expected[0])
    assert f"class 7 (p = {probs[7]:.3f})" in capsys.readouterr().out
    assert Image.open(out).format == "PNG"


def test_bad_target_layer_is_one_sentence(tmp_path, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "w.pth"
    torch.save(danlu.create_model("parcnet_xs").state_dict(), weights)
    image = tmp_path / "img.png"
    Image.new("RGB", (32, 32)).save(image)
    argv = ["gradcam", "--model", "parcnet_xs", "--weights", str(weights), "--image", str(image), "--target-layer", "nope"]
    assert cli.main(argv) == 2
    assert "model has no submodule 'nope'" in capsys.readouterr().err


@pytest.mark.slow  # test_export.py checks the export itself; this only adds the command's wiring
def test_export_command(tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="ONNX export checks need the 'export' extra: pip install 'danlu[export]'")
    out = tmp_path / "m.onnx"
    assert cli.main(["export", "--model", "parcnet_xs", "--img-size", "32x48", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "at 32x48 (opset 17)" in printed and "max abs difference" in printed
    assert out.stat().st_size > 1_000_000


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory):
    """A simple_cnn run trained (briefly) on grey 28x28 digits: 1 channel, its own mean/std, class names."""
    out = tmp_path_factory.mktemp("runs")
    danlu.train(model="simple_cnn", dataset="digits", img_size=28, max_train_samples=128, val_split=0.1, epochs=1,
                batch_size=32, model_kwargs={"widths": [4, 8, 8], "hidden": 16}, out=str(out), name="grey", progress=False)
    return out / "grey"


def _grey_image(path, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (30, 26), dtype=np.uint8), mode="L").save(path)
    return path


def test_gradcam_on_a_grey_run_agrees_with_predict(grey_run, tmp_path, capsys):
    image = _grey_image(tmp_path / "digit.png")
    assert cli.main(["gradcam", "--weights", str(grey_run), "--image", str(image), "--out", str(tmp_path / "cam.png")]) == 0
    printed = capsys.readouterr().out
    # the oracle: danlu.predict on the same image and checkpoint (its own normalisation and channel count)
    labels, probs, classes = danlu.predict(grey_run, files=[image])
    c = labels[0].item()
    assert f"simple_cnn: class {c} '{classes[c]}' (p = {probs[0, c]:.3f}), target features.8" in printed
    assert Image.open(tmp_path / "cam.png").format == "PNG"


def test_gradcam_bad_requests_on_a_run_are_one_sentence(grey_run, tmp_path, capsys):
    image = _grey_image(tmp_path / "digit.png")
    base = ["gradcam", "--weights", str(grey_run), "--image", str(image), "--out", str(tmp_path / "cam.png")]
    assert cli.main([*base, "--class-idx", "10"]) == 2
    assert "class index 10 is out of range: the model scores 10 classes, give 0 to 9" in capsys.readouterr().err
    assert cli.main([*base, "--img-size", "32"]) == 2
    assert "--img-size cannot be combined with the checkpoint" in capsys.readouterr().err
    assert cli.main([*base, "--model", "mlp"]) == 2
    assert "--model cannot be combined with the checkpoint" in capsys.readouterr().err


def test_erf_on_a_grey_run(grey_run, tmp_path, capsys):
    folder = tmp_path / "digits"
    folder.mkdir()
    for i in range(2):
        _grey_image(folder / f"{i}.png", seed=i)
    assert cli.main(["erf", "--weights", str(grey_run), "--images", str(folder)]) == 0
    printed = capsys.readouterr().out
    assert "ERF of simple_cnn at 28x28 over 2 images" in printed
    # the oracle: the ERF of the checkpoint's model on the images prepared as predict prepares them
    from danlu.apps.erf import area_ratios, contribution_scores, normalise
    from danlu.engine.inference import image_batch, load_checkpoint_model
    model, info = load_checkpoint_model(grey_run)
    x = image_batch(sorted(folder.iterdir()), info)
    assert x.shape == (2, 1, 28, 28)
    expected = area_ratios(normalise(contribution_scores(model, x)))
    assert f"{0.99:9.2f}  {expected[0.99]:.4f}" in printed and f"{0.2:9.2f}  {expected[0.2]:.4f}" in printed
