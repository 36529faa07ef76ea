"""The commands with only the core dependencies: with the notebook extras (matplotlib, pandas,
ipywidgets, jupytext, ...) made unimportable, ``dgcn train``, ``evaluate``, ``predict`` and
``reproduce`` run to the end; what needs matplotlib is skipped with one note and the numbers
are written anyway.

Each command runs in a process started with ``tests/no_extras`` first on ``PYTHONPATH``
(its ``sitecustomize`` hides the extras); ``make test-no-extras`` runs test files the same way.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_opts, train_argv

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = ROOT / "tests" / "no_extras"
#: what a command without matplotlib prints about a figure it did not draw
NOTE = "dgcn: note: {} not drawn: No module named 'matplotlib'"


def without_extras(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m dgcn ARGV`` (or ``python -c`` when ``argv[0]`` is ``-c``) with the extras
    hidden; its output as text."""
    env = dict(os.environ)
    env.pop("DGCN_HIDE_MODULES", None)  # the blocker's own list
    env["PYTHONPATH"] = os.pathsep.join(
        [str(BLOCKER), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    command = [sys.executable, *(argv if argv[0] == "-c" else ["-m", "dgcn", *argv])]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def ok(done: subprocess.CompletedProcess) -> str:
    """The stderr of a command that must have succeeded without a traceback."""
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_the_blocker_hides_the_extras_and_nothing_else(tmp_path):
    code = (
        "import importlib.util as u, sitecustomize as s; "
        "import torch, torchvision, numpy, PIL, yaml, tqdm, dgcn.training, dgcn.viz.palette; "
        "print([n for n in s.HIDDEN if u.find_spec(n) is not None])"
    )
    done = without_extras(["-c", code], tmp_path)
    ok(done)
    assert done.stdout.strip() == "[]"
    code = "import matplotlib.pyplot"
    done = without_extras(["-c", code], tmp_path)
    assert done.returncode == 1 and "No module named 'matplotlib'" in done.stderr


@pytest.mark.slow  # four commands in fresh processes: about 50 s on 2 cores
def test_train_evaluate_predict_and_reproduce_run_without_the_extras(minicity, tmp_path):
    opts = tiny_opts(minicity, **{"train.iterations": 2})
    run = tmp_path / "run"
    err = ok(without_extras(train_argv(run, opts), tmp_path))
    assert err.count(NOTE.format("curves.png")) == 1, err  # one note, on one line
    assert "metrics.jsonl" in err.splitlines()[-1]  # where the numbers are instead
    assert {"last.pt", "metrics.jsonl", "summary.json"} <= {p.name for p in run.iterdir()}
    assert not (run / "curves.png").exists()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert any("loss" in json.loads(line) for line in lines)

    result = tmp_path / "eval.json"
    argv = ["evaluate", "--checkpoint", str(run / "last.pt"), "--quiet", "--workers", "0"]
    ok(without_extras([*argv, "--output", str(result)], tmp_path))
    assert 0 <= json.loads(result.read_text())["miou"] <= 1

    out = tmp_path / "pred"
    argv = ["predict", "--checkpoint", str(run / "last.pt"), "--count", "2", "--out", str(out)]
    err = ok(without_extras(argv, tmp_path))
    assert err.count(NOTE.format("grid.png")) == 1, err
    assert (
        sorted(p.name.rsplit("_", 1)[1] for p in out.iterdir())
        == ["overlay.png"] * 2 + ["pred.png"] * 2
    )

    table = tmp_path / "table"
    argv = ["reproduce", "--preset", "minicity-cpu", "--quiet", "--rows", "baseline", "both"]
    err = ok(without_extras([*argv, "--out", str(table), "--opt", *opts], tmp_path))
    assert err.count(NOTE.format("curves.png")) == 1, err  # once, not once per row
    assert err.count(NOTE.format("the table's figures")) == 1, err
    assert not list(table.glob("*.png"))
    report = (table / "results.md").read_text()
    assert "| baseline" in report and "| + both" in report
    assert "Figures: none (matplotlib is not installed)" in report
