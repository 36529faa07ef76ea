"""Checkpoints: atomic writes, ``weights_only=True`` loads, clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from dgcn.errors import CheckpointError
from dgcn.fileio import atomic_path
from dgcn.models.weights import upgrade_state_dict

FORMAT = "dgcn-checkpoint-1"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus a format tag) atomically: the previous file survives a crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    return path


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


def load_model_weights(model: torch.nn.Module, state: dict[str, Any], path: str | os.PathLike):
    """Load ``state["model"]`` strictly into ``model``; a mismatch names the first bad key."""
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
