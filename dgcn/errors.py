"""The package's exceptions: one family, so the CLI can turn any of them into one clear line.

Every user mistake (bad path, bad layout, bad config key, wrong checkpoint, corrupt file) raises
a :class:`DgcnError` subclass whose message names the file or key and says how to fix it.
"""

from __future__ import annotations

import re


class DgcnError(Exception):
    """Base class of every error caused by the user's input, not by a bug."""


class DatasetError(DgcnError):
    """A dataset folder, file or label is missing, malformed or inconsistent."""


class ConfigError(DgcnError):
    """A configuration file, key or value is unknown or invalid."""


class CheckpointError(DgcnError):
    """A checkpoint or weight file is missing, corrupt or belongs to another model."""


class RunDirError(DgcnError):
    """A run folder cannot be used as asked: it holds a run and neither ``--resume`` nor
    ``--overwrite`` was given, it holds no checkpoint to resume, or it is a file."""


class TrainingError(DgcnError):
    """Training cannot go on (a non-finite loss, diverged weights, out of GPU memory); the
    last good checkpoint is kept."""


class ResourceError(DgcnError):
    """The machine lacks the memory or the disk space a command needs; the message says what
    was kept."""


def allocation_failure(err: BaseException) -> str | None:
    """How much memory a failed allocation asked for, in words (``"1.1 GiB"``; ``"memory"``
    when the error does not say), when ``err`` is one: a :class:`MemoryError`, or torch's
    RuntimeError ``DefaultCPUAllocator: can't allocate memory: you tried to allocate N
    bytes``; None for any other error."""
    text = str(err)
    if not isinstance(err, MemoryError) and "can't allocate memory" not in text:
        return None
    match = re.search(r"allocate (\d+) bytes", text)
    return f"{int(match.group(1)) / 2**30:.1f} GiB" if match else "memory"


__all__ = [
    "DgcnError",
    "DatasetError",
    "ConfigError",
    "CheckpointError",
    "RunDirError",
    "TrainingError",
    "ResourceError",
    "allocation_failure",
]
