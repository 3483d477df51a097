"""Data sets (registered by name), tensor transforms and splits."""
from . import cifar, digits, folder, mnist, shards, text_datasets  # noqa: F401  (registers the data sets)
from .datasets import TensorImageDataset, Transformed, split_dataset
from .glove import load_glove
from .registry import DataBundle, create_dataset, list_datasets, register_dataset
from .text import Vocab, encode_texts, tokenize
from .transforms import build_transforms

__all__ = ["DataBundle", "TensorImageDataset", "Transformed", "Vocab", "build_transforms", "create_dataset",
           "encode_texts", "list_datasets", "load_glove", "register_dataset", "split_dataset", "tokenize"]
