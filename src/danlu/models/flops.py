"""Parameter and FLOP counts. FLOPs come from `torch.utils.flop_counter` with attention on its
explicit path, because the counter sees nothing inside the CPU kernel of
`F.scaled_dot_product_attention`. MACs = FLOPs / 2."""
import torch
from torch.utils.flop_counter import FlopCounterMode

from .layers.attention import fused_attn


def count_params(model, trainable_only=False):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_flops(model, example):
    """Forward FLOPs of `model` on `example` (a tensor, or an input shape without the batch dim)."""
    if not isinstance(example, torch.Tensor):
        example = torch.zeros(1, *example)
    was_training = model.training
    model.eval()
    try:
        with fused_attn(False), FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        model.train(was_training)
    return counter.get_total_flops()
