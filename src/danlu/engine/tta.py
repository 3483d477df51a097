"""Test-time augmentation: average a classifier's logits over cheap views of each image (airbench's
`tta_level`). 'flip' averages the image and its mirror; 'flip-translate' gives that half the weight
and the mirrored pair shifted one pixel up-left and one down-right (reflect padding) the other half."""
import torch
import torch.nn.functional as F

TTA_MODES = ("none", "flip", "flip-translate")


def _mirror(model, x):
    return 0.5 * model(x) + 0.5 * model(x.flip(-1))


def tta_logits(model, x: torch.Tensor, mode: str = "none") -> torch.Tensor:
    """The logits of `model` on the batch `x` (N, C, H, W), averaged over the views of `mode`."""
    if mode == "none":
        return model(x)
    if mode == "flip":
        return _mirror(model, x)
    if mode != "flip-translate":
        raise ValueError(f"unknown test-time augmentation '{mode}'; choose one of: {', '.join(TTA_MODES)}")
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = 0.5 * _mirror(model, padded[..., :h, :w]) + 0.5 * _mirror(model, padded[..., 2:, 2:])
    return 0.5 * _mirror(model, x) + 0.5 * shifted
