"""Small shape and naming helpers shared by the models."""


def to_2tuple(x):
    """An int or an (h, w) pair as an (h, w) tuple."""
    if isinstance(x, int):
        return (x, x)
    x = tuple(x)
    if len(x) != 2:
        raise ValueError(f"expected an int or an (h, w) pair, got {x!r}")
    return x


def check_image(x, in_chans, multiple=1, model=""):
    """Raise a one-sentence ValueError when x is not a (B, in_chans, H, W) batch with H, W divisible by multiple (int or (h, w))."""
    name = f"{model} " if model else ""
    if x.ndim != 4:
        raise ValueError(f"{name}expects a (batch, channels, height, width) tensor, got shape {tuple(x.shape)}; "
                         "add a batch dimension with x.unsqueeze(0)")
    if x.shape[1] != in_chans:
        raise ValueError(f"{name}expects {in_chans} input channels, got {x.shape[1]}; "
                         f"convert the images or build the model with in_chans={x.shape[1]}")
    (h, w), (mh, mw) = x.shape[-2:], to_2tuple(multiple)
    if h % mh or w % mw:
        raise ValueError(f"{name}needs height divisible by {mh} and width by {mw}, got {h}x{w}; "
                         f"resize or pad to {-(-h // mh) * mh}x{-(-w // mw) * mw}")


def block_layer_id(name: str, stem: tuple, depth: int) -> int:
    """Layer-wise lr decay id of parameter `name` in a model with one `blocks` list, as timm groups it: names
    starting with a `stem` prefix (the embeddings) 0, `blocks.i.*` i + 1, the final `norm` with the last block
    (timm's MATCH_PREV_GROUP; BEiT and MAE put it with the head instead), the rest (head) depth + 1."""
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    if name.startswith("norm."):
        return depth
    return 0 if name.startswith(stem) else depth + 1
