from .attention import Attention, fused_attn, scaled_dot_product, use_fused_attn
from .drop_path import DropPath, drop_path, drop_path_rates
from .helpers import block_layer_id, check_image, to_2tuple
from .mlp import Mlp
from .parc import ParC
from .pos_embed import resample_grid
from .rel_pos import resample_rel_pos
from .sr_attention import SpatialReductionAttention, reduced_grid
