"""The one model contract the ImageNet models share (timm's `_builder.py` / `_features.py` conventions).

A model subclasses `ModelBase`, builds its layers, its `feature_info` (one dict a tap: `num_chs`,
`reduction`, `module`) and its classifier, then calls `self._init_features(...)`; it defines only
`_taps(x)` (yield the state after each tap, in order), `_tap_output(i, state, norm, output_fmt)` (that
tap's map) and `_tap_final(state, complete)` (the features `forward_head` takes). From those this base
gives `forward_features`, `forward`, timm's `forward_intermediates`, `features_only=True` with
`out_indices` (the head modules become Identity and their weights are dropped on load) and
`reset_classifier`. `IsotropicBase` adds the taps of ViT-like token models.
"""
from typing import Sequence

import torch
from torch import nn


def feature_take_indices(num_taps: int, indices: int | Sequence[int] | None = None) -> list:
    """timm's rule: None takes every tap, an int n the last n, a sequence those indices (negative from the end)."""
    if indices is None:
        indices = num_taps
    if isinstance(indices, int):
        if not 0 < indices <= num_taps:
            raise ValueError(f"indices={indices} asks for the last {indices} of {num_taps} feature taps; use 1 to {num_taps}")
        return list(range(num_taps - indices, num_taps))
    taken = [num_taps + i if i < 0 else i for i in indices]
    bad = [i for i, t in zip(indices, taken) if not 0 <= t < num_taps]
    if bad or not taken:
        raise ValueError(f"feature indices {list(indices)} must be non-empty and each in -{num_taps}..{num_taps - 1} "
                         f"(the model has {num_taps} feature taps)")
    return taken


class ModelBase(nn.Module):
    """Shared forward switch, feature taps and classifier handling; see the module docstring."""

    classifier_name = "head"  # the Linear that `reset_classifier` replaces and `load_pretrained` may drop
    head_names = ("norm", "head")  # modules after the last tap that a features_only model replaces by Identity
    output_fmts = ("NCHW",)  # formats `forward_intermediates` can give

    def _init_features(self, feature_info: list, features_only: bool = False, out_indices=None) -> None:
        """Record the taps; with features_only, `forward` returns the maps of `out_indices` (default: all)."""
        self.num_taps = len(feature_info)
        self.features_only = features_only
        self.out_indices = tuple(feature_take_indices(self.num_taps, out_indices))
        self.feature_info = [feature_info[i] for i in self.out_indices]
        if features_only:
            for name in self.head_names:
                parent, _, child = name.rpartition(".")
                setattr(self.get_submodule(parent), child, nn.Identity())

    def pruned_prefixes(self) -> tuple:
        """State-dict prefixes of the modules features_only removed (their weights are dropped on load)."""
        return tuple(f"{name}." for name in self.head_names) if self.features_only else ()

    def _classifier(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """A new classifier for num_classes (0: none, `forward` gives the pooled features), as timm's."""
        self.num_classes = num_classes
        setattr(self, self.classifier_name, self._classifier(num_classes))

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None, norm: bool = False,
                              stop_early: bool = False, output_fmt: str = "NCHW", intermediates_only: bool = False):
        """timm's forward_intermediates: (final features, [the taps' maps]), or the maps only.

        indices: None (every tap), an int n (the last n) or a sequence of tap indices; norm: apply the final
        norm (every tap of an isotropic model, the last of a pyramid); stop_early: stop after the last tap taken
        (the final features are then those of that depth); output_fmt: 'NCHW' or, for token models, 'NLC'.
        """
        if output_fmt not in self.output_fmts:
            raise ValueError(f"output_fmt must be one of {self.output_fmts} for {type(self).__name__}, got {output_fmt!r}")
        take = feature_take_indices(self.num_taps, indices)
        stop = max(take) if stop_early or intermediates_only else self.num_taps - 1
        intermediates = {}
        for i, state in enumerate(self._taps(x)):
            if i in take:
                intermediates[i] = self._tap_output(i, state, norm, output_fmt)
            if i == stop:
                break
        maps = [intermediates[i] for i in take]
        return maps if intermediates_only else (self._tap_final(state, i == self.num_taps - 1), maps)

    def _tap_output(self, i, state, norm, output_fmt):
        return state  # by default a tap's state is its map, and the final norm (if any) acts on pooled features

    def _tap_final(self, state, complete):
        return state

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for state in self._taps(x):  # a loop, not a list: earlier states are freed as it goes
            pass
        return self._tap_final(state, True)

    def forward(self, x: torch.Tensor):
        if self.features_only:
            return self.forward_intermediates(x, self.out_indices, intermediates_only=True)
        return self.forward_head(self.forward_features(x))


def tokens_as(x: torch.Tensor, grid, output_fmt: str) -> torch.Tensor:
    """(B, H*W, C) tokens as given ('NLC') or as a (B, C, H, W) map ('NCHW')."""
    return x if output_fmt == "NLC" else x.reshape(x.shape[0], *grid, -1).permute(0, 3, 1, 2)


class IsotropicBase(ModelBase):
    """An isotropic token model (ViT, TNT): a tap's state is a block's (tokens, patch grid), the first
    `num_prefix_tokens` of them class tokens; the final norm applies to every tap, as timm's ViT."""

    output_fmts = ("NCHW", "NLC")

    def _init_block_taps(self, depth: int, dim: int, patch: int, features_only: bool, out_indices) -> None:
        """`_init_features` with one tap a block (`blocks.i`, dim channels at the patch stride)."""
        self._init_features([{"num_chs": dim, "reduction": patch, "module": f"blocks.{i}"} for i in range(depth)],
                            features_only, out_indices)

    def _tap_output(self, i, state, norm, output_fmt):
        x, grid = state
        return tokens_as((self.norm(x) if norm else x)[:, self.num_prefix_tokens:], grid, output_fmt)

    def _tap_final(self, state, complete):
        return self.norm(state[0])
