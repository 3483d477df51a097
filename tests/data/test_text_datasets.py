import pytest

from danlu.data import create_dataset
from danlu.engine.build import model_kwargs_for
from danlu.engine.config import TrainConfig
from danlu.models import create_model


def _polarity(folder, pos, neg):
    folder.mkdir()
    (folder / "rt-polarity.pos").write_text("\n".join(pos) + "\n", encoding="utf-8")
    (folder / "rt-polarity.neg").write_text("\n".join(neg) + "\n", encoding="utf-8")
    return folder


def test_rt_polarity_tiny_folder(tmp_path):
    root = _polarity(tmp_path / "rt", ["a good film", "good , good fun"], ["a bad film", "dull"])
    bundle = create_dataset("rt-polarity", root=root, vocab_size=5, max_len=4)
    assert bundle.input_kind == "tokens" and bundle.test is None
    assert bundle.classes == ["negative", "positive"]
    # counts: good 3, a 2, film 2, bad/dull/fun 1 -> 3 words fit next to <pad>, <unk>
    assert bundle.meta["vocab"] == ["<pad>", "<unk>", "good", "a", "film"]
    assert set(bundle.meta) == {"vocab", "max_len"}  # the data described, no model arguments
    assert model_kwargs_for(TrainConfig(), bundle, None) == {"vocab_size": 5, "num_classes": 1}
    items = {tuple(bundle.train[i][0].tolist()): bundle.train[i][1].item() for i in range(4)}
    assert items == {(0, 3, 2, 4): 1, (0, 2, 2, 1): 1, (0, 3, 1, 4): 0, (0, 0, 0, 1): 0}


def test_rt_polarity_accepts_parent_folder_and_reports_missing_files(tmp_path):
    _polarity(tmp_path / "rt-polarity", ["fine"], ["awful"])
    assert len(create_dataset("rt-polarity", root=tmp_path).train) == 2
    with pytest.raises(FileNotFoundError, match="rt-polarity.neg not found"):
        create_dataset("rt-polarity", root=tmp_path / "elsewhere")


def test_rt_polarity_with_glove_builds_a_matching_lstm(tmp_path):
    root = _polarity(tmp_path / "rt", ["a good film"], ["a bad film"])
    glove = tmp_path / "glove.txt"
    glove.write_text("good 1 0\nbad -1 0\nfilm 0 1\n", encoding="utf-8")
    bundle = create_dataset("rt-polarity", root=root, max_len=3, glove=glove)
    vocab = bundle.meta["vocab"]
    assert bundle.meta["embedding"].shape == (len(vocab), 2) and bundle.meta["glove_coverage"] == 3 / 4  # 'a' has no vector
    # the engine maps the description to the model's arguments; model_kwargs (a frozen embedding) add to it
    kw = model_kwargs_for(TrainConfig(model_kwargs={"freeze_embedding": True}), bundle, None)
    assert kw["vocab_size"] == len(vocab) and kw["embed_dim"] == 2 and kw["embedding"] is bundle.meta["embedding"]
    model = create_model("lstm_classifier", **kw)
    assert model.embedding.weight[vocab.index("bad")].tolist() == [-1.0, 0.0]
    assert not model.embedding.weight.requires_grad
    assert model(bundle.train.ids).shape == (2, 1)


def test_rt_polarity_real_files(data_dir):
    bundle = create_dataset("rt-polarity", root=data_dir / "rt-polarity", vocab_size=1000, max_len=70)
    ids, labels = bundle.train.ids, bundle.train.targets
    assert ids.shape == (10662, 70) and int(labels.sum()) == 5331
    assert len(bundle.meta["vocab"]) == 1000 and int(ids.max()) == 999
    assert labels[:100].float().mean().item() == pytest.approx(0.5, abs=0.15)  # shuffled, not 5331 negatives first


def test_text_csv_labels_encodings_and_empty_rows(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_bytes('id,text,target\n1,"Très bon, vraiment",pos\n2,,neg\n3,mauvais film,neg\n4,bon film,pos\n'
                  .encode("latin-1"))
    with pytest.warns(UserWarning) as record:
        bundle = create_dataset("text-csv", root=f, max_len=3)
    messages = " | ".join(str(w.message) for w in record)
    assert "reviews.csv is not UTF-8" in messages and "skipped 1 row(s) with an empty 'text'" in messages
    assert bundle.classes == ["neg", "pos"]
    assert sorted(bundle.train.targets.tolist()) == [0, 1, 1]
    assert "très" in bundle.meta["vocab"]


def test_text_csv_numeric_targets_sorted_numerically(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("text,target\na,10\nb,2\nc,2\n", encoding="utf-8")
    bundle = create_dataset("text-csv", root=f)
    assert bundle.classes == ["2", "10"] and model_kwargs_for(TrainConfig(), bundle, None)["num_classes"] == 1
    three = tmp_path / "three.csv"
    three.write_text("text,target\na,x\nb,y\nc,z\n", encoding="utf-8")
    assert model_kwargs_for(TrainConfig(), create_dataset("text-csv", root=three), None)["num_classes"] == 3


def test_binary_or_unreadable_csv_names_the_file(tmp_path):
    f = tmp_path / "data.csv"
    f.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4)  # a zip archive (an .xlsx) renamed
    with pytest.raises(ValueError, match=r"data.csv is a binary file, not a CSV text file \(\d+ control bytes"):
        create_dataset("text-csv", root=f)
    f.write_text("text,target\n" + "x" * 200_000 + ",1\n", encoding="utf-8")  # over the csv module's field limit
    with pytest.raises(ValueError, match=r"data.csv is not readable as CSV after line 1 \(field larger than field limit"):
        create_dataset("text-csv", root=f)
    f.write_bytes("text,target\nbon,1\nmal,0\n".encode("utf-16"))  # UTF-16 with its BOM is text
    assert create_dataset("text-csv", root=f).classes == ["0", "1"]


def test_text_csv_missing_column_is_named(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("review,label\ngood,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"t.csv has no column 'text', 'target' \(its columns: review, label\)"):
        create_dataset("text-csv", root=f)
    assert len(create_dataset("text-csv", root=_two_rows(tmp_path), text_column="review", target_column="label").train) == 2


def _two_rows(tmp_path):
    f = tmp_path / "two.csv"
    f.write_text("review,label\ngood,1\nbad,0\n", encoding="utf-8")
    return f
