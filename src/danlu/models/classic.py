"""The seed tutorial's models (use cases 1-3): an MLP for digits, a small CNN for CIFAR-10 and an
LSTM sentence classifier. Each adapts to its input (`in_chans`, `img_size`, vocabulary) and offers
the same `forward_features` / `forward_head` interface as the big models."""
import torch
from torch import nn

from .layers import check_image, to_2tuple
from .registry import register_model


class _Classifier(nn.Module):
    """Shared tail: `forward = forward_head(forward_features(x))`, nothing exempt from weight decay."""

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def no_weight_decay(self):
        return set()


class MLP(_Classifier):
    """Flattened image -> Linear -> sigmoid -> Linear (the seed's 784-128-10 network)."""

    def __init__(self, in_chans=1, img_size=28, hidden=128, num_classes=10, act_layer=nn.Sigmoid):
        super().__init__()
        h, w = to_2tuple(img_size)
        self.in_chans, self.img_size, self.num_classes = in_chans, (h, w), num_classes
        self.num_features = hidden
        self.hidden = nn.Linear(in_chans * h * w, hidden)
        self.act = act_layer()
        self.output = nn.Linear(hidden, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x):
        check_image(x, self.in_chans, 1, "mlp")
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f"mlp was built for {self.img_size[0]}x{self.img_size[1]} images, got "
                             f"{x.shape[-2]}x{x.shape[-1]}; build it with img_size={tuple(x.shape[-2:])}")
        return self.act(self.hidden(x.flatten(1)))

    def forward_head(self, x, pre_logits=False):
        return x if pre_logits else self.output(x)


class SimpleCNN(_Classifier):
    """Three conv3x3 (16/32/64) + ReLU + 2x2 max-pool stages, then Linear 512 -> classes.

    For 32x32 RGB the flattened map has 64*4*4 = 1024 features, as in the seed."""

    def __init__(self, in_chans=3, img_size=32, num_classes=10, widths=(16, 32, 64), hidden=512, drop_rate=0.0):
        super().__init__()
        h, w = to_2tuple(img_size)
        self.in_chans, self.img_size, self.num_classes = in_chans, (h, w), num_classes
        layers, c = [], in_chans
        for width in widths:
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2)]
            c, h, w = width, h // 2, w // 2
        if h == 0 or w == 0:
            raise ValueError(f"simple_cnn needs images of at least {2 ** len(widths)} pixels a side, got {img_size}")
        self.features = nn.Sequential(*layers)
        self.flat_features = c * h * w
        self.fc1 = nn.Linear(self.flat_features, hidden)
        self.act = nn.ReLU(inplace=True)
        self.head_drop = nn.Dropout(drop_rate)
        self.num_features = hidden
        self.fc2 = nn.Linear(hidden, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x):
        check_image(x, self.in_chans, 1, "simple_cnn")
        x = self.features(x).flatten(1)
        if x.shape[1] != self.flat_features:
            raise ValueError(f"simple_cnn was built for {self.img_size[0]}x{self.img_size[1]} images, got "
                             f"{x.shape[-2]}x{x.shape[-1]}; build it with img_size=<your size>")
        return x

    def forward_head(self, x, pre_logits=False):
        x = self.head_drop(self.act(self.fc1(x)))
        return x if pre_logits else self.fc2(x)


class LSTMClassifier(_Classifier):
    """Embedding (optionally from given word vectors, optionally frozen) -> spatial dropout ->
    LSTM -> max over time -> Linear 16 -> ReLU -> logits (1 logit for binary sentiment)."""

    def __init__(self, vocab_size=1000, embed_dim=300, hidden_size=40, embedding=None, freeze_embedding=False,
                 num_classes=1, spatial_dropout=0.1, padding_idx=0):
        super().__init__()
        if embedding is not None:
            embedding = torch.as_tensor(embedding, dtype=torch.float32)
            vocab_size, embed_dim = embedding.shape
        self.num_classes = num_classes
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        if embedding is not None:
            self.embedding.weight.data.copy_(embedding)
        self.embedding.weight.requires_grad_(not freeze_embedding)
        self.embedding_dropout = nn.Dropout1d(spatial_dropout)  # drops whole embedding channels over all steps
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.num_features = 16
        self.linear = nn.Linear(hidden_size, 16)
        self.relu = nn.ReLU()
        self.out = nn.Linear(16, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, tokens):
        if tokens.ndim != 2 or tokens.is_floating_point():
            raise ValueError(f"lstm_classifier expects a (batch, length) tensor of token ids, got "
                             f"{tuple(tokens.shape)} {tokens.dtype}")
        x = self.embedding(tokens)
        x = self.embedding_dropout(x.transpose(1, 2)).transpose(1, 2)
        x, _ = self.lstm(x)
        return x.max(dim=1).values

    def forward_head(self, x, pre_logits=False):
        x = self.relu(self.linear(x))
        return x if pre_logits else self.out(x)


# the seed tutorials evaluate whole images: no centre crop
@register_model(input_size=(1, 28, 28), num_classes=10, mean=(0.5,), std=(0.5,), crop_pct=1.0)
def mlp(**kwargs):
    return MLP(**kwargs)


@register_model(input_size=(3, 32, 32), num_classes=10, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0)
def simple_cnn(**kwargs):
    return SimpleCNN(**kwargs)


@register_model(input_size=(70,), num_classes=1, input_kind="tokens")
def lstm_classifier(**kwargs):
    return LSTMClassifier(**kwargs)
