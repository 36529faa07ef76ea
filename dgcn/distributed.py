"""One process or many (``torchrun``): where this process stands, setup, barriers, reductions.

Everything that asks "which process am I" goes through this module: :func:`distributed_env`
reads what ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), :func:`rank` prefers
the initialised process group, and :func:`is_main_process` is the one test for "the process
that writes files and prints" (rank 0; the only process without ``torchrun``). Which
precisions a device runs is :mod:`dgcn.precision`'s question.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Subset

from dgcn.errors import ConfigError


def describe_device(device: torch.device) -> str:
    """The device in words, e.g. ``Tesla T4 (compute capability 7.5)`` or ``this CPU``."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor})"
    return f"this {device.type.upper()}"


#: what to do about a launch environment that is not torchrun's
_FIX = (
    "these variables are set by torchrun: unset RANK, LOCAL_RANK and WORLD_SIZE to run one "
    "process, or launch with torchrun --nproc_per_node N -m dgcn ..."
)


#: more processes than any machine room holds: a value past it is a typo
MAX_PROCESSES = 2**20


def _env_int(name: str, default: int, low: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= MAX_PROCESSES:
        shown = raw if len(raw) <= 20 else raw[:17] + "..."
        raise ConfigError(
            f"{name}={shown!r} must be a whole number from {low} to {MAX_PROCESSES}; {_FIX}"
        )
    return value


def distributed_env(launching: bool = False) -> dict[str, int]:
    """RANK, WORLD_SIZE and LOCAL_RANK as set by ``torchrun`` (0, 1, 0 without it), checked:
    the one reader of the launch environment, so that a stray ``RANK=1`` in a shell cannot
    make a single process believe it is not the main one (it would train, save nothing and
    exit 0).

    Args:
        launching: also require what a process group needs to start (``MASTER_ADDR`` and
            ``MASTER_PORT`` when ``WORLD_SIZE`` > 1), as :func:`setup` does.

    Raises:
        ConfigError: a value that is not a whole number from 0 (1 for WORLD_SIZE) to
            :data:`MAX_PROCESSES` (``WORLD_SIZE=two``, ``0``, ``-1``),
            ``RANK`` or ``LOCAL_RANK`` not below ``WORLD_SIZE`` (``RANK=1`` alone), or, when
            launching, several processes without torchrun's rendezvous address.
    """
    env = {
        "rank": _env_int("RANK", 0, 0),
        "world_size": _env_int("WORLD_SIZE", 1, 1),
        "local_rank": _env_int("LOCAL_RANK", 0, 0),
    }
    size = env["world_size"]
    for name in ("rank", "local_rank"):
        if env[name] >= size:
            where = "is unset (one process)" if "WORLD_SIZE" not in os.environ else f"is {size}"
            raise ConfigError(
                f"{name.upper()}={env[name]} but WORLD_SIZE {where}: a rank must be below the "
                f"number of processes; {_FIX}"
            )
    if launching and size > 1:
        missing = [n for n in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(n)]
        if missing:
            raise ConfigError(
                f"WORLD_SIZE={size} but {' and '.join(missing)} unset (several processes "
                f"need a rendezvous address); {_FIX}"
            )
    return env


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank: the process group's when one is initialised, else ``$RANK`` (0)."""
    return dist.get_rank() if _initialized() else distributed_env()["rank"]


def world_size() -> int:
    """The number of processes: the process group's when initialised, else ``$WORLD_SIZE``."""
    return dist.get_world_size() if _initialized() else distributed_env()["world_size"]


def local_rank() -> int:
    """This process's index on its machine (``$LOCAL_RANK``, 0 without ``torchrun``)."""
    return distributed_env()["local_rank"]


def is_main_process(of_rank: int | None = None) -> bool:
    """Whether this process (or the process of rank ``of_rank``) is the main one, rank 0: the
    one that writes run files, prints results and shows progress bars."""
    return (rank() if of_rank is None else of_rank) == 0


@dataclass
class DistInfo:
    """Where this process stands: rank, number of processes, its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """:func:`is_main_process` for this rank."""
        return is_main_process(self.rank)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> DistInfo:
    """Initialise the process group under ``torchrun`` (NCCL on CUDA, gloo on CPU).

    Args:
        device: ``auto`` (CUDA when available), ``cuda`` or ``cpu``.

    Raises:
        ConfigError: a launch environment that is not torchrun's (see
            :func:`distributed_env`), before anything is started.
    """
    env = distributed_env(launching=not _initialized())
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
    if _initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (no-op for one process)."""
    if _initialized():
        dist.barrier()


def any_process(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is true on at least one (e.g. 'the loss is not finite')."""
    return bool(max_over_processes([int(flag)], info)[0])


def max_over_processes(values: list[int], info: DistInfo) -> list[int]:
    """Each of ``values`` as its largest over the processes, on every rank (one all-reduce);
    e.g. [the signal received, the time limit reached] so that all stop at one iteration."""
    if not info.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.int64, device=info.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [int(v) for v in tensor.tolist()]


def shard(dataset, info: DistInfo):
    """This process's share of a dataset for evaluation: items rank, rank + N, ... (no padding,
    so every item is counted once when the confusion matrices are all-reduced)."""
    return Subset(dataset, range(info.rank, len(dataset), info.world_size))


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order, on every process; ``[obj]`` for one
    process. Every rank must call it."""
    if not info.distributed:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_buffers(module: torch.nn.Module, info: DistInfo, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics, ...) of ``module`` to every
    process; nothing for one process. Every rank must call it with the same module."""
    if not info.distributed:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer, src)
