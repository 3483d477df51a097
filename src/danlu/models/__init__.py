"""danlu's models; importing this package registers every model."""
from . import (  # noqa: F401  (registers models)
           airbench,
           classic,
           convnext,
           mobilenetv2,
           parcnet,
           pyramid_tnt,
           resnet,
           tnt,
           vit,
)
from .pretrained import WeightMismatchError, load_pretrained
from .registry import create_model, get_model_config, list_models, register_model
from .vit import VisionTransformer, ViT

__all__ = ["ViT", "VisionTransformer", "WeightMismatchError", "create_model", "get_model_config", "list_models",
           "load_pretrained", "register_model"]
