"""Resizing learned position embeddings to another token grid."""
import torch.nn.functional as F


def resample_grid(pos, old_grid, new_grid, mode="bicubic"):
    """Interpolate a (1, H*W, C) or (1, C, H, W) grid embedding from old_grid to new_grid.

    Returns the input unchanged (same tensor) when the grids match, so the native size is exact.
    """
    if tuple(old_grid) == tuple(new_grid):
        return pos
    tokens = pos.ndim == 3
    if tokens:
        pos = pos.reshape(1, old_grid[0], old_grid[1], -1).permute(0, 3, 1, 2)
    pos = F.interpolate(pos.float(), size=tuple(new_grid), mode=mode, align_corners=False).to(pos.dtype)
    if tokens:
        pos = pos.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], -1)
    return pos
