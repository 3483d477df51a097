"""ONNX export with a check against PyTorch.

ParC layers resize their kernels at run time, which is what made the official ParC-Net fail to
export ("convolution for kernel of unknown shape"). Here every ParC is frozen at the export size
(kernel and positional embedding interpolated once, spatial concat + conv form), so the graph holds
constant kernels and plain Concat/Conv nodes; the batch axis stays dynamic.

The exporter is torch's TorchScript-based one (`dynamo=False`): torch >= 2.9 defaults to the
torch.export-based exporter, which needs the separate `onnxscript` package; the TorchScript path
needs only `onnx` and works offline. onnx and onnxruntime are the optional extra `danlu[export]`.
"""
import warnings

import numpy as np
import torch

from ..models.layers.parc import export_mode


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("checking an ONNX export needs onnxruntime; pip install 'danlu[export]' "
                          "(or pass verify=False / --no-verify)") from None
    return onnxruntime


def export_onnx(model, path, img_size=224, opset=17, in_chans=None, verify=True, atol=1e-4):
    """Export `model` to ONNX at `img_size` (int or (h, w)); returns the max |ORT - PyTorch| (None without verify).

    With verify=True, onnxruntime runs the file on a batch of two random images and its output must
    equal the unfrozen PyTorch model's to `atol`, else RuntimeError. The tolerance is absolute for
    outputs up to 1 (logits) and relative above (unnormalised feature maps, where float32 rounding grows
    with the values).
    """
    if opset < 17:
        raise ValueError(f"opset {opset} is too old; use 17 or later (LayerNorm is a single op from 17)")
    h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    in_chans = in_chans or getattr(model, "in_chans", 3)
    model.eval()
    example = torch.randn(1, in_chans, h, w)
    with export_mode(model, example), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)  # torch's notice that this exporter is legacy
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)  # shape checks: the export size is fixed anyway
        torch.onnx.export(model, (example,), str(path), opset_version=opset, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    if not verify:
        return None
    ort = _import_onnxruntime()
    x = torch.randn(2, in_chans, h, w)
    with torch.no_grad():
        expected = model(x)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)  # features_only: a list of maps
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})
    err = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True))
    scale = max([1.0] + [float(e.abs().max()) for e in expected])
    if not err <= atol * scale:
        raise RuntimeError(f"onnxruntime's output differs from PyTorch's by {err:.3g} (> {atol:g} x {scale:.3g}) for {path}; "
                           "the exported graph is not faithful")
    return err


def run(model_name, img_size=224, out="model.onnx", weights=None, opset=17, verify=True):
    """The `danlu export` command."""
    from ..models import create_model

    model = create_model(model_name, pretrained=weights or False)
    err = export_onnx(model, out, img_size, opset, verify=verify)
    size = f"{img_size}x{img_size}" if isinstance(img_size, int) else "x".join(map(str, img_size))
    print(f"exported {model_name} at {size} (opset {opset}) to {out}")
    if err is not None:
        print(f"onnxruntime vs PyTorch: max abs difference {err:.2e}")
    return err
