"""`danlu predict --text`, `danlu evaluate`'s report and `danlu stylize` end to end on tiny inputs."""
import warnings

import torch
from PIL import Image
from test_cli_predict import printed_rankings

from danlu.cli import main
from danlu.data.text import encode_for_model
from danlu.engine.inference import load_checkpoint_model
from danlu.engine.losses import probabilities
from danlu.models import create_model

POS = ["gripping", "wonderful", "superb", "moving", "brilliant", "charming"]
NEG = ["dull", "boring", "awful", "tedious", "clumsy", "bland"]
NOUNS = ["film", "plot", "acting", "story", "score", "cast"]
# adjective-noun pairs never seen in training; the nouns occur with both classes, so only the adjective tells
HELD_OUT = [("superb story", "pos"), ("charming cast", "pos"), ("moving score", "pos"),
            ("tedious plot", "neg"), ("bland acting", "neg"), ("dull film", "neg")]
REVIEWS = [(f"{a} {n}", y) for words, y in ((POS, "pos"), (NEG, "neg")) for a in words for n in NOUNS
           if (f"{a} {n}", y) not in HELD_OUT]


def test_text_model_train_evaluate_predict(tmp_path, capsys):
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,target\n" + "".join(f"{t},{y}\n" for t, y in REVIEWS), encoding="utf-8")
    assert main(["train", "--model", "lstm_classifier", "--dataset", "text-csv", "--data-dir", str(csv),
                 "--dataset-kwargs", "{max_len: 4}", "--optimizer", "adam", "--lr", "0.03", "--epochs", "3",
                 "--batch-size", "8", "--val-split", "0.25", "--out", str(tmp_path), "--name", "run", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "actual:    ['" in out and "predicted: ['" in out
    assert (tmp_path / "run" / "evaluation" / "confusion_matrix.png").is_file()

    texts, truth = zip(*HELD_OUT)
    assert main(["predict", str(tmp_path / "run"), "--top-k", "2", *(a for t in texts for a in ("--text", t))]) == 0
    rankings = printed_rankings(capsys.readouterr().out, list(map(repr, texts)))
    model, info = load_checkpoint_model(tmp_path / "run")  # the oracle: the checkpoint's model on the same ids
    classes = info["classes"]
    with torch.no_grad():
        probs = probabilities(model(encode_for_model(list(texts), info["data_meta"])))
    assert [next(iter(r)) for r in rankings] == [classes[i] for i in probs.argmax(1)]
    torch.testing.assert_close(torch.tensor([[r[c] for c in classes] for r in rankings]), probs, rtol=0, atol=6e-5)
    assert sum(next(iter(r)) == y for r, y in zip(rankings, truth)) > len(truth) / 2

    fresh = create_model(info["model"], **info["model_kwargs"]).eval()  # the majority above needs training
    with torch.no_grad():
        fresh_labels = probabilities(fresh(encode_for_model(list(texts), info["data_meta"]))).argmax(1)
    assert sum(classes[i] == y for i, y in zip(fresh_labels, truth)) <= len(truth) / 2

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
