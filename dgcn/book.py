"""What every notebook of the book does once ``import dgcn`` works: run from the checkout.

The notebooks' first cell only makes the package importable (a checkout here or above, an
unzipped copy, or on Colab a clone of the book's version); :func:`setup` does the rest, so that
the cell stays short enough to read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import dgcn


def is_checkout(folder: Path) -> bool:
    """A copy of the repository (the package and its pyproject), not just a folder named dgcn."""
    return (folder / "dgcn" / "__init__.py").is_file() and (folder / "pyproject.toml").is_file()


def package_checkout() -> Path | None:
    """The checkout that holds the imported package; None for an installed wheel."""
    folder = Path(dgcn.__file__).resolve().parent.parent
    return folder if is_checkout(folder) else None


def setup(book_version: str, copies: Iterable[Path] = ()) -> Path | None:
    """Change to the checkout the notebooks run from (data/, runs/ and the committed models are
    shared by all of them) and return it; None (staying here) when there is none.

    That is the checkout of the imported package, else the first of ``copies`` (the notebook's
    own search, from its folder up). Prints a note when this package is not the version the
    book was written against. Running it again changes nothing.
    """
    root = package_checkout() or next((Path(c).resolve() for c in copies if is_checkout(c)), None)
    if root is not None:
        os.chdir(root)
    if dgcn.__version__ != book_version:
        print(
            f"note: this book was written against dgcn {book_version}; {dgcn.__version__} is here"
        )
    return root
