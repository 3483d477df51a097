"""Per-sample seeds: one deterministic seed per position of an epoch's global sample order, shared by
the engine's samplers and the tar-shard stream, so that a sample's augmentation depends only on
(seed, epoch, position) and not on ranks, loader workers or where a resumed epoch restarts."""
import numpy as np


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Steele et al. 2014): a bijection of uint64 whose outputs for
    consecutive inputs look independent."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def sample_seeds(seed: int, epoch: int, positions: range) -> list[int]:
    """One seed in [0, 2**63) per position of the epoch's global order (fits torch and `random` seeds)."""
    key = _splitmix64(_splitmix64(np.array([seed % 2**64], dtype=np.uint64)) ^ np.uint64(epoch))
    return (_splitmix64(key ^ np.arange(positions.start, positions.stop, positions.step, dtype=np.uint64))
            >> np.uint64(1)).tolist()
