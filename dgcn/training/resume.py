"""What a run keeps from one start to the next, whichever machine resumes it.

A run resolves its precision (``train.precision: auto`` is bf16 on a GPU of compute capability
>= 8, fp16 on an older one such as a T4, fp32 on a CPU) and its micro-batch when it starts.
Both are stored in every checkpoint (``settings``) and kept when the run is resumed, on this
machine or on another one, unless the resuming config overrides them: a ``train.precision`` or
``train.micro_batch`` other than the run's own. :func:`resume_settings` makes that decision and
lists every change, which :func:`~dgcn.training.loop.fit` prints in one line and records in the
run's ``config-history.jsonl``. A run whose own precision this device cannot train in (bf16 on
a T4, fp16 on a CPU) is refused in one line that names the override to pass; it is never
switched silently. A GradScaler state is loaded only when both the checkpoint and this start
use one (fp16).

Also here: the random states of every process (:func:`rng_state`, :func:`restore_rng`), the
wall-clock limit ``train.time_limit`` (:class:`TimeLimit`) and :func:`run_status`, a run
folder's state as a notebook reads it before resuming. The run folder's files and the checkpoint
a resume starts from (:func:`~dgcn.training.rundir.find_checkpoint`) are
:mod:`dgcn.training.rundir`'s.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dgcn import distributed
from dgcn.config import Config, config_from_dict
from dgcn.distributed import describe_device
from dgcn.errors import ConfigError
from dgcn.precision import NEEDS, device_precisions, resolve_precision
from dgcn.training.rundir import (
    HISTORY,
    ResumePoint,
    changed_keys,
    find_checkpoint,
)


def accumulation_steps(cfg: Config, world_size: int) -> tuple[int, int]:
    """(micro batch per process, accumulation steps) so that the global batch is exact."""
    batch = cfg.train.batch_size
    micro = cfg.train.micro_batch or max(1, batch // world_size)
    if batch % (micro * world_size):
        raise ConfigError(
            f"train.batch_size={batch} is not a multiple of train.micro_batch={micro} x "
            f"{world_size} processes; choose micro_batch so that it divides"
        )
    return micro, batch // (micro * world_size)


@dataclass
class RunSettings:
    """What a run resolved on the machine that trains it, stored in each of its checkpoints.

    Attributes:
        precision: ``fp32``, ``bf16`` or ``fp16`` (never ``auto``).
        micro_batch: images per forward pass per process.
        accumulation: forward passes per SGD step per process.
        processes: the number of processes (``torchrun``'s world size).
        device: the device in words (:func:`describe_device`).
    """

    precision: str
    micro_batch: int
    accumulation: int
    processes: int
    device: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> RunSettings | None:
        """The settings stored in a checkpoint; None for one written before they were kept."""
        saved = state.get("settings")
        if not isinstance(saved, dict):
            return None
        try:
            return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls)})
        except KeyError:
            return None


def resume_settings(
    cfg: Config, info: distributed.DistInfo, point: ResumePoint | None
) -> tuple[RunSettings, list[str]]:
    """The precision and micro-batch this start trains with, and what changes against the run.

    A new run (``point`` None), and a checkpoint written before settings were stored, resolve
    both from ``cfg`` on this device. A resumed run keeps the precision and micro-batch of its
    checkpoint unless ``cfg`` overrides them: ``train.precision`` or ``train.micro_batch``
    other than in the run's config, resolved as for a new run. The run's micro-batch is kept
    as long as it divides ``train.batch_size`` over this number of processes (fewer processes:
    more accumulation steps, the same images per pass).

    Returns:
        The settings, and one entry per change against the checkpoint, e.g.
        ``precision bf16 -> fp16``, ``micro-batch 4 x 2 -> 2 x 4``, ``processes 2 -> 1``,
        ``train.time_limit 0.0 -> '11h30m'`` (every config key that differs).

    Raises:
        ConfigError: the run's own precision does not run on this device (the message names
            the override to pass), or ``train.micro_batch`` does not divide the batch.
    """
    world, device = info.world_size, info.device
    saved = RunSettings.from_checkpoint(point.state) if point is not None else None
    run_cfg = config_from_dict(point.state["config"]) if point is not None else None
    keys = changed_keys(run_cfg, cfg) if run_cfg is not None else {}
    changes = [f"{key} {old!r} -> {new!r}" for key, (old, new) in keys.items()]
    if saved is None:
        precision = resolve_precision(cfg.train.precision, device).name
        micro, accumulation = accumulation_steps(cfg, world)
        return RunSettings(precision, micro, accumulation, world, describe_device(device)), changes
    where = point.path.parent
    if "train.precision" in keys:
        precision = resolve_precision(cfg.train.precision, device).name
    else:
        precision = saved.precision
        available = device_precisions(device)
        if precision not in available:
            raise ConfigError(
                f"the run in {where} trains in {precision}, which {describe_device(device)} "
                f"cannot: {NEEDS[precision]}; resume it in {available[0]} with --opt "
                f"train.precision={available[0]} (the change is recorded in {HISTORY}), or on "
                f"a device that runs {precision}"
            )
    micro, batch = saved.micro_batch, cfg.train.batch_size
    if "train.micro_batch" in keys or batch % (micro * world):
        # an override, or the run's micro-batch no longer divides the batch (grown or shrunk
        # with --allow-config-change, other processes): resolved as for a new run
        micro, accumulation = accumulation_steps(cfg, world)
    else:
        accumulation = batch // (micro * world)
    settings = RunSettings(precision, micro, accumulation, world, describe_device(device))
    resolved = []
    if precision != saved.precision:
        resolved.append(f"precision {saved.precision} -> {precision}")
    if (micro, accumulation) != (saved.micro_batch, saved.accumulation):
        resolved.append(
            f"micro-batch {saved.micro_batch} x {saved.accumulation} -> {micro} x {accumulation}"
        )
    if world != saved.processes:
        resolved.append(f"processes {saved.processes} -> {world}")
    return settings, resolved + changes


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's random states: CPU, Python, and its own GPU's when it trains on one."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore :func:`rng_state` output (a list of every GPU's state, as older checkpoints hold
    it, is read at this device's index)."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    cuda = state.get("cuda")
    if cuda is None or device.type != "cuda":
        return
    if isinstance(cuda, (list, tuple)):
        index = device.index or 0
        if index >= len(cuda):
            return
        cuda = cuda[index]
    torch.cuda.set_rng_state(cuda, device)


def rank_seed(seed: int, rank: int, iteration: int = 0) -> int:
    """The seed of process ``rank``'s own random stream (rank 0 keeps the run's stream; a
    process without a saved state at a resume starts from this seed at ``iteration``)."""
    return (seed * 1_000_003 + rank * 7_919 + iteration * 104_729) % (2**63 - 1)


def restore_rng(state: dict[str, Any], info: distributed.DistInfo, seed: int) -> str | None:
    """Restore this process's random states from a checkpoint: each rank its own
    (``rng_ranks``, one per process; a single-process checkpoint holds only ``rng``).

    A checkpoint of another number of processes: rank r restores the state saved by rank r
    when there is one, and a rank without one starts the stream of :func:`rank_seed` at the
    checkpoint's iteration. The data is then split differently anyway, so such a resume is
    not bit-identical to an uninterrupted run.

    Returns:
        A note on that case, in one line; None when every rank restored its own state.
    """
    saved = state.get("rng_ranks") or [state["rng"]]
    if info.rank < len(saved):
        set_rng_state(saved[info.rank], info.device)
    else:
        torch.manual_seed(rank_seed(seed, info.rank, int(state["iteration"])))
    if len(saved) == info.world_size:
        return None
    return (
        f"random states saved by {len(saved)} process(es) for {info.world_size}: ranks from "
        f"{len(saved)} on start new streams seeded by (train.seed, rank, iteration)"
    )


class TimeLimit:
    """When to stop for ``train.time_limit``: as soon as the next iteration, with the
    evaluation due after it and a checkpoint, would end past the limit.

    The durations are the last ones measured (``step``, ``evaluation``, ``checkpoint``, in
    seconds, set by the loop); before the first checkpoint its duration is unknown, so the
    limit can be overrun by one checkpoint write (seconds; more on a network drive).

    Args:
        seconds: the limit (0 = none), counted from ``start``.
        start: a :func:`time.perf_counter` reading (default: now).
    """

    def __init__(self, seconds: float, start: float | None = None) -> None:
        self.seconds = seconds
        self.start = time.perf_counter() if start is None else start
        self.step = self.evaluation = self.checkpoint = 0.0

    def __bool__(self) -> bool:
        return self.seconds > 0

    def expired(self, evaluation_next: bool, now: float | None = None) -> bool:
        """Whether to stop now rather than run one more iteration."""
        if not self.seconds:
            return False
        now = time.perf_counter() if now is None else now
        upcoming = self.step + self.checkpoint + (self.evaluation if evaluation_next else 0.0)
        return now - self.start + upcoming > self.seconds


@dataclass
class RunStatus:
    """A run folder's state, as read from its checkpoint (nothing is trained or written).

    Attributes:
        config: the run's own config (preset name, overrides and all), as its checkpoint
            holds it: resume with it to continue the same run.
        iteration: the checkpoint's iteration.
        checkpoint: the file read (``last.pt``, or ``previous.pt``, see :func:`find_checkpoint`).
        settings: the precision, micro-batch, accumulation, processes and device the run last
            trained with (None for a checkpoint written before they were kept).
        note: why ``last.pt`` was passed over (None when it was read).
    """

    config: Config
    iteration: int
    checkpoint: Path
    settings: RunSettings | None
    note: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the run has reached ``train.iterations``."""
        return self.iteration >= self.config.train.iterations


def run_status(run_dir: str | Path) -> RunStatus | None:
    """The state of the run in ``run_dir``; None when it holds no checkpoint.

    Example (a notebook that resumes its run on whatever GPU it got)::

        status = run_status(RUN_DIR)
        if status is not None and not status.finished:
            cfg = status.config  # the run's own preset, not one picked for this GPU
            if status.settings.precision not in device_precisions(torch.device("cuda")):
                overrides = ["train.precision=fp16"]  # e.g. a bf16 run resumed on a T4

    Raises:
        CheckpointError: neither ``last.pt`` nor ``previous.pt`` can be read.
    """
    point = find_checkpoint(run_dir)
    if point is None:
        return None
    state = point.state
    return RunStatus(
        config=config_from_dict(state["config"]),
        iteration=int(state["iteration"]),
        checkpoint=point.path,
        settings=RunSettings.from_checkpoint(state),
        note=point.note,
    )
