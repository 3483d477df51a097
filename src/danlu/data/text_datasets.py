"""Text classification data sets: sentence polarity (Pang and Lee, 2005) and any CSV of `text`, `target`.

Both return token ids padded to `max_len` and describe the data in `meta`: the vocabulary (to encode
new text at prediction time; the engine sizes the model's embedding by it) and, when a GloVe file is
given, its vectors for the vocabulary as `embedding` (vocabulary size x dimension). The model's own
choices (embedding width without GloVe, a frozen embedding) are model arguments: `--model-kwargs`.
The vocabulary is built from every text of the set, without labels, as the seed's Keras tokenizer is;
the examples are shuffled once with `seed` so that any split of them mixes the classes.
"""
import csv
import io
import warnings
from pathlib import Path

import torch

from .glove import load_glove
from .registry import DataBundle, register_dataset
from .text import TokenDataset, Vocab, encode_texts, read_lines, read_text, tokenize


def _text_bundle(texts, labels, classes, vocab_size, max_len, glove, seed):
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed)).tolist()
    texts, labels = [texts[i] for i in order], [labels[i] for i in order]
    vocab = Vocab.build((tokenize(t) for t in texts), vocab_size)
    meta = {"vocab": vocab.itos, "max_len": max_len}
    if glove is not None:
        meta["embedding"], found = load_glove(glove, vocab.itos, seed=seed)
        meta["glove_coverage"] = found / max(1, len(vocab) - 2)  # share of real words with a vector
    return DataBundle(train=TokenDataset(encode_texts(texts, vocab, max_len), labels), test=None,
                      classes=classes, input_kind="tokens", meta=meta)


@register_dataset("rt-polarity")
def rt_polarity(root=None, download=False, vocab_size=1000, max_len=70, glove=None, seed=0):
    """`root`: the folder holding rt-polarity.pos and rt-polarity.neg (or its parent)."""
    if root is None:
        raise ValueError("rt-polarity needs the folder with rt-polarity.pos/.neg; pass --data-dir")
    root = Path(root)
    if not (root / "rt-polarity.pos").is_file() and (root / "rt-polarity" / "rt-polarity.pos").is_file():
        root = root / "rt-polarity"
    files = [root / "rt-polarity.neg", root / "rt-polarity.pos"]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(
                f"{f} not found; download rt-polaritydata.tar.gz from "
                "https://www.cs.cornell.edu/people/pabo/movie-review-data/ and pass its folder as --data-dir"
                + (" (it cannot be downloaded automatically)" if download else ""))
    neg, pos = (read_lines(f) for f in files)
    return _text_bundle(neg + pos, [0] * len(neg) + [1] * len(pos), ["negative", "positive"],
                        vocab_size, max_len, glove, seed)


def _label_classes(values):
    """Class names in label order: integers sorted numerically (so 0/1 stay 0/1), other names alphabetically."""
    try:
        keys = sorted(set(values), key=int)
    except ValueError:
        keys = sorted(set(values))
    return keys, {k: i for i, k in enumerate(keys)}


def _csv_text(path):
    """The text of a CSV file; a binary file (NUL bytes, or mostly control bytes: a spreadsheet, an
    archive, an image) is refused by name rather than read as Windows-1252 garbage."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 has NUL bytes of its own
        control = sum(b < 32 and b not in b"\t\n\r\f" for b in head)
        if b"\0" in head or control > len(head) // 10:
            raise ValueError(f"{path} is a binary file, not a CSV text file ({control} control bytes in its first "
                             f"{len(head)}); give a CSV with a header row, saved as text (UTF-8)")
    return read_text(path)


@register_dataset("text-csv")
def text_csv(root=None, download=False, text_column="text", target_column="target", vocab_size=1000,
             max_len=70, glove=None, seed=0):
    """`root`: a CSV file with a header row naming a text column and a target (class label) column."""
    path = Path(root) if root is not None else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"text-csv needs a CSV file as --data-dir, got {root}")
    reader = csv.DictReader(io.StringIO(_csv_text(path)))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as e:
        raise ValueError(f"{path} is not readable as CSV after line {reader.line_num} ({e}); give a CSV text file with a "
                         "header row") from None
    missing = [c for c in (text_column, target_column) if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{path} has no column {', '.join(map(repr, missing))} (its columns: "
                         f"{', '.join(reader.fieldnames or []) or 'none'}); rename the column or set "
                         "dataset_kwargs text_column / target_column")
    texts, targets, empty = [], [], 0
    for line, row in rows:
        text, target = (row[text_column] or "").strip(), (row[target_column] or "").strip()
        if not text:
            empty += 1
            continue
        if not target:
            raise ValueError(f"{path}, line {line}: empty '{target_column}' for text '{text[:40]}'")
        texts.append(text)
        targets.append(target)
    if empty:
        warnings.warn(f"skipped {empty} row(s) with an empty '{text_column}' in {path}", stacklevel=2)
    if len(set(targets)) < 2:
        raise ValueError(f"{path}: column '{target_column}' needs at least two different classes, "
                         f"found {sorted(set(targets))}")
    classes, index = _label_classes(targets)
    return _text_bundle(texts, [index[t] for t in targets], classes,
                        vocab_size, max_len, glove, seed)
