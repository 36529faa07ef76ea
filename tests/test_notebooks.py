"""The book's notebooks: every .py source has a paired .ipynb with the same cells."""

from pathlib import Path

import pytest

# jupytext is an extra (`.[dev]`): without it this file is skipped, and the rest of the tests
# still run (benchmarks/gpu_session.sh runs them on machines with only the core install)
jupytext = pytest.importorskip("jupytext", reason="pairing checks need jupytext (.[dev])")

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


def setup_cell(source):
    """The code cell that makes the notebook runnable anywhere (it defines IN_COLAB)."""
    code = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
    return next(c.source for c in code if "IN_COLAB =" in c.source)


def test_the_setup_cell_is_the_same_in_every_notebook():
    first = setup_cell(SOURCES[0])
    for source in SOURCES[1:]:
        assert setup_cell(source) == first, f"{source.name}'s setup cell differs from the first"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebooks_use_the_public_api(source):
    # `import dgcn` and `from dgcn import <exported name>` only: a deep import means the
    # package lacks an entry point the book needs
    import dgcn

    deep, unknown = [], []
    for number, line in enumerate(source.read_text().splitlines(), 1):
        text = line.strip()
        if text.startswith(("from dgcn.", "import dgcn.")):
            deep.append(f"{source.name}:{number}: {text}")
        elif text.startswith("from dgcn import"):
            names = text.removeprefix("from dgcn import").replace("(", "").replace(")", "")
            unknown += [n.strip() for n in names.split(",") if n.strip() not in dgcn.__all__]
    assert not deep, "deep imports:\n" + "\n".join(deep)
    assert not unknown, f"not exported by dgcn: {unknown}"
