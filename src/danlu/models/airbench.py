"""airbench's CIFAR-10 network (Keller Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", 2024).

A 2x2 patch-whitening convolution, fixed to the eigenvectors of the training patches' covariance (each one twice,
+v and -v, scaled by 1 / sqrt(eigenvalue + eps)), then GELU, three conv groups (conv3x3 -> max-pool 2 -> BatchNorm
-> GELU -> conv3x3 -> BatchNorm -> GELU), a global 3x3 max-pool and a bias-free linear layer whose output is scaled
by 1/9. BatchNorm has its scale frozen at 1 (only the biases train, at `bias_scaler` times the lr), eps 1e-12 and
a running-average momentum of 0.4; convolutions start as identities (Dirac) on their first input channels.

The whitening weights depend on the data: `init_from_data(images)` sets them from normalised training images
(airbench uses the first 5,000); the trainer calls it before the first step. The whitening bias trains for the
first `whiten_bias_epochs` epochs only (`set_epoch`)."""
import torch
from torch import nn

from .layers.helpers import to_2tuple
from .registry import register_model


class _BatchNorm(nn.BatchNorm2d):
    def __init__(self, channels, momentum):
        super().__init__(channels, eps=1e-12, momentum=1.0 - momentum)  # airbench's momentum is the kept fraction
        self.weight.requires_grad_(False)


class _Conv(nn.Conv2d):
    def __init__(self, cin, cout, kernel_size=3, padding="same", bias=False):
        super().__init__(cin, cout, kernel_size, padding=padding, bias=bias)

    def reset_parameters(self):
        super().reset_parameters()
        if self.bias is not None:
            self.bias.data.zero_()
        w = self.weight.data
        nn.init.dirac_(w[:w.size(1)])  # the first cin filters pass their input through: a near-identity start


class ConvGroup(nn.Module):
    def __init__(self, cin, cout, bn_momentum):
        super().__init__()
        self.conv1, self.pool, self.norm1 = _Conv(cin, cout), nn.MaxPool2d(2), _BatchNorm(cout, bn_momentum)
        self.conv2, self.norm2 = _Conv(cout, cout), _BatchNorm(cout, bn_momentum)
        self.act = nn.GELU()

    def forward(self, x):
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class AirbenchNet(nn.Module):
    """airbench94's network: widths (64, 256, 256) after a 2 x (3 x 2 x 2) = 24-channel whitening layer."""

    def __init__(self, num_classes=10, in_chans=3, img_size=32, widths=(64, 256, 256), bn_momentum=0.6,
                 scaling_factor=1 / 9, whiten_kernel=2, whiten_eps=5e-4, bias_scaler=64.0, whiten_bias_epochs=3):
        super().__init__()
        if tuple(to_2tuple(img_size)) != (32, 32):
            raise ValueError(f"airbench's network is built for 32x32 images (its pools end at 1x1), got {img_size}; "
                             "use --img-size 32")
        self.num_classes, self.whiten_eps = num_classes, whiten_eps
        self.bias_scaler, self.whiten_bias_epochs = bias_scaler, whiten_bias_epochs
        width = 2 * in_chans * whiten_kernel**2
        self.whiten = _Conv(in_chans, width, whiten_kernel, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.act = nn.GELU()
        self.blocks = nn.Sequential(*(ConvGroup(cin, cout, bn_momentum)
                                      for cin, cout in zip((width, *widths[:-1]), widths)))
        self.pool = nn.MaxPool2d(3)
        self.head = nn.Linear(widths[-1], num_classes, bias=False)
        self.scaling_factor = scaling_factor

    def forward(self, x):
        x = self.pool(self.blocks(self.act(self.whiten(x))))
        return self.head(x.flatten(1)) * self.scaling_factor

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """Set the whitening filters from normalised images (N, C, H, W): the eigenvectors v of the covariance
        of all k x k patches, largest eigenvalue first, as the filters v / sqrt(lambda + eps) and their negatives."""
        w = self.whiten.weight
        c, kh, kw = w.shape[1:]
        patches = images.float().unfold(2, kh, 1).unfold(3, kw, 1).transpose(1, 3).reshape(-1, c * kh * kw)
        patches = patches.double()
        eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.T.flip(0)  # descending
        filters = (eigenvectors / torch.sqrt(eigenvalues + self.whiten_eps)[:, None]).reshape(-1, c, kh, kw)
        w.copy_(torch.cat((filters, -filters)).to(w.dtype))

    def set_epoch(self, epoch: int) -> None:
        """The whitening bias trains only in the first `whiten_bias_epochs` epochs."""
        self.whiten.bias.requires_grad_(epoch < self.whiten_bias_epochs)

    def param_groups(self, weight_decay: float) -> list[dict]:
        """airbench's two groups: BatchNorm biases at `bias_scaler` x the lr (with weight decay / bias_scaler, so
        the decay per step is the same), everything else that trains, biases included, at the lr."""
        norm, other = [], []
        for name, p in self.named_parameters():
            if p.requires_grad or name == "whiten.bias":  # the whitening bias is frozen later, by set_epoch
                (norm if ".norm" in name else other).append(p)
        return [{"params": norm, "lr_scale": self.bias_scaler, "weight_decay": weight_decay / self.bias_scaler},
                {"params": other, "lr_scale": 1.0, "weight_decay": weight_decay}]


@register_model(input_size=(3, 32, 32), num_classes=10, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
                crop_pct=1.0)
def airbench94(**kwargs):
    return AirbenchNet(**kwargs)
