"""The command line's argument checks: whole numbers within a range, and a parser whose
mistakes end in one line, as every other error of the CLI does."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` to ``high`` (no upper bound: None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


class OneLineParser(argparse.ArgumentParser):
    """An argument parser that reports a mistake in one line (``dgcn: error: ...``, with the
    way to the usage) and exit status 2, instead of the usage block and the error."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        sys.stderr.write(f"dgcn: error: {text}; see `{self.prog} --help`\n")
        sys.exit(2)
