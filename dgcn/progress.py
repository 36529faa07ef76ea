"""Progress bars that stay readable in a log file.

A tqdm bar redraws itself about ten times a second. On a terminal or in a notebook that is an
animation; written to a file (``make demo > log``, a Colab ``!dgcn train ... > log``, CI) every
redraw is kept, and a two-minute run leaves thousands of copies of the bar.
:func:`progress_bar` is ``tqdm.auto`` with one change: where its stream is neither a terminal
nor a Jupyter kernel, it redraws at most every :data:`LOG_INTERVAL` seconds (and at the end).
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


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """``tqdm(iterable, **kwargs)``, redrawn every LOG_INTERVAL seconds when written to a log."""
    from tqdm.auto import tqdm  # a notebook's widget bar or a terminal's text bar

    if writes_to_a_log(kwargs.get("file")):
        kwargs.setdefault("mininterval", LOG_INTERVAL)
    return tqdm(iterable, **kwargs)
