"""Word vectors in GloVe's text format ("word v1 v2 ... vD" per line) as an embedding matrix.

The file is streamed line by line and only the vocabulary's rows are parsed, so glove.840B.300d
(5.6 GB, 2.2 M words) needs memory for the vocabulary only, not for the whole file.
"""
import gzip
from pathlib import Path

import torch


def load_glove(path, words, dim=None, seed=0):
    """Returns (matrix, found): a (len(words), D) float tensor whose row i is the vector of words[i],
    and how many words had one. Words without a vector get random rows with the mean and spread of
    the vectors found (so they are neither louder nor quieter than the rest); row 0 (padding) is zero."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GloVe file {path} not found; pass a text file of 'word v1 ... vD' lines")
    index = {w: i for i, w in enumerate(words)}
    rows = {}
    opener = gzip.open if path.suffix == ".gz" else open
    # The vectors are ASCII numbers; a word with broken bytes cannot match the vocabulary anyway.
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec's "count dim" header line, as written by gensim's converter
            if dim is None:
                dim = len(parts) - 1
            if len(parts) <= dim:
                if not line.strip():
                    continue
                raise ValueError(f"{path}, line {lineno}: expected a word and {dim} numbers, got {len(parts) - 1} "
                                 "values; is this a GloVe text file?")
            # Some 840B words contain spaces ('. . .'): the vector is always the last `dim` fields.
            word = " ".join(parts[:-dim])
            i = index.get(word)
            if i is not None and i not in rows:
                try:
                    rows[i] = torch.tensor([float(v) for v in parts[-dim:]])
                except ValueError:
                    raise ValueError(f"{path}, line {lineno}: the vector of '{word}' is not numeric") from None
    if dim is None:
        raise ValueError(f"GloVe file {path} is empty")
    found = torch.stack(list(rows.values())) if rows else torch.zeros(1, dim)
    mean, std = (found.mean(), found.std()) if len(rows) > 1 else (0.0, 1.0)
    gen = torch.Generator().manual_seed(seed)
    matrix = torch.randn(len(words), dim, generator=gen) * std + mean
    for i, vec in rows.items():
        matrix[i] = vec
    matrix[0] = 0.0
    return matrix, len(rows)
