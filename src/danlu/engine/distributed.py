"""Multi-process training under `torchrun`: process-group set-up, rank queries and reductions.

Outside torchrun (no WORLD_SIZE in the environment) everything degrades to one process."""
import os

import torch
import torch.distributed as dist


def init_distributed(device_type):
    """Join the process group torchrun describes; returns (rank, world_size, local_rank)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def configure_threads(threads=None):
    """torch's CPU threads: `threads`, else (unless OMP_NUM_THREADS says) this process's share of the cores
    it may run on, so that torchrun's processes do not oversubscribe the machine."""
    import torch
    if threads is None and "OMP_NUM_THREADS" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(threads or max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def is_distributed():
    return dist.is_available() and dist.is_initialized()


def rank():
    return dist.get_rank() if is_distributed() else 0


def world_size():
    return dist.get_world_size() if is_distributed() else 1


def is_main():
    return rank() == 0


def all_reduce_sum(values, device):
    """Sum a list of numbers over all processes."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier():
    if is_distributed():
        dist.barrier()


def cleanup():
    if is_distributed():
        dist.destroy_process_group()
