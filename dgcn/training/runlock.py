"""The lock of a run folder: one training at a time writes into it.

A second ``dgcn train`` (``--resume`` or not) into a folder that a running training holds
would append to the same ``metrics.jsonl`` and replace the other's checkpoints; it is refused
in one line that names the process holding the lock. The lock is :func:`fcntl.flock` on the
file ``.<folder name>.lock`` beside the folder (not inside it: ``--overwrite`` moves the
folder it replaces aside, and a lock inside would move with it). The file holds the
holder's pid, host and start time, for the message.

The kernel frees a flock when its process ends, however it ends; :class:`RunLock` also
deletes the file on every way out of the ``with`` block (a normal end, an error, SIGTERM or
Ctrl-C, which the trainers turn into exceptions). A file left by a process that was killed
(SIGKILL, a lost machine) holds no lock: the next start takes it over and says whose it was.
Under ``torchrun`` only rank 0 takes it (:func:`~dgcn.training.runs.train`).
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from dgcn.errors import RunDirError


def lock_path(run_dir: str | os.PathLike) -> Path:
    """The lock file of a run folder: ``.<name>.lock`` beside it (its absolute path)."""
    folder = Path(run_dir).resolve()
    return folder.parent / f".{folder.name or 'root'}.lock"


def _holder(fd: int) -> str:
    """The first line of an open lock file ("pid host start"), or "" when it is empty."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 400).decode("utf-8", "replace")
    return text.splitlines()[0].strip() if text.strip() else ""


def _described(holder: str) -> str:
    pid, _, rest = holder.partition(" ")
    host, _, since = rest.partition(" ")
    return f"pid {pid} on host {host or '?'}" + (f", since {since}" if since else "")


class RunLock:
    """``with RunLock(run_dir):`` holds the run folder's lock for the block.

    Raises:
        RunDirError: (on entering) another process holds the lock, naming it and what to do.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = lock_path(run_dir)
        self.fd: int | None = None
        self.created: list[Path] = []
        self.note: str | None = None

    def acquire(self) -> None:
        """Take the lock (the folder's parents are created when missing); sets :attr:`note`
        when a file left by a killed process was taken over."""
        parent = self.path.parent
        self.created = [p for p in (parent, *parent.parents) if not p.exists()]
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                self._remove_created()
                who = _described(holder) if holder else "another process"
                raise RunDirError(
                    f"{self.run_dir} is in use by another training ({who}; lock "
                    f"{self.path}): wait for it to end or stop it, then run this again"
                ) from None
            try:  # a holder that was releasing may have deleted the file meanwhile
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        left = _holder(fd)
        if left:
            self.note = (
                f"note: took over the lock of {self.run_dir} left by {_described(left)}, a "
                "training that was killed before it could release it"
            )
        since = time.strftime("%Y-%m-%dT%H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {since}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        """Delete the lock file and free the lock (nothing when not held)."""
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # first: a waiting process then retries
        finally:
            os.close(self.fd)
            self.fd = None
            self._remove_created()

    def _remove_created(self) -> None:
        for folder in self.created:  # innermost first; one that holds anything stays
            try:
                folder.rmdir()
            except OSError:
                break
        self.created = []

    def __enter__(self) -> RunLock:
        self.acquire()
        if self.note:
            print(self.note, flush=True)
        return self

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = ["RunLock", "lock_path"]
