"""ParC's two exact forms along one axis, and the resize of its kernels and embeddings to the runtime length.

- ``'spatial'``: the input concatenated with its first N-1 rows (columns), then a valid convolution:
  the official semantics (circular cross-correlation), O(N) work per output; this is the form ONNX
  exports.
- ``'fft'``: ``irfft(rfft(x + pe) * conj(rfft(k)), n=N)`` along the one axis (a product in frequency
  space is a circular cross-correlation when the kernel spectrum is conjugated), O(log N) per output,
  with its backward written out (`CircularXCorrFFT`).
"""
import torch
import torch.nn.functional as F

from .fft_backward import CircularXCorrFFT

IMPLS = ("spatial", "fft", "auto")


def resize_axis(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """Bilinear (align_corners=True) resize of t along dim (-2 or -1) to length n; t itself when already n."""
    if t.shape[dim] == n:
        return t
    size = (n, 1) if dim == -2 else (1, n)
    return F.interpolate(t, size=size, mode="bilinear", align_corners=True)


def parc_spatial(x, weight, pe, bias, groups, dim):
    """Circular cross-correlation along dim by concatenation + valid convolution (the official form)."""
    if pe is not None:
        x = x + pe
    x = torch.cat([x, x[:, :, :-1]] if dim == -2 else [x, x[..., :-1]], dim=dim)
    return F.conv2d(x, weight, bias, groups=groups)


def parc_fft(x, weight, pe, bias, groups, dim):
    """The same circular cross-correlation through a real FFT along dim only (see `CircularXCorrFFT`)."""
    if x.dtype in (torch.float16, torch.bfloat16):  # no CPU FFT in half precision (autocast): run in float32
        up = [t.float() if t is not None else None for t in (x, weight, pe, bias)]
        return parc_fft(*up, groups, dim).to(x.dtype)
    return CircularXCorrFFT.apply(x, weight.flatten(2), pe, bias, groups, dim)


IMPL_FNS = {"spatial": parc_spatial, "fft": parc_fft}
