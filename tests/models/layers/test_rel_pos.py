import torch
import torch.nn.functional as F

from danlu.models.layers import resample_rel_pos


def test_same_grids_return_the_bias_itself():
    bias = torch.randn(1, 2, 12, 3)
    assert resample_rel_pos(bias, (3, 4), (1, 3), (3, 4), (1, 3)) is bias


def test_each_query_row_is_resized_as_a_map_over_the_key_grid():
    bias = torch.randn(1, 2, 6, 12)  # queries on 2x3, keys on 3x4
    out = resample_rel_pos(bias, (2, 3), (3, 4), (2, 3), (5, 7))
    assert out.shape == (1, 2, 6, 35)
    head, query = 1, 4
    row = F.interpolate(bias[0, head, query].reshape(1, 1, 3, 4), size=(5, 7), mode="bicubic", align_corners=False)
    torch.testing.assert_close(out[0, head, query], row.flatten(), rtol=0, atol=1e-6)


def test_each_key_column_is_resized_as_a_map_over_the_query_grid():
    bias = torch.randn(1, 2, 6, 12)
    out = resample_rel_pos(bias, (2, 3), (3, 4), (4, 5), (3, 4))
    assert out.shape == (1, 2, 20, 12)
    head, key = 0, 7
    col = F.interpolate(bias[0, head, :, key].reshape(1, 1, 2, 3), size=(4, 5), mode="bicubic", align_corners=False)
    torch.testing.assert_close(out[0, head, :, key], col.flatten(), rtol=0, atol=1e-6)


def test_constant_bias_stays_constant_when_both_grids_change():
    bias = torch.full((1, 3, 16, 4), -0.5)
    out = resample_rel_pos(bias, (4, 4), (2, 2), (7, 5), (2, 3))
    torch.testing.assert_close(out, torch.full((1, 3, 35, 6), -0.5))
