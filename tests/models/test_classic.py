import pytest
import torch

import danlu
from danlu.models.flops import count_params
from danlu.models.manual_net import SigmoidNet


def test_seed_tutorial_parameter_counts():
    # 784*128+128 + 128*10+10; conv 448+4640+18496, fc 1024*512+512, 512*10+10; embedding + LSTM(300->40) + 40*16+16 + 17
    assert count_params(danlu.create_model("mlp")) == 101_770
    assert count_params(danlu.create_model("simple_cnn")) == 553_514
    assert count_params(danlu.create_model("lstm_classifier", vocab_size=1000)) == 300_000 + 54_720 + 656 + 17


def test_simple_cnn_adapts_to_grey_28x28():
    model = danlu.create_model("simple_cnn", in_chans=1, img_size=28)
    assert model.fc1.in_features == 64 * 3 * 3
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="built for 28x28"):
        model(torch.randn(2, 1, 32, 32))


def test_backbone_mode_and_pre_logits():
    model = danlu.create_model("simple_cnn", num_classes=0)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 512)
    mlp = danlu.create_model("mlp")
    feats = mlp.forward_features(torch.randn(4, 1, 28, 28))
    assert mlp.forward_head(feats, pre_logits=True).shape == (4, 128)
    assert ((feats > 0) & (feats < 1)).all()  # sigmoid hidden layer


def test_lstm_embedding_from_vectors_frozen():
    vectors = torch.randn(20, 6)
    model = danlu.create_model("lstm_classifier", embedding=vectors, freeze_embedding=True).eval()
    assert torch.equal(model.embedding.weight, vectors) and not model.embedding.weight.requires_grad
    tokens = torch.randint(0, 20, (3, 11))
    assert model(tokens).shape == (3, 1)
    # max over time of the LSTM outputs, then 40 -> 16 -> ReLU -> 1
    h, _ = model.lstm(model.embedding(tokens))
    expected = model.out(torch.relu(model.linear(h.max(dim=1).values)))
    torch.testing.assert_close(model(tokens), expected)
    with pytest.raises(ValueError, match="token ids"):
        model(torch.randn(3, 11))


def test_spatial_dropout_zeroes_whole_embedding_channels_in_the_forward():
    model = danlu.create_model("lstm_classifier", vocab_size=10, embed_dim=64, spatial_dropout=0.5).train()
    tokens = torch.randint(1, 10, (3, 7))  # no padding id: every embedding entry is nonzero
    seen = []  # what the LSTM reads
    model.lstm.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    model(tokens)
    embedded = model.embedding(tokens)
    kept = seen[0][:, :1] != 0  # (batch, 1, channels): the channels kept at the first step
    assert kept.any() and not kept.all() and not torch.equal(kept[0], kept[1])  # drawn per sample
    torch.testing.assert_close(seen[0], embedded * kept / 0.5)  # the same channels at every step, rescaled
    model.eval()(tokens)
    assert torch.equal(seen[1], embedded)


def test_manual_backprop_matches_autograd():
    g = torch.Generator().manual_seed(1)
    net = SigmoidNet(generator=g)
    x, y = torch.randn(4, 5, generator=g), torch.rand(4, 1, generator=g)
    params = {k: v.clone().requires_grad_() for k, v in net.parameters().items()}
    a1 = torch.sigmoid(x @ params["w1"] + params["b1"])
    out = torch.sigmoid(a1 @ params["w2"] + params["b2"])
    (0.5 * ((y - out) ** 2).sum()).backward()
    for name, grad in net.manual_gradients(x, y).items():
        torch.testing.assert_close(grad, params[name].grad, atol=1e-6, rtol=1e-5)
    before = net.loss(x, y)
    for _ in range(50):
        net.sgd_step(x, y, lr=0.5)
    assert net.loss(x, y) < 0.5 * before
