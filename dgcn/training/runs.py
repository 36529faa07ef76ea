"""A run, whichever way it trains: :func:`train` picks the loop, :func:`train_or_load` gives
the trained model of a run folder, training (or resuming) it only when it is not finished."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import torch

from dgcn.checkpoint import load_for_inference
from dgcn.config import Config, apply_overrides, config_from_dict, load_config
from dgcn.distributed import is_main_process
from dgcn.errors import ConfigError, RunDirError
from dgcn.training.frozen import FeatureCache, fit_head
from dgcn.training.loop import fit
from dgcn.training.rundir import LAST, config_changes, find_checkpoint
from dgcn.training.runlock import RunLock


def train(
    cfg: Config,
    run_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "auto",
    cache: FeatureCache | None = None,
    allow_config_change: bool = False,
) -> dict[str, Any]:
    """One run: :func:`~dgcn.training.frozen.fit_head` when ``cfg.frozen.backbone`` is set,
    else the end-to-end :func:`~dgcn.training.loop.fit`; returns the evaluation summary.

    The main process holds the run folder's lock (:class:`~dgcn.training.runlock.RunLock`)
    while it trains, so that a second training into the same folder is refused.

    Raises:
        RunDirError: another process trains in ``run_dir``; and what the trainers raise.
    """
    if cfg.frozen.backbone and resume:
        raise ConfigError(
            "a frozen-backbone run cannot be resumed (it takes about a minute); start it again "
            "with --overwrite or another --run-dir"
        )
    with RunLock(run_dir) if is_main_process() else contextlib.nullcontext():
        if not cfg.frozen.backbone:
            return fit(cfg, run_dir, resume, overwrite, progress, device, allow_config_change)
        return fit_head(cfg, run_dir, cache, overwrite, progress, device)


def train_or_load(
    config: Config | str | Path,
    run_dir: str | Path,
    *,
    overrides: list[str] | None = None,
    progress: bool = True,
    device: str = "auto",
) -> tuple[torch.nn.Module, Config]:
    """The trained model of ``run_dir``: loaded when the run there is finished, else trained.

    A folder without a checkpoint gets a new run; a run stopped before ``train.iterations``
    is resumed exactly (an end-to-end run; a frozen-backbone run has no partial state to
    resume), from ``previous.pt`` when ``last.pt`` cannot be read; a finished run is only
    loaded. The run's saved config must be this one (``train.iterations`` may grow, and the
    keys of :data:`~dgcn.training.rundir.RESUME_KEYS`, such as ``train.precision`` or
    ``train.time_limit``, may change: see :func:`~dgcn.training.loop.fit`): a folder that holds
    another run is refused, never overwritten. When ``train.time_limit`` stops the run, the
    model of its last checkpoint is returned (not finished: call again, e.g. in the next
    session, to go on; :func:`~dgcn.training.resume.run_status` tells).

    Args:
        config: a :class:`~dgcn.config.Config`, a preset name or a YAML path.
        run_dir: the run's folder, e.g. ``runs/notebooks/06``.
        overrides: ``key=value`` strings applied to ``config`` (a given Config is not changed).
        progress: show progress bars while training.
        device: ``auto``, ``cuda`` or ``cpu`` for training; the model is returned on the CPU
            in eval mode.

    Returns:
        (model, the run's config), as :func:`~dgcn.checkpoint.load_for_inference`.

    Raises:
        RunDirError: ``run_dir`` holds a run of another config; ConfigError, DatasetError,
        CheckpointError, TrainingError from training.
    """
    if isinstance(config, Config):
        cfg = apply_overrides(copy.deepcopy(config), overrides)
    else:
        cfg = load_config(config, overrides)
    run_dir = Path(run_dir)
    last = run_dir / LAST
    point = find_checkpoint(run_dir)
    if point is None:
        train(cfg, run_dir, progress=progress, device=device)
        return load_for_inference(last)
    state = point.state
    changed = config_changes(config_from_dict(state["config"]), cfg)
    if changed:
        raise RunDirError(
            f"{run_dir} holds a run of another config (it differs in {', '.join(changed[:3])}); "
            "pass another run folder, or delete this one to train the new config there"
        )
    if state["iteration"] < cfg.train.iterations:
        train(cfg, run_dir, resume=True, progress=progress, device=device)
    return load_for_inference(last)
