"""The command line's argument checks and error lines: whole numbers within a range, a
parser whose mistakes end in one line as every other error of the CLI does, and
:func:`print_error`, which prints an error once however many processes ``torchrun`` started.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` to ``high`` (no upper bound: None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" + (f" and <= {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


class OneLineParser(argparse.ArgumentParser):
    """An argument parser that reports a mistake in one line (``dgcn: error: ...``, with the
    way to the usage) and exit status 2, instead of the usage block and the error."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        text = re.sub(r"^argument (-[-\w]+): must be ", r"\1 must be ", text)
        print_error(f"dgcn: error: {text}; see `{self.prog} --help`")
        sys.exit(2)


#: markers older than this (seconds) are removed by the next error under torchrun
MARKER_AGE = 3600


def print_error(line: str) -> None:
    """Print an error line on stderr, once per machine under ``torchrun``.

    Every process of a launch meets the same bad config or path and would print the same
    line; the first one to claim the line (a marker file named by the launcher's process id and
    the line, created exclusively in the temporary folder) prints it, the others stay silent.
    An error only one process meets (a damaged image in its share of the data) is printed by
    that process. Without ``torchrun`` the line is simply printed.
    """
    if os.environ.get("WORLD_SIZE", "1").strip() in ("", "1"):
        print(line, file=sys.stderr)
        return
    folder = Path(tempfile.gettempdir())
    digest = hashlib.sha1(line.encode()).hexdigest()[:16]
    marker = folder / f"dgcn-error-{os.getppid()}-{digest}"
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return  # another process of this launch printed it
    except OSError:
        pass  # no temporary folder to write: print it anyway
    print(line, file=sys.stderr)
    for old in folder.glob("dgcn-error-*"):
        try:
            if time.time() - old.stat().st_mtime > MARKER_AGE:
                old.unlink()
        except OSError:
            continue
