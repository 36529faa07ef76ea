"""The optional packages of the extras (``pip install 'dgcn[notebooks]'``): whether one can be
imported, and the one note a command prints when it skips a file that needs it.

The commands need only the core dependencies (torch, torchvision, numpy, pillow, pyyaml,
tqdm). What matplotlib draws (``curves.png`` of a run, the figures of ``dgcn reproduce``,
``grid.png`` of ``dgcn predict``) is skipped without it, with one note per file name and
process; the numbers behind each figure are written anyway.
"""

from __future__ import annotations

import importlib
import sys

#: the extra that installs each optional package
EXTRAS = {"matplotlib": "notebooks", "pandas": "notebooks", "ipywidgets": "notebooks"}

_NOTED: set[tuple[str, str]] = set()


def missing(module: str) -> str | None:
    """None when ``module`` imports; else why not (the ImportError's message)."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        return str(err) or f"No module named {module!r}"
    return None


def available(module: str) -> bool:
    """Whether ``module`` imports."""
    return missing(module) is None


def note_skipped(what: str, module: str = "matplotlib", instead: str = "") -> None:
    """Print (once per ``what`` and process, on stderr) that ``what`` is not written because
    ``module`` cannot be imported, and how to get it; ``instead`` says where the numbers are."""
    if (what, module) in _NOTED:
        return
    _NOTED.add((what, module))
    why = missing(module) or "it cannot be imported"
    extra = EXTRAS.get(module)
    install = f"pip install {module}" + (f", or pip install 'dgcn[{extra}]'" if extra else "")
    print(
        f"dgcn: note: {what} not drawn: {why} ({install}){'; ' + instead if instead else ''}",
        file=sys.stderr,
        flush=True,
    )
