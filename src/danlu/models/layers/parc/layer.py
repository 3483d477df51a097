"""The ParC layer (ParC-Net, ECCV 2022): a position-aware circular convolution with a map-long kernel."""
import torch
from torch import nn

from .auto import AUTO_CHOICES, choose_impl
from .forms import IMPL_FNS, IMPLS, parc_spatial, resize_axis


class ParC(nn.Module):
    """Position-aware circular convolution along one axis, with a global (map-long) kernel.

    Args:
        channels: input and output channels.
        direction: 'H' (kernel along the width) or 'V' (kernel along the height), paper naming.
        base_size: stored kernel/embedding length (the feature size at the training resolution).
        groups: None for depthwise (groups=channels), 1 for dense, or any divisor of channels.
        bias: learn a per-channel bias.
        use_pe: learn a positional embedding added before the convolution.
        impl: 'spatial', 'fft' (`forms`) or 'auto' (`auto`); an attribute, changeable later.

    Parameters use conv layouts, so official checkpoints map one to one: ``weight`` is
    (C, C/groups, base_size, 1) for 'V' and (C, C/groups, 1, base_size) for 'H'; ``pe`` is
    (1, C, base_size, 1) or (1, C, 1, base_size).
    """

    auto_choices = AUTO_CHOICES  # (shape, dtype, device, grad, groups, direction) -> measured faster impl, shared

    def __init__(self, channels: int, direction: str, base_size: int, groups: int | None = None, bias: bool = True,
                 use_pe: bool = True, impl: str = "spatial"):
        super().__init__()
        direction = str(direction).upper()
        if direction not in ("H", "V"):
            raise ValueError(f"ParC direction must be 'H' (kernel along the width) or 'V' (along the height), got {direction!r}")
        groups = channels if groups is None else groups
        if channels % groups:
            raise ValueError(f"ParC groups={groups} must divide channels={channels}; use None for depthwise or 1 for dense")
        self.channels, self.direction, self.base_size, self.groups = channels, direction, int(base_size), groups
        self.dim = -1 if direction == "H" else -2
        shape = (1, base_size) if direction == "H" else (base_size, 1)
        self.weight = nn.Parameter(torch.empty(channels, channels // groups, *shape))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.pe = nn.Parameter(torch.empty(1, channels, *shape)) if use_pe else None
        self.impl = impl
        self.register_buffer("frozen_weight", None, persistent=False)
        self.register_buffer("frozen_pe", None, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        # trunc-normal(.02) kernel and embedding, zero bias: the official ParC ConvNets' init
        nn.init.trunc_normal_(self.weight, std=0.02)
        if self.pe is not None:
            nn.init.trunc_normal_(self.pe, std=0.02)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @property
    def impl(self):
        return self._impl

    @impl.setter
    def impl(self, value):
        if value not in IMPLS:
            raise ValueError(f"ParC impl must be one of {IMPLS}, got {value!r}")
        self._impl = value

    def kernel_and_pe(self, n):
        """Kernel and positional embedding resized to runtime length n (the stored tensors when n == base_size)."""
        pe = None if self.pe is None else resize_axis(self.pe, n, self.dim)
        return resize_axis(self.weight, n, self.dim), pe

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"ParC expects a (batch, {self.channels}, height, width) tensor, got shape {tuple(x.shape)}")
        n = x.shape[self.dim]
        if self.frozen_weight is not None:
            if n != self.frozen_weight.shape[self.dim]:
                raise ValueError(f"this ParC is frozen at length {self.frozen_weight.shape[self.dim]} by freeze() but got "
                                 f"length {n}; call unfreeze() or freeze it at the new size")
            return parc_spatial(x, self.frozen_weight, self.frozen_pe, self.bias, self.groups, self.dim)
        weight, pe = self.kernel_and_pe(n)
        impl = choose_impl(self, x, weight, pe) if self._impl == "auto" else self._impl
        return IMPL_FNS[impl](x, weight, pe, self.bias, self.groups, self.dim)

    @torch.no_grad()
    def freeze(self, size):
        """Fix kernel and embedding at runtime size (h, w) and run the spatial form: what ONNX export needs."""
        n = size[0] if self.dim == -2 else size[1]
        weight, pe = self.kernel_and_pe(n)
        self.frozen_weight = weight.detach().clone()
        self.frozen_pe = None if pe is None else pe.detach().clone()

    def unfreeze(self):
        self.frozen_weight = self.frozen_pe = None

    def extra_repr(self):
        return (f"{self.channels}, direction={self.direction!r}, base_size={self.base_size}, groups={self.groups}, "
                f"bias={self.bias is not None}, use_pe={self.pe is not None}, impl={self._impl!r}")




def set_parc_impl(model: nn.Module, impl: str) -> nn.Module:
    """Set `impl` ('spatial', 'fft' or 'auto') on every ParC layer of model; returns model."""
    for m in model.modules():
        if isinstance(m, ParC):
            m.impl = impl
    return model
