"""One process or many (``torchrun``): setup, device, rank-0 helpers, reductions."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from dgcn.config import distributed_env


@dataclass
class DistInfo:
    """Where this process stands: rank, number of processes, its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> DistInfo:
    """Initialise the process group under ``torchrun`` (NCCL on CUDA, gloo on CPU).

    Args:
        device: ``auto`` (CUDA when available), ``cuda`` or ``cpu``.
    """
    env = distributed_env()
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(env["local_rank"])
        dev = torch.device("cuda", env["local_rank"])
    else:
        dev = torch.device("cpu")
    if env["world_size"] > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(env["rank"], env["world_size"], env["local_rank"], dev)


def cleanup() -> None:
    """Tear down the process group if one was started."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op for one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def any_process(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is true on at least one (e.g. 'the loss is not finite')."""
    if not info.distributed:
        return flag
    tensor = torch.tensor([1 if flag else 0], device=info.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def shard(dataset, info: DistInfo):
    """This process's share of a dataset for evaluation: items rank, rank + N, ... (no padding,
    so every item is counted once when the confusion matrices are all-reduced)."""
    from torch.utils.data import Subset

    return Subset(dataset, range(info.rank, len(dataset), info.world_size))
