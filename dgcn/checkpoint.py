"""The checkpoint format ``dgcn-checkpoint-1``: the one place that writes, reads and checks it.

A checkpoint is a dict saved with :func:`torch.save` and loaded with ``weights_only=True``:
``format`` (the tag), ``model_name``, ``config`` (:meth:`dgcn.config.Config.to_dict`),
``iteration``, ``model`` (the state dict) and, in a training run's ``last.pt``, ``optimizer``,
``scheduler``, ``scaler`` and ``rng`` (rank 0's random states) for an exact resume, with
``settings`` (the precision and micro-batch the run resolved, kept across machines) and, under
``torchrun``, ``rng_ranks`` (every rank's random states, in rank order); a run keeps the
checkpoint before ``last.pt`` as ``previous.pt`` (:func:`save_checkpoint`'s ``previous``),
read when ``last.pt`` cannot be (``dgcn.training.resume``). Training resumes from it
(``dgcn.training.loop``); evaluation, the command line and ``dgcn reproduce`` load a model for
inference from it (:func:`load_for_inference`), or from the authors' released file.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dgcn.config import (
    Config,
    apply_overrides,
    check_config,
    config_from_dict,
    load_config,
    model_overrides,
)
from dgcn.errors import CheckpointError, ConfigError, ResourceError
from dgcn.fileio import atomic_path
from dgcn.models import build_model, load_official_checkpoint
from dgcn.models.weights import check_finite, upgrade_state_dict

FORMAT = "dgcn-checkpoint-1"
#: the entries of every checkpoint, with their types
REQUIRED = {"model": dict, "config": dict, "iteration": int}
#: the entries a resume needs besides (a file of ``dgcn export`` has none of them)
TRAINING_STATE = ("optimizer", "scheduler", "rng")


def save_checkpoint(
    path: str | os.PathLike,
    state: dict[str, Any],
    previous: str | os.PathLike | None = None,
    then: str | Callable[[], str] = "free space there, or choose another folder, and run the "
    "command again",
) -> Path:
    """Write ``state`` (plus a format tag) atomically: the previous file survives a crash.

    Args:
        path: the checkpoint, e.g. ``runs/<name>/last.pt``.
        state: what to save.
        previous: where the checkpoint that ``path`` held goes (e.g. ``previous.pt``), renamed
            once the new one is completely written and just before it takes its place: at
            every moment ``path`` or ``previous`` holds a complete checkpoint. None: replaced.
        then: what to do when the write fails, the end of the error's message (a function:
            called only then).

    Raises:
        ResourceError: the file could not be written (no space left, ...), naming it, the free
            space and ``then``; ``path`` and ``previous`` are as they were.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            try:
                torch.save({"format": FORMAT, **state}, tmp)
            except RuntimeError as err:  # torch's writer: "unexpected pos", "cannot be opened"
                code = _errno(path)  # its own words (--debug) name the temporary file
                raise OSError(code, os.strerror(code)) from err
            if previous is not None and path.is_file():
                os.replace(path, previous)
    except OSError as err:
        free = shutil.disk_usage(path.parent).free / 2**20
        cause = err.strerror or os.strerror(errno.EIO)
        kept = f"{path} is kept as it was" if path.is_file() else f"no {path.name} was written"
        raise ResourceError(
            f"cannot write {path}: {cause} ({free:.0f} MiB free in {path.parent}); {kept} and "
            f"the temporary file removed; {then() if callable(then) else then}"
        ) from err
    return path


