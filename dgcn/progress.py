"""Progress bars that stay readable in a log file.

A tqdm bar redraws itself about ten times a second. On a terminal or in a notebook that is an
animation; written to a file (``make demo > log``, a Colab ``!dgcn train ... > log``, CI) every
redraw is kept, and a two-minute run leaves thousands of copies of the bar.
:func:`progress_bar` is ``tqdm.auto`` with one change: where its stream is neither a terminal
nor a Jupyter kernel, it redraws at most every :data:`LOG_INTERVAL` seconds (and at the end),
and each redraw is a line of its own (iteration, rate, ETA and postfix, ended by a newline):
tqdm's carriage returns would pile every update onto one endless line, which ``tail`` shows as
one line and a scheduler's log viewer cannot follow.
"""

from __future__ import annotations

import sys
from typing import Any

#: seconds between two redraws of a bar written to a file or a pipe
LOG_INTERVAL = 30.0


def writes_to_a_log(stream: Any = None) -> bool:
    """True when ``stream`` (default: stderr, tqdm's) is neither a terminal nor a notebook."""
    stream = sys.stderr if stream is None else stream
    if "ipykernel" in sys.modules:  # a notebook's output area animates the bar
        return False
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


class LineStream:
    """A stream for tqdm that turns each in-place redraw into a line: the carriage returns
    are dropped, every non-blank update is written with a newline, blank ones (tqdm's clearing
    of its line) not at all."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        flush = getattr(self.stream, "flush", None)
        if callable(flush):
            flush()


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """``tqdm(iterable, **kwargs)``; written to a log, redrawn every LOG_INTERVAL seconds, one
    line per redraw (:class:`LineStream`)."""
    from tqdm.auto import tqdm  # a notebook's widget bar or a terminal's text bar

    if writes_to_a_log(kwargs.get("file")):
        kwargs.setdefault("mininterval", LOG_INTERVAL)
        kwargs["file"] = LineStream(kwargs.get("file") or sys.stderr)
    return tqdm(iterable, **kwargs)
