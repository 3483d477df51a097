"""airbench94's network: the whitening init whitens patches, the parameter groups are airbench's, shapes and size."""
import pytest
import torch

import danlu
from danlu.optim import create_optimizer, create_scheduler


def _correlated_images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 3, 32, 32, generator=g)
    mix = torch.tensor([[1.0, 0.5, 0.2], [0.0, 1.0, 0.7], [0.3, 0.0, 1.0]])
    return torch.einsum("dc,nchw->ndhw", mix, base) + 0.5 * base.roll(1, dims=-1)  # channel and pixel correlations


def test_whitening_filters_give_unit_covariance_patches():
    model = danlu.create_model("airbench94")
    images = _correlated_images()
    model.init_from_data(images)
    w = model.whiten.weight.double()
    assert w.shape == (24, 3, 2, 2)
    torch.testing.assert_close(w[12:], -w[:12])  # each filter twice, as +v and -v
    patches = images.double().unfold(2, 2, 1).unfold(3, 2, 1).transpose(1, 3).reshape(-1, 12)
    eigenvalues = torch.linalg.eigvalsh(patches.T @ patches / len(patches)).flip(0)
    responses = patches @ w[:12].reshape(12, -1).T
    covariance = responses.T @ responses / len(responses)
    # decorrelated, with variance lambda / (lambda + eps): about 1 for the strong directions, largest first
    torch.testing.assert_close(covariance, torch.diag(eigenvalues / (eigenvalues + model.whiten_eps)), atol=1e-6, rtol=0)


def test_shapes_size_and_frozen_parts():
    model = danlu.create_model("airbench94")
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) == 1_972_792
    frozen = sorted(n for n, p in model.named_parameters() if not p.requires_grad)
    assert frozen == sorted(["whiten.weight"] + [f"blocks.{i}.norm{j}.weight" for i in range(3) for j in (1, 2)])
    bn = model.blocks[0].norm1
    assert (bn.eps, bn.momentum) == (1e-12, pytest.approx(0.4))
    torch.testing.assert_close(model.blocks[1].conv1.weight[:64, :, 1, 1], torch.eye(64))  # Dirac start
    with pytest.raises(ValueError, match="32x32"):
        danlu.create_model("airbench94", img_size=64)


def test_parameter_groups_scale_the_norm_biases():
    model = danlu.create_model("airbench94")
    opt = create_optimizer(model, "nag", lr=1.5, weight_decay=0.0013, momentum=0.85)
    norm, other = opt.param_groups
    assert (norm["lr"], norm["weight_decay"]) == (1.5 * 64, pytest.approx(0.0013 / 64))
    assert (other["lr"], other["weight_decay"]) == (1.5, 0.0013)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in norm["params"]) == sorted(
        f"blocks.{i}.norm{j}.bias" for i in range(3) for j in (1, 2))
    assert "whiten.bias" in [names[id(p)] for p in other["params"]]
    # warmup_lr and min_lr are rates before the groups' scales: 0.2 and 0.07 x lr in both groups
    sched = create_scheduler(opt, "linear", epochs=3, steps_per_epoch=1, warmup_epochs=1, warmup_lr=0.3, min_lr=0.105)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.6 * 96, 0.6 * 1.5])  # warm-up step 1 of 1
    for _ in range(3):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.07 * 96, 0.07 * 1.5])
    with pytest.raises(ValueError, match="explicit lr"):
        create_optimizer(model, "nag")


def test_whitening_bias_trains_in_the_first_three_epochs_only():
    model = danlu.create_model("airbench94")
    for epoch, trains in [(0, True), (2, True), (3, False), (9, False)]:
        model.set_epoch(epoch)
        assert model.whiten.bias.requires_grad is trains
