"""Data sets (registered by name), tensor transforms and splits."""
from . import cifar, digits, folder, mnist, shards  # noqa: F401  (registers data sets)
from . import text_datasets  # noqa: F401  (registers rt-polarity, text-csv)
from .glove import load_glove
from .text import Vocab, encode_texts, tokenize
from .datasets import TensorImageDataset, Transformed, split_dataset
from .registry import DataBundle, create_dataset, list_datasets, register_dataset
from .transforms import build_transforms
