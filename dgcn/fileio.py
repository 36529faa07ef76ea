"""Atomic file writes: a failed or interrupted write never leaves a half-written file behind."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dgcn.errors import DgcnError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step.

    The temporary file lives in the same folder (so ``os.replace`` is atomic) and is removed if
    the block raises; an existing ``path`` is untouched until the new file is complete. An
    OSError about the temporary file (no space left, ...) is raised naming ``path``.

    Example:
        with atomic_path("ckpt.pt") as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:  # the error names the file being written, never the temporary one
        if err.filename is not None and Path(err.filename) == tmp:
            err.filename = str(path)
        if getattr(err, "filename2", None) is not None and Path(err.filename2) == path:
            err.filename2 = None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` leaves when its process is killed
    mid-write (``.<name>.<pid>.tmp``); only files of that pattern are touched. Returns them."""
    folder = Path(folder)
    stale = [p for p in folder.glob(".*.tmp") if p.is_file() and is_temp_name(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of :func:`atomic_path`'s temporary files."""
    parts = name[1:-4].rsplit(".", 1)  # ".last.pt.123.tmp" -> ["last.pt", "123"]
    return name.startswith(".") and len(parts) == 2 and parts[1].isdigit() and bool(parts[0])


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_utf8(
    path: str | os.PathLike, error: type[DgcnError] = DgcnError, fix: str = "save it as UTF-8"
) -> str:
    """A text file's content; a file that is not UTF-8 raises ``error`` naming it, the line
    and the first bad byte, and ending in ``fix``."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise error(
            f"{path} is not UTF-8 text (byte 0x{data[err.start]:02x} on line {line}); {fix}"
        ) from None
