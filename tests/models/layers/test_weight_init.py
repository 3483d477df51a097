import torch
from torch import nn

from danlu.models.layers.weight_init import he_group_fan_out_init, init_weights


def test_first_matching_rule_wins_in_module_order():
    model = nn.Sequential(nn.Linear(2, 2), nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    init_weights(model, {nn.Linear: lambda m: nn.init.constant_(m.weight, 1.0),
                         (nn.Linear, nn.Conv2d): lambda m: nn.init.constant_(m.weight, 2.0)})
    assert (model[0].weight == 1).all() and (model[1].weight == 2).all() and (model[2].weight == 1).all()  # BN: default


def test_he_fan_out_counts_per_group():
    torch.manual_seed(0)
    conv = nn.Conv2d(256, 256, 3, groups=256)  # depthwise: fan-out per group is 9
    he_group_fan_out_init(conv)
    assert abs(conv.weight.std().item() - (2 / 9) ** 0.5) < 0.02 and not conv.bias.any()
