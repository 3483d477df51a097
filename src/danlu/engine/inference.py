"""Rebuilding a trained model from its checkpoint, and preparing image files for it."""
from ..data.image_files import load_images
from ..models import create_model
from . import checkpoint as ckpt


def load_checkpoint_model(path, device="cpu"):
    """(model in eval mode, model info) from a run directory, checkpoint directory or weights file."""
    ckpt_dir = ckpt.resolve_checkpoint(path)
    info = ckpt.read_model_info(ckpt_dir)
    if "model" not in info:
        raise ValueError(f"'{ckpt_dir}' was not written by danlu's trainer (no model metadata); "
                         "build the model yourself and use danlu.load_pretrained")
    model = create_model(info["model"], **info["model_kwargs"])
    model.load_state_dict(ckpt.load_weights(ckpt_dir))
    return model.to(device).eval(), info


def load_image(path, info):
    """A normalised (C, H, W) tensor from an image file, converted to the model's channels and size."""
    return load_images([path], info["img_size"], info["mean"], info["std"], info["model_kwargs"].get("in_chans", 3))[0]
