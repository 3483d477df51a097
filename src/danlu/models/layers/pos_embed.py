"""Resizing learned position embeddings to another token grid."""
import math

import torch
import torch.nn.functional as F


def resample_grid(pos: torch.Tensor, old_grid, new_grid, mode: str = "bicubic") -> torch.Tensor:
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


def resample_abs_pos_embed(pos: torch.Tensor, new_grid, old_grid, num_prefix_tokens: int = 0,
                           mode: str = "bicubic") -> torch.Tensor:
    """A (1, prefix + H*W, C) embedding with its grid part resized from old_grid to new_grid and its prefix
    (class) tokens kept, as timm's `resample_abs_pos_embed`; the input itself when the grids match."""
    if tuple(old_grid) == tuple(new_grid) or not num_prefix_tokens:
        return resample_grid(pos, old_grid, new_grid, mode)
    prefix, grid = pos[:, :num_prefix_tokens], pos[:, num_prefix_tokens:]
    return torch.cat([prefix, resample_grid(grid, old_grid, new_grid, mode)], dim=1)


def square_grid(n: int):
    """The (r, r) grid with r*r == n, or None: the grid a checkpoint's flat embedding was trained on."""
    r = math.isqrt(n)
    return (r, r) if r * r == n else None


def resample_checkpoint_pos_embed(state_dict: dict, key: str, own: torch.Tensor, new_grid,
                                  num_prefix_tokens: int = 0) -> dict:
    """state_dict with its embedding `key`, trained on another square grid than `own`'s, resized to new_grid
    (for a model's `checkpoint_filter_fn`); unchanged when it fits or its grid is not square (the strict
    check then names the shape mismatch)."""
    pos = state_dict.get(key)
    if pos is not None and pos.shape != own.shape:
        old = square_grid(pos.shape[1] - num_prefix_tokens)
        if old:
            state_dict[key] = resample_abs_pos_embed(pos, new_grid, old, num_prefix_tokens)
    return state_dict
