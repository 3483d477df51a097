"""Pieces are addressed by name in a chain, so a hook finds its piece wherever the chain puts it."""
import pytest
import torch
from torch import nn

from danlu.optim import SWATS, ChainOptimizer
from danlu.optim.framework import Piece, descent, ema


class noop(Piece):
    def __call__(self, tile, d):
        pass


class SWATSWithAPieceAfterDescent(SWATS):
    def chain(self, group):
        return [*super().chain(group), noop()]


def _trajectory(cls, steps=60):
    """Noisy quadratic 0.5 |w - target|^2 + noise; returns the final weights and the switch step."""
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(6, generator=gen, dtype=torch.float64)
    w = nn.Parameter(torch.zeros(6, dtype=torch.float64))
    opt = cls([w], lr=0.05, switch_eps=1e-3)
    for _ in range(steps):
        w.grad = w.detach() - target + 0.1 * torch.randn(6, generator=gen, dtype=torch.float64)
        opt.step()
    return w.detach(), opt.metrics()["swats_switch_step"]


def test_swats_finds_its_projection_wherever_the_chain_puts_it():
    w, switch = _trajectory(SWATS)
    assert 1 < switch < 60  # the run switches to SGD, so the projection piece was read every Adam step
    w_moved, switch_moved = _trajectory(SWATSWithAPieceAfterDescent)
    assert switch_moved == switch and torch.equal(w_moved, w)


def test_piece_by_name_and_unknown_name():
    pieces = [ema(0.9), noop(), descent(0.1)]
    assert ChainOptimizer.piece(pieces, "noop") is pieces[1]
    assert [p.name for p in pieces] == ["ema", "noop", "descent"]
    with pytest.raises(ValueError, match=r"^the chain has no piece 'descnt' \(did you mean descent\?\); "
                                         r"it has ema, noop, descent$"):
        ChainOptimizer.piece(pieces, "descnt")
