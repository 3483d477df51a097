"""The text pipeline: read files in any common encoding, split words, map them to ids, pad to a length.

It does what the seed's Keras `Tokenizer(num_words=1000)` + `pad_sequences(maxlen=70)` do, without Keras:
lower-cased words, a vocabulary of the most frequent ones, an out-of-vocabulary id for the rest and
sequences padded (or cut) to one length so they batch into a LongTensor.
"""
import re
import warnings
from collections import Counter
from pathlib import Path

import torch
from torch.utils.data import Dataset

PAD, OOV = "<pad>", "<unk>"
_WORD = re.compile(r"\w+(?:'\w+)*")  # words keep inner apostrophes ("it's", "don't"); punctuation is dropped


def tokenize(text):
    """Lower-cased words of `text`, punctuation removed (Keras' Tokenizer filters it the same way)."""
    return _WORD.findall(text.lower())


def read_text(path):
    """The file's text. UTF-8 (with or without BOM) and UTF-16 with a BOM are read as such; any other
    bytes are read as Windows-1252 (which decodes every Latin-1 file too) with a warning naming the file."""
    raw = Path(path).read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        warnings.warn(f"{path} is not UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r}); "
                      "reading it as Windows-1252; re-save it as UTF-8 if words look wrong", stacklevel=2)
        return raw.decode("cp1252", errors="replace")  # cp1252 leaves 5 bytes undefined; keep going


def read_lines(path):
    """Non-empty lines of a text file; the number of skipped empty lines is reported with the file name."""
    lines = read_text(path).splitlines()
    kept = [line.strip() for line in lines if line.strip()]
    if len(kept) < len(lines):
        warnings.warn(f"skipped {len(lines) - len(kept)} empty line(s) in {path}", stacklevel=2)
    return kept


class Vocab:
    """Words <-> ids. Id 0 pads, id 1 stands for every word outside the vocabulary."""

    def __init__(self, words):
        self.itos = list(words)
        if self.itos[:2] != [PAD, OOV]:
            raise ValueError(f"a vocabulary list must start with '{PAD}', '{OOV}', got {self.itos[:2]}")
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, token_lists, max_size=None):
        """The `max_size` most frequent words (the two special tokens included); ties broken alphabetically
        so the vocabulary does not depend on the order of the corpus."""
        counts = Counter(tok for toks in token_lists for tok in toks)
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        if max_size is not None:
            if max_size < 3:
                raise ValueError(f"vocab_size must be at least 3 (padding, unknown and one word), got {max_size}")
            ranked = ranked[:max_size - 2]
        return cls([PAD, OOV, *ranked])

    def __len__(self):
        return len(self.itos)

    def encode(self, tokens):
        return [self.stoi.get(tok, 1) for tok in tokens]


def pad_truncate(ids, max_len):
    """`ids` cut or left-padded with 0 to `max_len`, as Keras' pad_sequences does by default: the
    LSTM then reads the real words last, right before its output, and long texts keep their ending."""
    ids = ids[-max_len:]
    return [0] * (max_len - len(ids)) + ids


def encode_texts(texts, vocab, max_len):
    """(N, max_len) LongTensor of the texts' word ids."""
    return torch.tensor([pad_truncate(vocab.encode(tokenize(t)), max_len) for t in texts], dtype=torch.long)


class TokenDataset(Dataset):
    """Pairs (ids of one padded text, integer label)."""

    def __init__(self, ids, targets):
        if len(ids) != len(targets):
            raise ValueError(f"{len(ids)} texts but {len(targets)} targets")
        self.ids, self.targets = ids, torch.as_tensor(targets, dtype=torch.long)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return self.ids[i], self.targets[i]


def encode_for_model(texts, data_meta):
    """Token ids of raw texts for a trained text model, with the vocabulary and length stored in its
    checkpoint (`data_meta` holds 'vocab' and 'max_len')."""
    if "vocab" not in data_meta or "max_len" not in data_meta:
        raise ValueError("this checkpoint stores no vocabulary: it was not trained on a text data set; "
                         "pass image files instead of --text")
    return encode_texts(texts, Vocab(data_meta["vocab"]), data_meta["max_len"])