def _errno(path: Path) -> int:
    """ENOSPC when the folder of ``path`` has (almost) no space left, else EIO: torch's writer
    reports a failed write without its cause."""
    return errno.ENOSPC if shutil.disk_usage(path.parent).free < 2**20 else errno.EIO


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load one of our checkpoints with ``weights_only=True``.

    Raises:
        CheckpointError: missing, unreadable or not a dgcn checkpoint, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; check the path (runs/<name>/*.pt)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(err).__name__}: {str(err)[:200]}); the file "
            "is damaged or not a PyTorch checkpoint"
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a dgcn checkpoint (no {FORMAT!r} tag); for the authors' released "
            "weights use `dgcn evaluate --checkpoint FILE --official`"
        )
    return state


def require_entries(state: dict[str, Any], path: str | os.PathLike, *keys: str) -> None:
    """Refuse a checkpoint without the entries its use needs (of :data:`REQUIRED`: inference
    needs ``model`` and ``config``, a resume also ``iteration``).

    Raises:
        CheckpointError: naming the file and the first entry missing or of the wrong type.
    """
    for key in keys:
        if not isinstance(state.get(key), REQUIRED[key]):
            raise CheckpointError(
                f"checkpoint {path} has no valid {key!r} entry (a dgcn checkpoint holds its "
                "model, config and iteration): the file is damaged or was written by other "
                "code; use the run's last.pt or previous.pt, or export it again"
            )


def require_training_state(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Refuse to resume from a checkpoint without the optimizer, schedule and random states.

    Raises:
        CheckpointError: ``state`` lacks one of :data:`TRAINING_STATE` (an exported file); the
            message names the cause only, its caller the way out.
    """
    if any(key not in state for key in TRAINING_STATE):
        raise CheckpointError(
            f"{path} holds weights only (no optimizer, schedule or random states, like a file "
            "of `dgcn export`), which a run cannot resume from"
        )


def load_model_weights(model: torch.nn.Module, state: dict[str, Any], path: str | os.PathLike):
    """Load ``state["model"]`` strictly into ``model``; a mismatch names the first bad key, and
    weights that are not all finite are refused (:func:`~dgcn.models.weights.check_finite`)."""
    weights = upgrade_state_dict(state["model"])  # legacy names (head.context.*) renamed
    ours = model.state_dict()
    for key, value in weights.items():
        if key not in ours:
            raise CheckpointError(
                f"checkpoint {path} is of another model ({state.get('model_name', '?')}): it has "
                f"{key!r}, which this model ({type(model).__name__}) lacks"
            )
        if ours[key].shape != value.shape:
            raise CheckpointError(
                f"checkpoint {path} is of another model: {key!r} is {list(value.shape)}, this "
                f"model needs {list(ours[key].shape)}"
            )
    missing = [k for k in ours if k not in weights]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing[0]!r}: it is of another model")
    check_finite(weights, path)
    model.load_state_dict(weights, strict=True)


def export_weights(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Write the shareable part of a run's checkpoint: the model weights and the config that
    builds them (no optimizer, scheduler or RNG state, about a third of the size). The result
    loads like any checkpoint in ``dgcn evaluate``/``dgcn predict`` and as a frozen backbone.

    Raises:
        CheckpointError: the source is not a dgcn checkpoint, or the target is the source.
    """
    source, target = Path(source), Path(target)
    if target.exists() and target.resolve() == source.resolve():
        raise CheckpointError(f"--out {target} is the checkpoint itself; choose another file")
    state = load_checkpoint(source)
    keep = ("model_name", "config", "iteration", "model")
    slim = {key: state[key] for key in keep if key in state}
    slim["model"] = {k: v.clone() for k, v in slim["model"].items()}  # no shared storage
    return save_checkpoint(target, slim)


def load_for_inference(
    checkpoint: str | os.PathLike,
    official: bool = False,
    config: str | None = None,
    overrides: list[str] | None = None,
    eval_options: dict[str, Any] | None = None,
) -> tuple[torch.nn.Module, Config]:
    """(model in eval mode on the CPU, its run config with ``overrides`` applied).

    Args:
        checkpoint: ``runs/<name>/last.pt`` or, with ``official``, the authors' ``.pth``.
        official: the file is the authors' released checkpoint (``DualSeg_res101``).
        config: the data/eval config to use with an official checkpoint
            (default ``cityscapes-official``); ignored for our checkpoints, which carry theirs.
        overrides: ``key=value`` strings applied last.
        eval_options: fields of the config's ``eval`` part set after ``overrides`` (the command
            line's ``--mode``, ``--tile``, ...); the config's value rules are checked again.

    Raises:
        CheckpointError, ConfigError (also for ``config`` with a dgcn checkpoint, which carries
        its own: it would be ignored).
    """
    if config is not None and not official:
        raise ConfigError(
            f"--config {config} is for the authors' checkpoint (--official); {checkpoint} "
            "carries its own config: change it with --opt key=value"
        )
    if official:
        model = load_official_checkpoint(str(checkpoint))
        cfg = load_config(config or "cityscapes-official", overrides)
    else:
        state = load_checkpoint(checkpoint)
        require_entries(state, checkpoint, "model", "config")
        cfg = apply_overrides(config_from_dict(state["config"]), overrides)
        model = build_model(cfg.model.name, cfg.num_classes, **model_overrides(cfg, False))
        load_model_weights(model, state, checkpoint)
        model = model.eval()
    if eval_options:
        for key, value in eval_options.items():
            setattr(cfg.eval, key, value)
        check_config(cfg)
    return model, cfg
