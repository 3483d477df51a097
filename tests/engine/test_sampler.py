from collections import Counter
from itertools import chain, zip_longest

import pytest
import torch

from danlu.engine.sampler import EpochSampler, RepeatedAugSampler


def _ranks(cls, world_size, epoch=0, **kwargs):
    samplers = [cls(rank=r, world_size=world_size, **kwargs) for r in range(world_size)]
    for s in samplers:
        s.set_epoch(epoch)
    return samplers


def _merged(samplers):
    """The global order: rank r holds positions r, r + W, r + 2W, ..."""
    return [item for item in chain.from_iterable(zip_longest(*map(list, samplers))) if item is not None]


def test_epoch_sampler_keeps_its_permutation_padding_and_strided_shards():
    samplers = _ranks(EpochSampler, 3, epoch=2, length=10, seed=4)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(4 + 7919 * 2)).tolist()
    order += order[:2]  # padded to 12 = 3 ranks x 4 steps with the first samples
    assert [list(s) for s in samplers] == [order[r::3] for r in range(3)]
    assert [len(s) for s in samplers] == [4, 4, 4]
    unpadded = _ranks(EpochSampler, 3, length=10, shuffle=False, pad=False)
    assert [list(s) for s in unpadded] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert [len(s) for s in unpadded] == [4, 3, 3]


@pytest.mark.parametrize("length, world_size, per_rank, groups", [
    (10, 2, 6, 4),  # ceil(10 / 2) = 5 -> 6 so that 2 x 6 is a multiple of 3
    (1000, 4, 252, 336),  # ceil(1000 / 4) = 250 -> 252
    (9, 3, 3, 3),  # 3 ranks: any count is whole groups
])
def test_repeated_aug_draws_each_index_exactly_repeats_times_across_ranks(length, world_size, per_rank, groups):
    samplers = _ranks(RepeatedAugSampler, world_size, epoch=1, length=length, seed=3)
    lists = [list(s) for s in samplers]
    assert [len(x) for x in lists] == [len(s) for s in samplers] == [per_rank] * world_size
    counts = Counter(chain.from_iterable(lists))
    assert len(counts) == groups and set(counts.values()) == {3}
    assert all(0 <= i < length for i in counts)


def test_repeated_aug_copies_are_consecutive_and_the_drawn_indices_change_per_epoch():
    (sampler,) = _ranks(RepeatedAugSampler, 1, length=30, seed=1)
    first = list(sampler)
    assert all(first[i] == first[i + 1] == first[i + 2] for i in range(0, 30, 3))
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first, "the order depends only on (seed, epoch)"
    (two_copies,) = _ranks(RepeatedAugSampler, 1, length=30, repeats=2)
    assert set(Counter(two_copies).values()) == {2} and len(two_copies) == 30


@pytest.mark.parametrize("cls", [EpochSampler, RepeatedAugSampler])
def test_resuming_from_start_yields_the_tail_of_the_same_order(cls):
    sampler = cls(23, seed=2, rank=1, world_size=2, sample_seeds=True)
    sampler.set_epoch(5)
    full = list(sampler)
    sampler.set_epoch(5, start=4)
    assert list(sampler) == full[4:] and len(sampler) == len(full) - 4


@pytest.mark.parametrize("cls, length", [(EpochSampler, 11), (RepeatedAugSampler, 11), (RepeatedAugSampler, 40)])
def test_sample_seeds_depend_on_the_global_position_not_on_the_rank_count(cls, length):
    one = _merged(_ranks(cls, 1, epoch=3, length=length, seed=7, sample_seeds=True))
    for world_size in (2, 3):
        merged = _merged(_ranks(cls, world_size, epoch=3, length=length, seed=7, sample_seeds=True))
        common = min(len(one), len(merged))  # padding and whole groups may add a tail
        assert common >= length and merged[:common] == one[:common]


def test_every_copy_gets_its_own_seed_and_seeds_change_with_epoch_and_seed():
    (sampler,) = _ranks(RepeatedAugSampler, 1, length=60, seed=7, sample_seeds=True)
    pairs = list(sampler)
    seeds = [s for _, s in pairs]
    assert all(isinstance(s, int) and 0 <= s < 2**63 for s in seeds)
    assert len(set(seeds)) == len(seeds), "the 3 copies of an index (and all others) differ"
    assert [i for i, _ in pairs] == list(RepeatedAugSampler(60, seed=7))
    sampler.set_epoch(1)
    assert not set(seeds) & {s for _, s in sampler}
    other = RepeatedAugSampler(60, seed=8, sample_seeds=True)
    assert not set(seeds) & {s for _, s in other}


def test_repeats_below_one_raises():
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        RepeatedAugSampler(10, repeats=0)
