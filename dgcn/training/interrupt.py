"""SIGTERM and Ctrl-C during training: the work done is kept.

A preempted job, a closed Colab runtime, ``kill`` or a scheduler's time limit sends SIGTERM;
Ctrl-C and Jupyter's interrupt button send SIGINT. While :class:`StopRequest` is installed:

- before training starts (data, model, loader set-up) either signal raises
  :class:`Interrupted` at once: the start is undone (:class:`~dgcn.training.rundir.NewRun`);
- once the loop runs (:meth:`StopRequest.defer`), the signal is only noted: the loop finishes
  the current iteration (an evaluation in progress is cut short), writes the checkpoint as
  the periodic one (atomically), prints one line with the command that resumes the run and
  raises :class:`Interrupted`, which ``dgcn train`` turns into exit status 128 + the signal's
  number (143 for SIGTERM, 130 for SIGINT). Further signals meanwhile are noted in one line
  and do not cut the write short.

Data-loader workers ignore both signals (:func:`quiet_workers`): the terminal sends
Ctrl-C to every process of the job, and a worker that died would fail the batches the last
iteration still needs. Under ``torchrun`` the launcher forwards the signal to every process;
the processes agree on the iteration to stop at (:func:`~dgcn.distributed.max_over_processes`)
and rank 0 writes the one checkpoint.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import sys
import threading
from types import FrameType

#: the signals that stop a run with a checkpoint
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (a ``KeyboardInterrupt``, so that code that handles Ctrl-C
    handles it too).

    Attributes:
        signum: the signal's number.
        message: the line to print (None: the trainer has printed it already).
    """

    def __init__(self, signum: int, message: str | None = None) -> None:
        super().__init__(message or signal_name(signum))
        self.signum = signum
        self.message = message

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum


def signal_name(signum: int) -> str:
    """``SIGTERM``, ``SIGINT``, ..."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def ignore_stop_signals(worker_id: int = 0) -> None:
    """A data-loader worker's ``worker_init_fn``: SIGTERM and SIGINT are the main process's to
    handle (the worker ends when the main process does). Pass it through
    :func:`quiet_workers`, which makes sure such workers are ended at exit."""
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def quiet_workers():
    """:func:`ignore_stop_signals`, once the main process is set to kill at its exit the
    workers still alive (those of a loader that an exception kept from being shut down):
    ``multiprocessing`` would end them with SIGTERM, which they ignore, and then wait for
    them forever."""
    global _reaper
    if not _reaper:
        atexit.register(_kill_daemonic_children)  # runs before multiprocessing's own hook
        _reaper = True
    return ignore_stop_signals


_reaper = False


def _kill_daemonic_children() -> None:
    children = [child for child in multiprocessing.active_children() if child.daemon]
    if children and hasattr(signal, "SIGCHLD"):  # torch's SIGCHLD handler would report them
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for child in children:
        child.kill()
    for child in children:
        child.join(timeout=5)


class StopRequest:
    """SIGTERM and SIGINT handlers for the length of a ``with`` block (the earlier handlers
    are restored at its end); inactive outside the main thread, where Python cannot set them.

    Args:
        announce: print the one-line acknowledgement of a deferred signal (the main process
            of a run; under ``torchrun`` the others stay silent).
        undeferred: what :class:`Interrupted` says when a signal comes before :meth:`defer`
            (after "interrupted by SIGTERM ").

    Attributes:
        signum: the first signal received while deferring (None: none).
    """

    def __init__(
        self,
        announce: bool = True,
        undeferred: str = "before training started; nothing was kept: run the same command again",
    ) -> None:
        self.announce = announce
        self.undeferred = undeferred
        self.signum: int | None = None
        self.deferring = False
        self._again = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def defer(self) -> None:
        """From now on a signal is noted, not raised: the loop stops at the next iteration."""
        self.deferring = True

    def __bool__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.deferring:
            raise Interrupted(signum, f"interrupted by {signal_name(signum)} {self.undeferred}")
        if self.signum is None:
            self.signum = signum
            self._say(
                f"dgcn: {signal_name(signum)}: finishing this iteration, then writing a "
                "checkpoint and stopping"
            )
        elif not self._again:
            self._again = True
            self._say(
                f"dgcn: {signal_name(signum)} again: the checkpoint is being written, wait for "
                f"it (kill -9 {os.getpid()} stops at once and keeps the checkpoint before)"
            )

    def _say(self, line: str) -> None:
        if not self.announce:
            return
        text = ("\n" if sys.stderr.isatty() else "") + line
        try:
            print(text, file=sys.stderr, flush=True)
        except RuntimeError:  # the signal came inside a write to stderr (a progress bar)
            os.write(2, (text + "\n").encode())
