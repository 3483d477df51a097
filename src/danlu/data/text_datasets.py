"""Text classification data sets: sentence polarity (Pang and Lee, 2005) and any CSV of `text`, `target`.

Both return token ids padded to `max_len` plus, in `meta`, the vocabulary (to encode new text at
prediction time) and the `model_kwargs` that size `lstm_classifier` for it: vocabulary size, the
GloVe embedding when a file is given, and one output (BCE-with-logits) for two classes.
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


def _text_bundle(texts, labels, classes, vocab_size, max_len, glove, embed_dim, freeze_embedding, seed):
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed)).tolist()
    texts, labels = [texts[i] for i in order], [labels[i] for i in order]
    vocab = Vocab.build((tokenize(t) for t in texts), vocab_size)
    model_kwargs = {"vocab_size": len(vocab), "num_classes": 1 if len(classes) == 2 else len(classes),
                    "embed_dim": embed_dim, "freeze_embedding": freeze_embedding}
    meta = {"vocab": vocab.itos, "max_len": max_len, "model_kwargs": model_kwargs}
    if glove is not None:
        matrix, found = load_glove(glove, vocab.itos, seed=seed)
        model_kwargs.update(embedding=matrix, embed_dim=matrix.shape[1])
        meta["glove_coverage"] = found / max(1, len(vocab) - 2)  # share of real words with a vector
    return DataBundle(train=TokenDataset(encode_texts(texts, vocab, max_len), labels), test=None,
                      classes=classes, input_kind="tokens", meta=meta)


@register_dataset("rt-polarity")
def rt_polarity(root=None, download=False, vocab_size=1000, max_len=70, glove=None, embed_dim=300,
                freeze_embedding=False, seed=0):
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
                        vocab_size, max_len, glove, embed_dim, freeze_embedding, seed)


def _label_classes(values):
    """Class names in label order: integers sorted numerically (so 0/1 stay 0/1), other names alphabetically."""
    try:
        keys = sorted(set(values), key=int)
    except ValueError:
        keys = sorted(set(values))
    return keys, {k: i for i, k in enumerate(keys)}


@register_dataset("text-csv")
def text_csv(root=None, download=False, text_column="text", target_column="target", vocab_size=1000,
             max_len=70, glove=None, embed_dim=300, freeze_embedding=False, seed=0):
    """`root`: a CSV file with a header row naming a text column and a target (class label) column."""
    path = Path(root) if root is not None else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"text-csv needs a CSV file as --data-dir, got {root}")
    reader = csv.DictReader(io.StringIO(read_text(path)))
    missing = [c for c in (text_column, target_column) if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{path} has no column {', '.join(map(repr, missing))} (its columns: "
                         f"{', '.join(reader.fieldnames or []) or 'none'}); rename the column or set "
                         "dataset_kwargs text_column / target_column")
    texts, targets, empty = [], [], 0
    for row in reader:
        text, target = (row[text_column] or "").strip(), (row[target_column] or "").strip()
        if not text:
            empty += 1
            continue
        if not target:
            raise ValueError(f"{path}, line {reader.line_num}: empty '{target_column}' for text '{text[:40]}'")
        texts.append(text)
        targets.append(target)
    if empty:
        warnings.warn(f"skipped {empty} row(s) with an empty '{text_column}' in {path}", stacklevel=2)
    if len(set(targets)) < 2:
        raise ValueError(f"{path}: column '{target_column}' needs at least two different classes, "
                         f"found {sorted(set(targets))}")
    classes, index = _label_classes(targets)
    return _text_bundle(texts, [index[t] for t in targets], classes,
                        vocab_size, max_len, glove, embed_dim, freeze_embedding, seed)
