"""danlu's models; importing this package registers every model."""
from . import classic, vit  # noqa: F401  (registers models)
from . import convnext, mobilenetv2, resnet  # noqa: F401
from . import parcnet  # noqa: F401
from . import pyramid_tnt, tnt  # noqa: F401
from .pretrained import WeightMismatchError, load_pretrained
from .registry import create_model, get_model_config, list_models, register_model
from .vit import ViT, VisionTransformer
