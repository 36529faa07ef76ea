"""The book's notebooks: every .py source has a paired .ipynb with the same cells."""

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def cells(notebook):
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_py_and_ipynb_are_in_sync(source):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing: run `jupytext --sync {source}`"
    a, b = jupytext.read(source), jupytext.read(paired)
    assert cells(a) == cells(b), f"{source.name} and {paired.name} differ: run jupytext --sync"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_anatomy(source):
    text = source.read_text()
    number = source.name[:2]
    assert f"# # {number} · " in text, "title '# NN · Topic'"
    assert "colab-badge.svg" in text
    for heading in ("## Summary", "## Exercises", "## References"):
        assert heading in text, heading
    assert "SMOKE = dgcn.smoke_mode()" in text
    assert "import *" not in text


def test_no_orphan_ipynb():
    for paired in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"):
        assert paired.with_suffix(".py").exists(), f"{paired.name} has no .py source"
