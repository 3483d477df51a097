"""scikit-learn's bundled 8x8 digits (1,797 images): danlu's offline default data set."""
import torch

from .datasets import TensorImageDataset
from .registry import DataBundle, register_dataset


@register_dataset("digits")
def digits(root=None, download=False):
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)  # 0..16 -> 0..255
    data = TensorImageDataset(images, torch.from_numpy(d.target))
    return DataBundle(train=data, test=None, classes=[str(i) for i in range(10)], input_size=(1, 8, 8),
                      meta={"mean": (0.3,), "std": (0.37,)})
