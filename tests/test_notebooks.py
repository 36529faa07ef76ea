"""The book's notebooks: every .py source has a paired .ipynb with the same cells."""

import os
import re
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
    headings = ["## Summary", "## Check your understanding", "## Exercises", "## References"]
    places = [text.find(f"# {heading}\n") for heading in headings]
    assert -1 not in places, (
        f"missing: {[h for h, at in zip(headings, places, strict=True) if at < 0]}"
    )
    assert places == sorted(places), f"the closing sections go in the order {headings}"
    assert "SMOKE = dgcn.smoke_mode()" in text
    assert "import *" not in text


def test_no_orphan_ipynb():
    for paired in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"):
        assert paired.with_suffix(".py").exists(), f"{paired.name} has no .py source"


def setup_cell(source):
    """The code cell that makes the notebook runnable anywhere (it defines IN_COLAB)."""
    code = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
    return next(c.source for c in code if "IN_COLAB, HERE =" in c.source)


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


# The setup cell, run in a child Python: `subprocess.run` is recorded (a "clone" links the
# repository into place), the cell runs twice, and the child reports what it did.
SETUP_HARNESS = r"""
import importlib, json, os, subprocess, sys, types
from pathlib import Path

repo, hide, colab = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1"
tagless = sys.argv[5] == "1"  # a fork without the book's tag
calls = []
def fake_run(args, **kwargs):
    args = [str(a) for a in args]
    calls.append(args)
    if args[:2] == ["git", "clone"]:
        if tagless and "-b" in args:
            return types.SimpleNamespace(returncode=128)
        os.symlink(repo, args[-1])
    return types.SimpleNamespace(returncode=0)
subprocess.run = fake_run
if hide:  # dgcn not installed: drop the editable finder and any path to the repository
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != repo]
    assert importlib.util.find_spec("dgcn") is None
if colab:
    sys.modules["google.colab"] = types.ModuleType("google.colab")
path_before = list(sys.path)
source = Path(sys.argv[4]).read_text()
for _ in range(2):
    exec(compile(source, "setup-cell", "exec"), {})
added = [p for p in sys.path if p not in path_before]
report = {"calls": calls, "cwd": os.getcwd(), "path_added": added}
print(json.dumps(report))
"""


def run_setup_cell(tmp_path, cwd, hide=False, colab=False, tagless=False):
    import json
    import subprocess
    import sys

    cell = tmp_path / "setup_cell.py"
    cell.write_text(setup_cell(SOURCES[0]))
    root = NOTEBOOKS.parent.resolve()
    args = [sys.executable, "-c", SETUP_HARNESS, str(root), str(int(hide)), str(int(colab))]
    args += [str(cell), str(int(tagless))]
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), root


def test_the_setup_cell_does_nothing_when_dgcn_is_importable(tmp_path):
    # from anywhere: no clone, no install, sys.path untouched; it runs from the package's checkout
    report, root = run_setup_cell(tmp_path, cwd=tmp_path)
    assert report["calls"] == [] and report["path_added"] == []
    assert report["cwd"] == str(root)


def test_the_setup_cell_uses_an_unzipped_copy_and_never_nests(tmp_path):
    # a zip unpacked as dgcn-book-main/ beside the notebook: imported as it is, nothing cloned
    (tmp_path / "dgcn-book-main").symlink_to(NOTEBOOKS.parent.resolve())
    report, _ = run_setup_cell(tmp_path, cwd=tmp_path, hide=True, colab=True)
    unzipped = str((tmp_path / "dgcn-book-main").resolve())
    (install,) = report["calls"]  # Colab: the dependencies only, once
    assert install[1:4] == ["-m", "pip", "install"]
    assert report["path_added"] == [unzipped] and report["cwd"] == unzipped


def test_the_setup_cell_clones_the_books_version_once_on_colab(tmp_path):
    import dgcn

    report, _ = run_setup_cell(tmp_path, cwd=tmp_path, hide=True, colab=True)
    clone, install = report["calls"]  # the second run found the clone: nothing more
    target = str(tmp_path.resolve() / "dgcn-book")
    assert clone[:2] == ["git", "clone"] and clone[-1] == target
    tag = ["-b", f"v{dgcn.__version__}"]  # the version the book was written for
    assert clone[:7] == ["git", "clone", "-q", "--depth", "1", *tag]
    assert install[1:4] == ["-m", "pip", "install"] and install[-1] == target
    assert report["path_added"] == [target]
    assert Path(report["cwd"]) == Path(target).resolve()  # the test's "clone" is a link


