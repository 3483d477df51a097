"""danlu's models; importing this package registers every model."""
from . import classic, vit  # noqa: F401  (registers models)
from .pretrained import WeightMismatchError, load_pretrained
from .registry import create_model, get_model_config, list_models, register_model
from .vit import ViT, VisionTransformer
