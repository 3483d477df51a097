import pytest
import torch

import danlu
from danlu.apps.export import export_onnx
from danlu.models.layers.parc import ParC

onnx = pytest.importorskip("onnx", reason="ONNX export checks need the 'export' extra: pip install 'danlu[export]'")
pytest.importorskip("onnxruntime", reason="ONNX export checks need the 'export' extra: pip install 'danlu[export]'")


def _make_every_layer_count(model, x):
    """Give the network an O(1) signal everywhere, so an export error anywhere would show in the output:
    layer scales to 1 (ConvNeXt's 1e-6 would hide the ParC branches) and BatchNorm statistics from a batch."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(1.0)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 1.0  # running statistics := this batch's
        model.train()(x)
    return model.eval()


@pytest.mark.parametrize("name,size", [("parc_convnext_xt", 64), ("parcnet_s", (32, 48))])
def test_onnx_matches_pytorch(tmp_path, name, size):
    torch.manual_seed(0)
    model = danlu.create_model(name, num_classes=10)
    h, w = (size, size) if isinstance(size, int) else size
    _make_every_layer_count(model, torch.randn(4, 3, h, w))
    with torch.no_grad():
        scale = model(torch.randn(2, 3, h, w)).abs().max().item()
    assert scale > 0.05  # the check below is about real numbers, not ~0 logits
    err = export_onnx(model, tmp_path / "m.onnx", size, opset=17)
    assert err <= 1e-4
    graph = onnx.load(str(tmp_path / "m.onnx"))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    ops = {n.op_type for n in graph.graph.node}
    assert "Resize" not in ops  # kernels were fixed at the export size, not interpolated in the graph
    assert all(m.frozen_weight is None for m in model.modules() if isinstance(m, ParC))  # unfrozen afterwards


def test_features_only_backbone_exports_every_map(tmp_path):
    model = danlu.create_model("parcnet_xs", features_only=True)
    _make_every_layer_count(model, torch.randn(4, 3, 32, 32))
    err = export_onnx(model, tmp_path / "m.onnx", 32)  # the last map reaches ~100: relative 1e-4 holds
    assert 0 < err <= 1e-2
    assert len(onnx.load(str(tmp_path / "m.onnx")).graph.output) == 5


def test_old_opset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="opset 12 is too old"):
        export_onnx(torch.nn.Identity(), tmp_path / "m.onnx", 8, opset=12)