def test_the_setup_cell_refuses_in_one_line_without_a_copy_outside_colab(tmp_path):
    import subprocess
    import sys

    cell = tmp_path / "setup_cell.py"
    cell.write_text(setup_cell(SOURCES[0]))
    root = str(NOTEBOOKS.parent.resolve())
    args = [sys.executable, "-c", SETUP_HARNESS, root, "1", "0", str(cell), "0"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0
    assert done.stderr.strip().endswith(
        "dgcn not installed and no checkout here or above: open the notebook in one"
    )


REPO = "https://github.com/dgcn-book/dgcn-book"


def test_the_setup_cell_is_short_and_leaves_the_rest_to_the_package(tmp_path, capsys):
    cell = setup_cell(SOURCES[0])
    assert len(cell.splitlines()) <= 28, "the first cell is for a reader, not for a script"
    import dgcn

    # what the package does once dgcn imports: run from its checkout, say so on a version skew
    before = Path.cwd()
    try:
        root = dgcn.book.setup(dgcn.__version__, [tmp_path])
        assert root == NOTEBOOKS.parent.resolve() and Path.cwd() == root
        assert capsys.readouterr().out == ""
        dgcn.book.setup("0.0.1")
        assert "written against dgcn 0.0.1" in capsys.readouterr().out
    finally:
        os.chdir(before)


def test_the_book_version_is_the_package_version():
    import dgcn

    assert f'REPO, BOOK_VERSION = "{REPO}", "{dgcn.__version__}"' in setup_cell(SOURCES[0])
    pyproject = (NOTEBOOKS.parent / "pyproject.toml").read_text()
    assert f'version = "{dgcn.__version__}"' in pyproject


def closing_section(text, heading):
    """The markdown of one closing section: from its heading to the next `## ` heading."""
    body = text.split(f"# {heading}\n", 1)[1]
    return re.split(r"(?m)^# ## ", body, maxsplit=1)[0]


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_every_question_and_exercise_has_a_hidden_answer(source):
    text = source.read_text()
    questions = closing_section(text, "## Check your understanding")
    asked = re.findall(r"(?m)^# \*\*Q(\d+)\.\*\*", questions)
    assert 3 <= len(asked) <= 5, f"{len(asked)} check-your-understanding questions, not 3-5"
    answers = questions.count("<details><summary>Answer</summary>")
    assert answers == len(asked), f"{len(asked)} questions, {answers} hidden answers"
    exercises = closing_section(text, "## Exercises")
    set_ = re.findall(r"(?m)^# \*\*Exercise (\d+)\.\*\*", exercises)
    assert 2 <= len(set_) <= 4, f"{len(set_)} exercises, not 2-4"
    worked = exercises.count("<details><summary>Worked answer</summary>")
    assert worked == len(set_), f"{len(set_)} exercises, {worked} worked answers"
    for block in (questions, exercises):
        assert block.count("<details>") == block.count("</details>"), "an unclosed <details>"


REPO_DIRS = ("docs/", "experiments/", "dgcn/", "tests/", "benchmarks/", "notebooks/", "data/")


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_no_notebook_points_outside_the_repository(source):
    text = source.read_text()
    assert "shared/" not in text and "../" not in text, "a path outside the repository"
    # every repository file named in backticks exists (folders the notebooks create aside)
    root = NOTEBOOKS.parent
    dirs = "|".join(REPO_DIRS)
    named = re.findall(rf"`((?:{dirs})[\w./-]+\.(?:md|py|yaml|pt|json|tsv|ipynb))`", text)
    missing = sorted({n for n in named if not (root / n).exists()})
    assert not missing, f"files named but not in the repository: {missing}"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_no_heading_is_stuck_in_a_code_cell(source):
    # a markdown cell whose `# %% [markdown]` marker went missing shows as comments in code
    code = [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]
    stuck = [line for cell in code for line in cell.splitlines() if re.match(r"# #{1,3} ", line)]
    assert not stuck, f"headings in code cells: {stuck}"


def test_a_fork_without_the_books_tag_gets_its_default_branch(tmp_path):
    report, _ = run_setup_cell(tmp_path, cwd=tmp_path, hide=True, colab=True, tagless=True)
    tagged, plain, install = report["calls"]
    assert "-b" in tagged and "-b" not in plain and plain[:2] == ["git", "clone"]
    assert install[1:4] == ["-m", "pip", "install"]


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_a_notebook_stays_a_size_a_reader_can_hold(source):
    # the book's targets: about 900 lines a notebook, no code cell over about 30 lines
    # (machinery goes to the package, with its tests)
    lines = len(source.read_text().splitlines())
    assert lines <= 950, f"{source.name}: {lines} lines; split it or move code to dgcn/"
    code = [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]
    longest = max(len(c.splitlines()) for c in code)
    assert longest <= 30, f"{source.name}: a code cell of {longest} lines"
