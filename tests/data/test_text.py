import pytest
import torch

from danlu.data.text import OOV, PAD, TokenDataset, Vocab, encode_texts, pad_truncate, read_lines, read_text, tokenize


def test_tokenize_lowercases_drops_punctuation_keeps_inner_apostrophes():
    assert tokenize("It's a GRIPPING, beautifully-shot film!") == ["it's", "a", "gripping", "beautifully", "shot", "film"]
    assert tokenize(" ' , . ") == []


def test_vocab_keeps_most_frequent_words_ties_alphabetical():
    docs = [["b", "a", "c"], ["a", "c", "d"], ["a"]]  # a:3, c:2, b:1, d:1
    vocab = Vocab.build(docs, max_size=5)
    assert vocab.itos == [PAD, OOV, "a", "c", "b"]
    assert vocab.encode(["d", "a", "zzz", "b"]) == [1, 2, 1, 4]
    assert len(Vocab.build(docs)) == 6


def test_vocab_rejects_lists_without_special_tokens():
    with pytest.raises(ValueError, match="must start with"):
        Vocab(["a", "b"])


def test_pad_truncate_pads_left_and_keeps_the_end():
    assert pad_truncate([5, 6], 4) == [0, 0, 5, 6]
    assert pad_truncate([1, 2, 3, 4, 5, 6], 4) == [3, 4, 5, 6]


def test_encode_texts_shape_and_ids():
    vocab = Vocab([PAD, OOV, "good", "film"])
    ids = encode_texts(["Good film", "bad film, good"], vocab, 3)
    assert ids.dtype == torch.long
    assert ids.tolist() == [[0, 2, 3], [1, 3, 2]]


def test_read_text_other_encodings(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café noir".encode("latin-1"))
    with pytest.warns(UserWarning, match="latin.txt is not UTF-8"):
        assert read_text(latin) == "café noir"
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("naïve".encode("utf-16"))  # Python writes a BOM
    assert read_text(utf16) == "naïve"
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffhello".encode("utf-8"))
    assert read_text(bom) == "hello"


def test_read_lines_reports_empty_lines_by_file(tmp_path):
    f = tmp_path / "reviews.txt"
    f.write_text("one\n\n  \ntwo\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"skipped 2 empty line\(s\) in .*reviews.txt"):
        assert read_lines(f) == ["one", "two"]


def test_token_dataset_items():
    ds = TokenDataset(torch.tensor([[0, 2], [3, 4]]), [1, 0])
    x, y = ds[1]
    assert x.tolist() == [3, 4] and y.item() == 0 and y.dtype == torch.long
    with pytest.raises(ValueError, match="2 texts but 1 targets"):
        TokenDataset(torch.zeros(2, 3, dtype=torch.long), [1])
