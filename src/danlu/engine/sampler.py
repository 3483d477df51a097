"""Training-order samplers: an epoch's global order depends only on (seed, epoch) and is sharded
strided across processes. A resumed run therefore sees the same batches, and `start` skips the
batches an interrupted epoch had already done. With `sample_seeds`, each item comes with a seed
derived from (seed, epoch, its position in the global order), so a sample's augmentation is the
same whatever the number of processes or loader workers, and after a mid-epoch resume."""
import math

import torch
from torch.utils.data import Sampler

from ..data.seeding import sample_seeds


def _permutation(length: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(length, generator=torch.Generator().manual_seed(seed + 7919 * epoch))


class _ShardedSampler(Sampler):
    """Strided shards of a global order: batch k of every rank together form batch k of a
    one-process run with the global batch size. Subclasses give the order and its length."""

    def __init__(self, length: int, seed: int, rank: int, world_size: int, sample_seeds: bool):
        self.length, self.seed, self.rank, self.world_size = length, seed, rank, world_size
        self.sample_seeds = sample_seeds
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's order; `start` is the number of this process's samples to skip."""
        self.epoch, self.start = epoch, start

    def _total(self) -> int:
        raise NotImplementedError

    def _order(self) -> torch.Tensor:
        raise NotImplementedError

    def positions(self) -> range:
        """This rank's remaining positions in the global order."""
        return range(self.rank + self.start * self.world_size, self._total(), self.world_size)

    def indices(self) -> torch.Tensor:
        """The indices at `positions()`, as one tensor (what in-memory data sets gather by)."""
        positions = self.positions()
        return self._order()[positions.start:positions.stop:positions.step]

    def __iter__(self):
        indices = self.indices().tolist()
        if not self.sample_seeds:
            return iter(indices)
        return zip(indices, sample_seeds(self.seed, self.epoch, self.positions()))

    def __len__(self) -> int:
        return len(self.positions())


class EpochSampler(_ShardedSampler):
    """A fresh permutation per epoch (or the data set's order without `shuffle`); with `pad`, the
    first samples are repeated so that every process takes the same number of steps, as
    DistributedSampler does. Yields indices, or `(index, sample_seed)` pairs with `sample_seeds`."""

    def __init__(self, length: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 pad: bool = True, sample_seeds: bool = False):
        super().__init__(length, seed, rank, world_size, sample_seeds)
        self.shuffle, self.pad = shuffle, pad

    def _total(self) -> int:
        return math.ceil(self.length / self.world_size) * self.world_size if self.pad else self.length

    def _order(self) -> torch.Tensor:
        order = _permutation(self.length, self.seed, self.epoch) if self.shuffle else torch.arange(self.length)
        return torch.cat([order, order[: self._total() - self.length]])


class RepeatedAugSampler(_ShardedSampler):
    """Repeated augmentation (Hoffer et al. 2020; DeiT's `RASampler`): each index of a (seed, epoch)
    permutation is repeated `repeats` times in a row, so with strided shards its copies land on
    different ranks (or in one batch) and are augmented differently, each with its own sample seed.
    An epoch keeps about the usual number of steps, `ceil(length / world_size)` per rank, by taking
    only the first `1 / repeats` of the permutation; that count is rounded up so that the global order
    holds whole groups of `repeats` and every rank gets the same count (a permutation shorter than the
    groups needed, on tiny sets, wraps around). DeiT instead takes `floor(length / 256) * 256 /
    world_size` per rank, which is no step at all below 256 samples and may cut a group."""

    def __init__(self, length: int, seed: int = 0, rank: int = 0, world_size: int = 1, repeats: int = 3,
                 sample_seeds: bool = False):
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1 (1 turns repeated augmentation off), got {repeats}")
        super().__init__(length, seed, rank, world_size, sample_seeds)
        self.repeats = repeats

    def _total(self) -> int:
        # the per-rank count n must make world_size * n a multiple of repeats
        step = self.repeats // math.gcd(self.repeats, self.world_size)
        return math.ceil(math.ceil(self.length / self.world_size) / step) * step * self.world_size

    def _order(self) -> torch.Tensor:
        groups = torch.arange(self._total() // self.repeats) % self.length
        return _permutation(self.length, self.seed, self.epoch)[groups].repeat_interleave(self.repeats)
