"""The training-order sampler: a fresh permutation per epoch from (seed, epoch), sharded across
processes. Because the order depends only on (seed, epoch), a resumed run sees the same batches,
and `start` skips the batches an interrupted epoch had already done."""
import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    def __init__(self, length, seed=0, shuffle=True, rank=0, world_size=1, pad=True):
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch, start=0):
        """Select the epoch's order; `start` is the number of this process's samples to skip."""
        self.epoch, self.start = epoch, start

    def _indices(self):
        if self.shuffle:
            order = torch.randperm(self.length, generator=torch.Generator().manual_seed(self.seed + 7919 * self.epoch))
        else:
            order = torch.arange(self.length)
        order = order.tolist()
        if self.pad and self.length % self.world_size:
            # every process must take the same number of steps; pad with the first samples, as DistributedSampler does
            order += order[: self.world_size - self.length % self.world_size]
        # strided shards: batch k of every rank together form batch k of a one-process run with the global batch size
        return order[self.rank::self.world_size]

    def __iter__(self):
        return iter(self._indices()[self.start:])

    def __len__(self):
        return len(self._indices()) - self.start
