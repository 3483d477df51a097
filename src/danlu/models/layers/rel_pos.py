"""Resizing a learned relative-position bias to other query and key grids."""
from .pos_embed import resample_grid


def resample_rel_pos(bias, old_q, old_k, new_q, new_k, mode="bicubic"):
    """Interpolate a (1, heads, Hq*Wq, Hk*Wk) bias from grids (old_q, old_k) to (new_q, new_k).

    Each query's row is a map over the key grid and each key's column a map over the query grid, so
    both are resized spatially (rather than treating the flat (queries, keys) matrix as an image).
    Returns the input itself when both grids match, so the native size is exact.
    """
    old_q, old_k, new_q, new_k = map(tuple, (old_q, old_k, new_q, new_k))
    if old_q == new_q and old_k == new_k:
        return bias
    _, h, nq, _ = bias.shape
    nk = new_k[0] * new_k[1]
    bias = resample_grid(bias.reshape(1, h * nq, *old_k), old_k, new_k, mode)
    bias = bias.reshape(1, h, nq, nk).transpose(2, 3).reshape(1, h * nk, *old_q)
    return resample_grid(bias, old_q, new_q, mode).reshape(1, h, nk, -1).transpose(2, 3)
