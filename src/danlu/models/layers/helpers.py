"""Small shape helpers shared by the models."""


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
