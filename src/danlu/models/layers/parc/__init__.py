"""ParC, the position-aware circular convolution (ParC-Net, ECCV 2022) and its FFT form (Fast-ParC).

A ParC layer mixes a whole row or column of the feature map with one global kernel as long as that
row or column. Directions use the paper's naming:

- ``'H'`` (ParC-H): the kernel runs along the width, ``y[c,i,j] = b[c] + sum_s k[c,s] x[c,i,(j+s) % W]``;
- ``'V'`` (ParC-V): the kernel runs along the height, ``y[c,i,j] = b[c] + sum_s k[c,s] x[c,(i+s) % H,j]``.

The official code names them the other way round: its ``type='H'`` (module ``gcc_H``) has a (K, 1)
kernel along the height, i.e. the paper's ParC-V. The ParC networks map the official keys onto
``parc_v`` / ``parc_h`` in their ``checkpoint_filter_fn``.

A learnable positional embedding (one value per channel and position along the kernel's axis) is
added to the input before the convolution. Kernel and embedding are stored at ``base_size`` and
resized to the runtime length by bilinear interpolation with ``align_corners=True`` (as the official
detection/segmentation code does), each direction from its own axis, so any H x W works; at the base
size they are used as stored, without interpolation.

One idea a file: `layer` (the `ParC` module, `set_parc_impl`), `forms` (the spatial and FFT forms,
`resize_axis`), `fft_backward` (the FFT form's hand-written adjoint), `auto` (impl='auto' timing),
`freeze` (`freeze_parc`, `unfreeze_parc`, `export_mode` for ONNX export) and `convnets` (what the ParC
ConvNets share).
"""
from .convnets import ParCConvNetMixin, map_official_parc_keys, parc_embedding_names, parc_split
from .fft_backward import CircularXCorrFFT
from .forms import IMPLS, parc_fft, parc_spatial, resize_axis
from .freeze import export_mode, freeze_parc, unfreeze_parc
from .layer import ParC, set_parc_impl

__all__ = ["IMPLS", "CircularXCorrFFT", "ParC", "ParCConvNetMixin", "export_mode", "freeze_parc", "map_official_parc_keys",
           "parc_embedding_names", "parc_fft", "parc_spatial", "parc_split", "resize_axis", "set_parc_impl",
           "unfreeze_parc"]
