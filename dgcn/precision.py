"""Which precision a device runs, and what ``train.precision`` and ``eval.precision`` mean.

One rule for training and evaluation: :func:`device_precisions` lists what a device runs, its
first entry is what ``auto`` picks (bf16 on a CUDA GPU of compute capability >= 8, fp16 on an
older one such as a T4, fp32 on a CPU). Training (:func:`resolve_precision`) accepts only a
precision of that list, since a run must be resumable on the device it names; evaluation
(:func:`autocast_dtype`) also allows bf16 where it is slow, and refuses fp16 on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dgcn.distributed import describe_device
from dgcn.errors import ConfigError

#: autocast dtype of each precision name (None: fp32, no autocast)
PRECISION_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32``, ``bf16`` or ``fp16``: the name of an autocast dtype (None: fp32)."""
    return next(name for name, d in PRECISION_DTYPES.items() if d == dtype)


def device_precisions(device: torch.device) -> tuple[str, ...]:
    """The precisions ``device`` trains in, the one ``precision: auto`` picks first.

    A CUDA GPU of compute capability >= 8 (A100, L4, H100): bf16, fp16, fp32; an older one
    (T4, V100): fp16, fp32; a CPU: fp32, bf16 (autocast in bf16 runs there, slowly).
    """
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return ("bf16", "fp16", "fp32") if major >= 8 else ("fp16", "fp32")
    return ("fp32", "bf16")


@dataclass(frozen=True)
class Precision:
    """The autocast dtype (None = fp32) and whether a GradScaler is needed."""

    dtype: torch.dtype | None
    scaler: bool

    @property
    def name(self) -> str:
        return precision_name(self.dtype)


PRECISIONS = {
    "fp32": Precision(None, False),
    "bf16": Precision(torch.bfloat16, False),
    "fp16": Precision(torch.float16, True),
}

#: why a device does not train in a precision, for the refusals
NEEDS = {
    "bf16": "bf16 needs a GPU of compute capability >= 8 (A100, L4, H100) or a CPU",
    "fp16": "fp16 with a GradScaler needs a CUDA GPU",
    "fp32": "",
}


def resolve_precision(preference: str, device: torch.device) -> Precision:
    """``train.precision``: ``auto`` is the first of :func:`device_precisions`; a named
    precision is checked against them.

    Raises:
        ConfigError: an unknown name, or a precision this device does not train in (the
            message names the ones it does).
    """
    if preference != "auto" and preference not in PRECISIONS:
        raise ConfigError(f"train.precision must be auto, fp32, bf16 or fp16, got {preference!r}")
    available = device_precisions(device)
    name = available[0] if preference == "auto" else preference
    if name not in available:
        raise ConfigError(
            f"train.precision={name} does not run on {describe_device(device)}: {NEEDS[name]}; "
            f"use {' or '.join(available)}"
        )
    return PRECISIONS[name]


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """``eval.precision``: the autocast dtype on ``device``; None: fp32, no autocast.

    ``auto``: the first of :func:`device_precisions`, as for training.

    Raises:
        ConfigError: an unknown precision, or fp16 on a CPU.
    """
    device = torch.device(device)
    if precision == "auto":
        return PRECISION_DTYPES[device_precisions(device)[0]]
    if precision not in PRECISION_DTYPES:
        raise ConfigError(
            f"eval.precision must be one of auto, {', '.join(PRECISION_DTYPES)}, got {precision!r}"
        )
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("eval.precision=fp16 needs a CUDA GPU; use fp32 or bf16 on a CPU")
    return PRECISION_DTYPES[precision]
