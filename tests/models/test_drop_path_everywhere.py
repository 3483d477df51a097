"""`create_model(name, drop_path_rate=...)` reaches every residual model with timm's per-block rates; at rate 0
the outputs are those of the code before stochastic depth was added."""
import pytest
import torch

from danlu.models import create_model, mobilenetv2, parcnet, resnet
from danlu.models.layers import DropPath

R = 0.2


def _linear(n):  # torch.linspace(0, R, n), as the official ViT / ConvNeXt / (Pyramid)TNT code and timm's ResNet
    return torch.linspace(0, R, n).tolist()


# MobileNetV2's 17 inverted residuals (paper table: n = 1, 2, 3, 4, 3, 3, 1); every block but the first of a stage
# keeps its shape and has a residual; timm's EfficientNet builder gives block i the rate R * i / 17
_MBV2 = [R * i / 17 for i in (2, 4, 5, 7, 8, 9, 11, 12, 14, 15)]


def _parcnet(depths):
    # ten top-level blocks with R * k / 9 (timm's MobileViT); residual ones: the 2nd and 3rd inverted residuals
    # of stage 2 (k = 2, 3), and the ParC blocks (k = 5, 7, 9), whose rate goes to each ParC-MetaFormer block
    rates = [R * k / 9 for k in range(10)]
    return rates[2:4] + [rates[5]] * depths[0] + [rates[7]] * depths[1] + [rates[9]] * depths[2]


# name: (create_model kwargs, input size, expected DropPath rates in module order); parc_resnet50's blocks are
# resnet50's (its rates are checked through the outputs below)
CASES = {
    "resnet50": ({"img_size": 64}, 64, _linear(16)),
    "mobilenetv2": ({"img_size": 64}, 64, _MBV2),
    "parc_mobilenetv2": ({"img_size": 64}, 64, _MBV2),
    "parcnet_s": ({"img_size": 64}, 64, _parcnet((2, 4, 3))),
    "parcnet_xs": ({"img_size": 64}, 64, _parcnet((2, 3, 2))),
    "vit_tiny_patch16_224": ({"img_size": 32}, 32, _linear(12)),
    "tnt_s_patch16_224": ({"img_size": 32, "outer_dim": 32, "inner_dim": 8, "outer_heads": 2, "inner_heads": 2}, 32,
                          _linear(12)),
    "ptnt_ti_patch16_192": ({"img_size": 64}, 64, _linear(13)),
    "convnext_xt": ({"img_size": 32, "layer_scale_init": 1.0}, 32, _linear(18)),  # 1e-6 would hide the branches
}


@pytest.mark.parametrize("name", list(CASES))
def test_rates_and_train_eval(name):
    kwargs, size, expected = CASES[name]
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, drop_path_rate=R, **kwargs)
    rates = [m.p for m in model.modules() if isinstance(m, DropPath)]
    assert rates == pytest.approx(expected, abs=1e-7)
    assert rates[-1] == pytest.approx(max(expected))
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    model.eval()  # BatchNorm and dropout fixed, so only stochastic depth can make two forwards differ
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        for m in model.modules():
            if isinstance(m, DropPath):
                m.train()
        a, b = model(x), model(x)
        assert (a - b).abs().max() > 1e-3 * a.abs().max()  # (MobileNetV2's initial logits are ~1e-10)


@pytest.mark.parametrize("make,chans", [
    (lambda: resnet.Bottleneck(64, 16, drop_path=0.5), 64),
    (lambda: mobilenetv2.InvertedResidual(16, 16, 1, 6, drop_path=0.5), 16),
    (lambda: mobilenetv2.ParCInvertedResidual(16, 16, 6, (8, 8), use_pe=True, drop_path=0.5), 16),
    (lambda: parcnet.InvertedResidual(16, 16, 1, 4, drop_path=0.5), 16),
], ids=["resnet", "mobilenetv2", "parc_mobilenetv2", "parcnet"])
def test_dropped_sample_skips_the_block(make, chans):
    # stochastic depth (Huang et al. 2016): a dropped sample leaves the block as it came (ReLU'd in ResNet)
    block = make().eval()
    block.drop_path.train()
    x = torch.randn(16, chans, 8, 8).relu()
    with torch.no_grad():
        dropped = (block(x) == x).flatten(1).all(1)
    assert 0 < dropped.sum() < len(x)  # seeded: some samples dropped, the others changed by the block


# Pre-logit features at rate 0, 64x64, train mode (batch statistics): model seeded 0, forward seeded 2, computed
# with the code of commit 38d46b6 (before drop_path_rate reached these models), one thread: (sum, [:, :3] of both
# rows). The tolerance covers other CPUs' summation orders, amplified by ~50 batch-statistics BatchNorms.
BEFORE = {
    "resnet50": (4328.61376953125, [0.96243, 0.562649, 0.547136, 0.95707, 1.47934, 1.36175]),
    "parc_resnet50": (4336.77099609375, [0.668386, 0.971921, 1.17291, 1.31931, 0.917147, 0.574214]),
    "mobilenetv2": (1055.949462890625, [0.60287, 0.702087, 0.0649404, 0.187221, 0.136589, 0.855764]),
    "parc_mobilenetv2": (1057.90625, [0.574573, 0.00273148, 0.242696, 0.276402, 0.800624, 0.540592]),
    # ParC-Net: pinned after its position embedding moved before the branch BatchNorm, as the official code
    "parcnet_s": (272.75982666015625, [0.532541, 0.362619, 0.0, -0.0226389, 0.0, -0.0335402]),
    "parcnet_xs": (278.4342956542969, [-0.0, 0.0, 0.574904, 0.733615, 0.450453, -0.0]),
}


@pytest.mark.parametrize("name", list(BEFORE))
def test_rate_zero_keeps_outputs(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, img_size=64, drop_path_rate=0.0).train()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    with torch.no_grad():
        f = model.forward_head(model.forward_features(x), pre_logits=True)
    total, head = BEFORE[name]
    assert f.sum().item() == pytest.approx(total, rel=1e-3)
    assert f[:, :3].flatten().tolist() == pytest.approx(head, rel=1e-3, abs=1e-4)
