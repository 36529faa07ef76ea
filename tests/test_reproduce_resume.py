"""``dgcn reproduce`` row by row across sessions: a table stopped by SIGTERM in the middle of a
row, or by its time limit, continues to the results of an uninterrupted one; finished runs of
``dgcn train`` join the table."""

import json
import shlex
import signal
import sys

import pytest
from helpers import tiny_opts, train_argv
from test_interrupts import signalled

from dgcn.cli import main
from dgcn.errors import RunDirError
from dgcn.reproduce import read_results, reproduce

ROWS = ["baseline", "both"]


def results(out):
    """(row, seed) -> (mIoU, IoU per class) of a table."""
    return {(r["row"], r["seed"]): (r["miou"], r["per_class"]) for r in read_results(out)}


@pytest.mark.slow
def test_a_table_killed_in_the_middle_of_a_row_continues_to_the_same_results(
    minicity, tmp_path, capsys
):
    opts = tiny_opts(minicity, **{"train.iterations": 300, "train.checkpoint_every": 100})
    straight = tmp_path / "straight"
    reproduce("minicity-cpu", rows=ROWS, out=straight, overrides=opts, progress=False)
    capsys.readouterr()

    out = tmp_path / "table"
    command = [sys.executable, "-m", "dgcn", "reproduce", "--preset", "minicity-cpu", "--quiet"]
    command += ["--rows", *ROWS, "--out", str(out), "--opt", *opts]
    # SIGTERM in the middle of the second row, after 120 of its 300 iterations
    status, stdout, err = signalled(command, out / "both-seed0", signal.SIGTERM)
    assert status == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    lines = stdout.strip().splitlines()
    assert lines[-2].startswith("stopped at iteration ") and " by SIGTERM;" in lines[-2]
    assert lines[-1].startswith("continue the table with: dgcn reproduce --preset minicity-cpu")
    assert [r["row"] for r in read_results(out)] == ["baseline"]  # the row done is in the table
    assert (out / "both-seed0" / "last.pt").is_file()

    again = shlex.split(lines[-1].split("continue the table with: ")[1])
    assert main([*again[1:], "--quiet"]) == 0
    assert "resuming" in capsys.readouterr().out  # the second row went on from its checkpoint
    assert results(out) == results(straight)
    history = (out / "both-seed0" / "config-history.jsonl").read_text().splitlines()
    assert len(history) == 2 and json.loads(history[1])["iteration"] >= 120


@pytest.mark.slow
def test_a_time_limit_stops_the_table_with_a_checkpoint_and_each_call_goes_on(
    minicity, tmp_path, capsys
):
    opts = tiny_opts(minicity, **{"train.iterations": 2, "train.checkpoint_every": 2})
    straight = tmp_path / "straight"
    reproduce("minicity-cpu", rows=ROWS, out=straight, overrides=opts, progress=False)
    out = tmp_path / "table"
    limited = [*opts, "train.time_limit=1e-6"]  # each call: one iteration, then a stop
    argv = ["reproduce", "--preset", "minicity-cpu", "--quiet", "--rows", *ROWS]
    argv += ["--out", str(out), "--opt", *limited]
    capsys.readouterr()
    calls = 0
    while not (out / "results.md").is_file() or "Unfinished" in (out / "results.md").read_text():
        assert main(argv) == 0
        calls += 1
        assert calls <= 6, capsys.readouterr().out
    printed = capsys.readouterr().out
    assert "reproduce stopped by train.time_limit in row baseline-seed0 (0 of 2 rows" in printed
    assert "continue with: dgcn reproduce --preset minicity-cpu --out" in printed
    assert calls == 4  # each row: one iteration, then the second and its evaluation
    assert results(out) == results(straight)
    # another table into the same folder is refused, naming how to continue this one
    with pytest.raises(RunDirError, match=r"differs in rows\); continue it with dgcn reproduce"):
        reproduce("minicity-cpu", rows=["both"], out=out, overrides=limited, progress=False)


def test_finished_runs_of_dgcn_train_join_the_table(minicity, tmp_path, capsys):
    opts = tiny_opts(minicity, **{"train.iterations": 1})
    run = tmp_path / "trained-both"
    assert main(train_argv(run, [*opts, "model.overrides.graphs=both"])) == 0
    out = tmp_path / "table"
    reproduce("minicity-cpu", rows=ROWS, out=out, overrides=opts, progress=False, join=[run])
    records = {r["row"]: r for r in read_results(out)}
    assert records["both"]["run_dir"] == str(run)
    summary = json.loads((run / "summary.json").read_text())["eval"]
    assert records["both"]["miou"] == summary["miou"]
    assert not (out / "both-seed0").exists()  # not trained again
    # a run that is no row of the table, and one not finished, are refused in one line
    other = tmp_path / "other"
    assert main(train_argv(other, [*opts, "model.overrides.graphs=feature"])) == 0
    with pytest.raises(RunDirError, match="its config is none of this table's rows"):
        reproduce("minicity-cpu", rows=ROWS, out=tmp_path / "t2", overrides=opts, join=[other])
    unfinished = tmp_path / "unfinished"
    stopped = [*opts, "train.iterations=2", "train.time_limit=1e-6", "model.overrides.graphs=both"]
    assert main(train_argv(unfinished, stopped)) == 0
    two = [*opts, "train.iterations=2"]
    with pytest.raises(RunDirError, match="is not finished; resume it with dgcn train"):
        reproduce("minicity-cpu", rows=ROWS, out=tmp_path / "t3", overrides=two, join=[unfinished])


def test_each_ablation_preset_is_a_row_of_the_cityscapes_table():
    """A run of ``dgcn train --config ablation-ROW`` can join ``dgcn reproduce --preset
    cityscapes-paper``: its config is that row's, the name aside."""
    from dgcn.ablation import ROWS
    from dgcn.config import apply_overrides, load_config
    from dgcn.training.rundir import config_changes

    for row in ("baseline", "coordinate", "feature"):
        table = load_config("cityscapes-paper")
        apply_overrides(table, {"model": {"overrides": ROWS[row]}, "train": {"seed": 0}})
        assert config_changes(table, load_config(f"ablation-{row}")) == [], row
    assert config_changes(load_config("cityscapes-paper"), load_config("ablation-coordinate"))
