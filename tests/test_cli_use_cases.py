"""`danlu predict --text`, `danlu evaluate`'s report and `danlu stylize` end to end on tiny inputs."""
import warnings

from PIL import Image

from danlu.cli import main

REVIEWS = [("a gripping beautifully shot film", "pos"), ("dull and boring", "neg"), ("wonderful acting", "pos"),
           ("awful plot", "neg")] * 4


def test_text_model_train_evaluate_predict(tmp_path, capsys):
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,target\n" + "".join(f"{t},{y}\n" for t, y in REVIEWS), encoding="utf-8")
    assert main(["train", "--model", "lstm_classifier", "--dataset", "text-csv", "--data-dir", str(csv),
                 "--dataset-kwargs", "{max_len: 8}", "--optimizer", "adam", "--lr", "0.01", "--epochs", "2",
                 "--batch-size", "4", "--val-split", "0.25", "--out", str(tmp_path), "--name", "run", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "actual:    ['" in out and "predicted: ['" in out
    assert (tmp_path / "run" / "evaluation" / "confusion_matrix.png").is_file()
    assert main(["predict", str(tmp_path / "run"), "--text", "a gripping, beautifully shot film"]) == 0
    label, prob = capsys.readouterr().out.strip().rsplit(": ", 1)[1].split()
    assert label in ("neg", "pos") and 0.5 <= float(prob) <= 1.0  # the label shown is the likelier one
    assert main(["predict", str(tmp_path / "run"), "review.png"]) == 2
    assert "this is a text model" in capsys.readouterr().err


def test_stylize_writes_a_png_and_names_bad_images(tmp_path, capsys):
    Image.new("RGB", (40, 24), (200, 120, 40)).save(tmp_path / "content.png")
    Image.new("RGB", (9, 30), (20, 40, 220)).save(tmp_path / "style.jpg")
    out = tmp_path / "out.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no VGG19 weight file here
        assert main(["stylize", "--content", str(tmp_path / "content.png"), "--style", str(tmp_path / "style.jpg"),
                     "--out", str(out), "--size", "32", "--steps", "2"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert Image.open(out).size == (32, 19)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["stylize", "--content", str(tmp_path / "content.png"), "--style", str(tmp_path / "style.jpg"),
                     "--out", str(out), "--size", "20"]) == 2
    assert "the content image is 12x20 pixels; style transfer needs at least 16" in capsys.readouterr().err
    (tmp_path / "notes.png").write_text("not an image")
    assert main(["stylize", "--content", str(tmp_path / "notes.png"), "--style", str(tmp_path / "style.jpg"),
                 "--out", str(out)]) == 2
    assert "notes.png' is not an image file" in capsys.readouterr().err
