from .attention import Attention, fused_attn, scaled_dot_product, use_fused_attn
from .conv_bn_act import conv_bn_act
from .drop_path import DropPath, drop_path, drop_path_rates
from .helpers import block_layer_id, check_image, to_2tuple
from .inverted_residual import InvertedResidual
from .mlp import Mlp
from .parc import ParC
from .pos_embed import resample_abs_pos_embed, resample_checkpoint_pos_embed, resample_grid, square_grid
from .rel_pos import resample_rel_pos
from .sr_attention import SpatialReductionAttention, reduced_grid

__all__ = ["Attention", "DropPath", "InvertedResidual", "Mlp", "ParC", "SpatialReductionAttention", "block_layer_id",
           "check_image", "conv_bn_act", "drop_path", "drop_path_rates", "fused_attn", "reduced_grid",
           "resample_abs_pos_embed", "resample_checkpoint_pos_embed", "resample_grid", "resample_rel_pos",
           "scaled_dot_product", "square_grid", "to_2tuple", "use_fused_attn"]
