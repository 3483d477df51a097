import pytest
import torch

from danlu.data.glove import load_glove

VECTORS = {"good": [0.5, -1.0, 2.0], "film": [1.0, 1.0, 1.0], ". . .": [3.0, 2.0, 1.0], "unused": [9.0, 9.0, 9.0]}


def _write(path, header=""):
    path.write_text(header + "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in VECTORS.items()), encoding="utf-8")
    return path


def test_rows_are_the_file_vectors_padding_zero_missing_random(tmp_path):
    words = ["<pad>", "<unk>", "good", "film", ". . .", "missing"]
    matrix, found = load_glove(_write(tmp_path / "tiny.txt"), words)
    assert matrix.shape == (6, 3) and found == 3
    assert matrix[2].tolist() == VECTORS["good"]
    assert matrix[3].tolist() == VECTORS["film"]
    assert matrix[4].tolist() == VECTORS[". . ."]  # words with spaces, as in glove.840B
    assert matrix[0].tolist() == [0.0, 0.0, 0.0]
    assert matrix[5].abs().sum() > 0 and matrix[1].abs().sum() > 0
    again, _ = load_glove(tmp_path / "tiny.txt", words)
    assert torch.equal(matrix, again)  # the random rows are seeded


def test_word2vec_header_line_is_skipped(tmp_path):
    matrix, found = load_glove(_write(tmp_path / "w2v.txt", header="4 3\n"), ["<pad>", "<unk>", "film"])
    assert found == 1 and matrix[2].tolist() == VECTORS["film"]


def test_bad_files_are_reported_with_name_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("good 1 2 3\nfilm 1 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt, line 2: expected a word and 3 numbers"):
        load_glove(bad, ["<pad>", "<unk>", "good"])
    with pytest.raises(FileNotFoundError, match="nope.txt not found"):
        load_glove(tmp_path / "nope.txt", ["<pad>"])
