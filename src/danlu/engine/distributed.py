"""Multi-process training under `torchrun`: process-group set-up, rank queries and reductions.

Outside torchrun (no WORLD_SIZE in the environment) everything degrades to one process.

When one process dies or hangs, the others must not wait forever in a collective: every collective
times out after DANLU_DIST_TIMEOUT seconds (default 600, above the longest rank-0-only work between
two collectives, a checkpoint save or a plot; torch's own defaults are 10 min for NCCL, 30 for gloo),
and NCCL errors tear the process down (TORCH_NCCL_ASYNC_ERROR_HANDLING=1 unless set) instead of
leaving a kernel spinning. torchrun then stops the rest of the job and names the first failed rank.
"""
import os
from datetime import timedelta

import torch
import torch.distributed as dist

TIMEOUT_ENV, DEFAULT_TIMEOUT_S = "DANLU_DIST_TIMEOUT", 600.0


def collective_timeout() -> timedelta:
    """How long a collective waits for the other processes ($DANLU_DIST_TIMEOUT seconds)."""
    text = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds above 0, got {text!r}; "
                         f"unset it for the default {DEFAULT_TIMEOUT_S:g}")
    return timedelta(seconds=seconds)


def init_distributed(device_type: str) -> tuple[int, int, int]:
    """Join the process group torchrun describes; returns (rank, world_size, local_rank)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    if not dist.is_initialized():
        timeout = collective_timeout()
        if device_type == "cuda":
            os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")  # read when the NCCL group is made
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo", timeout=timeout)
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def configure_threads(threads: int | None = None) -> None:
    """torch's CPU threads: `threads`, else (unless OMP_NUM_THREADS says) this process's share of the cores
    it may run on, so that torchrun's processes do not oversubscribe the machine."""
    import torch
    if threads is None and "OMP_NUM_THREADS" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(threads or max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def all_reduce_sum(values: list, device) -> list:
    """Sum a list of numbers over all processes."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()
