"""danlu (丹炉): global-receptive-field vision models, optimizers on one framework, a training engine."""
from .models import ViT, create_model, get_model_config, list_models, load_pretrained, register_model

__version__ = "0.1.0"
