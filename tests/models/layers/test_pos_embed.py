import torch

from danlu.models.layers import resample_abs_pos_embed, resample_checkpoint_pos_embed, square_grid


def _ramp(rows, cols):
    """(1, rows*cols, 1) grid embedding whose value is the column index (bilinear resizing keeps it a ramp)."""
    return torch.arange(float(cols)).repeat(rows).view(1, rows * cols, 1)


def test_prefix_tokens_are_kept_and_the_grid_resized():
    cls = torch.full((1, 1, 1), 7.0)
    pos = torch.cat([cls, _ramp(4, 4)], dim=1)
    assert resample_abs_pos_embed(pos, (4, 4), (4, 4), num_prefix_tokens=1) is pos
    out = resample_abs_pos_embed(pos, (4, 8), (4, 4), num_prefix_tokens=1, mode="bilinear")
    assert out.shape == (1, 33, 1) and out[0, 0, 0] == 7.0
    # align_corners=False upsampling by 2: output column j samples input column (j + 0.5) / 2 - 0.5, clamped
    expected = ((torch.arange(8.0) + 0.5) / 2 - 0.5).clamp(0, 3).repeat(4)
    torch.testing.assert_close(out[0, 1:, 0], expected)


def test_checkpoint_embedding_of_another_square_grid_is_resized_else_left():
    own = torch.zeros(1, 1 + 6, 1)  # a 2x3 grid with a class token
    sd = resample_checkpoint_pos_embed({"pos": torch.cat([torch.ones(1, 1, 1), _ramp(4, 4)], 1)}, "pos", own, (2, 3), 1)
    assert sd["pos"].shape == own.shape and sd["pos"][0, 0, 0] == 1.0
    odd = torch.zeros(1, 1 + 5, 1)  # 5 patches: no square grid, left for the strict check to name
    assert resample_checkpoint_pos_embed({"pos": odd}, "pos", own, (2, 3), 1)["pos"] is odd
    assert square_grid(196) == (14, 14) and square_grid(195) is None
