"""Autocast for training and evaluation, and the one warning that keeps `--bf16` from being a trap: on a CPU
without native bfloat16 (avx512_bf16 or AMX) oneDNN emulates it, 8-25x slower than float32 (measured: ViT-S
training 8.6x, ResNet-50 inference 25x on AVX2-only cores)."""
import contextlib
import warnings

import torch

_warned = False


def native_bf16(device_type: str) -> bool:
    """Whether bfloat16 runs at native speed here: always on CUDA, on a CPU only with avx512_bf16 or AMX."""
    return device_type != "cpu" or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast(device_type: str, bf16: bool = False, fp16: bool = False):
    """The autocast context for bf16 or fp16 (neither: a null context, since a disabled torch.autocast still costs
    its checks at every step); warns once where bf16 is emulated."""
    global _warned
    if not (bf16 or fp16):
        return contextlib.nullcontext()
    if bf16 and not _warned and not native_bf16(device_type):
        _warned = True
        warnings.warn("--bf16 on this CPU is emulated (no avx512_bf16 or AMX) and runs about 8-25x slower than "
                      "float32; pass --no-bf16 (or drop --bf16) to train in float32", stacklevel=2)
    return torch.autocast(device_type, dtype=torch.float16 if fp16 else torch.bfloat16)
