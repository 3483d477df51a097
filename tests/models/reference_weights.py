"""Deterministic weights for comparing danlu's models with their original code.

The reference outputs in tests/models/data/ were computed once by the original code (timm, vit-pytorch,
the official ParC-Net) in a side environment, on weights from `formula_state_dict` under the original's
own key names: an integer hash (exact on every platform, no RNG) scaled per kind of tensor. Each
reference file stores the original's key names and shapes, an input shape and the outputs.
"""
import gzip
import json
import math
import zlib
from pathlib import Path

import torch

DATA = Path(__file__).parent / "data"
_M32 = 0xFFFFFFFF


def hash_uniform(n, seed):
    """n numbers in [0, 1) from a 32-bit integer hash of (index, seed); int64 arithmetic that never overflows."""
    x = (torch.arange(n, dtype=torch.int64) * 0x27D4EB2D + seed) & _M32
    for shift, mult in ((15, 0x5BD1E995), (13, 0x27D4EB2D)):
        x = ((x ^ (x >> shift)) * mult) & _M32
    x = x ^ (x >> 16)
    return x.double() / 2**32


def formula_tensor(key, shape):
    """The float64 tensor for parameter or buffer `key`: He-scaled kernels, norm scales near 1, positive variances."""
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.long)
    u = hash_uniform(math.prod(shape), zlib.crc32(key.encode())).reshape(shape)
    s = 2 * u - 1  # uniform on [-1, 1): variance 1/3
    if key.endswith("running_var"):
        return 0.5 + u
    if len(shape) >= 2 and shape[0] > 1:  # a weight matrix or conv kernel: variance 2 / fan_in
        return s * math.sqrt(6 / (math.prod(shape) / shape[0]))
    if key.endswith("weight"):  # norm scales
        return 1 + 0.2 * s
    return 0.2 * s  # biases, running means, embeddings, class tokens


def formula_state_dict(keys_and_shapes):
    return {key: formula_tensor(key, tuple(shape)) for key, shape in keys_and_shapes}


def formula_input(shape):
    return 2 * hash_uniform(math.prod(shape), 12345).reshape(shape) - 1


def load_reference(name):
    """A reference file of tests/models/data/ (.json or .json.gz) as a dict."""
    path = DATA / name
    with (gzip.open(path, "rt") if path.suffix == ".gz" else open(path)) as f:
        return json.load(f)
