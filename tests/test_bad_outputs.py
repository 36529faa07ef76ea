"""Outputs that would replace what the user did not name (issue 29): ``evaluate --output`` over
a checkpoint or an earlier result, ``--export`` into the dataset, two evaluations sharing a
default results file, and two trainings in one run folder (its lock). Each is refused in one
line, exit status 2, every file unchanged.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import tiny_opts, train_argv
from test_errors import COMMITTED, assert_one_line_error, snapshot

from dgcn.cli import main
from dgcn.config import REPO_DIR, load_config
from dgcn.evaluation.outputs import EXPORT_MARKER
from dgcn.training import runs
from dgcn.training.runlock import RunLock, lock_path


@pytest.fixture()
def checkpoint(tmp_path):
    """A copy of the committed MiniCity model as a run's ``last.pt``."""
    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    shutil.copy(REPO_DIR / COMMITTED, path)
    return path


def eval_argv(checkpoint, minicity, *extra):
    """``dgcn evaluate`` of ``checkpoint`` on the tiny MiniCity, whole images, quiet."""
    data = [f"data.root={minicity}", "data.minicity_train=8", "data.minicity_val=3"]
    data += ["data.minicity_size=[64,128]", "data.val_limit=1"]
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--quiet", "--workers", "0"]
    return [*argv, "--mode", "whole", *extra, "--opt", *data]


def results_files(folder):
    return sorted(p.name for p in folder.glob("eval-*.json"))


# --- the results file ------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["last.pt", "notes.txt", "notes.json", "folder.json"])
def test_output_never_replaces_a_file_that_is_not_this_evaluations_result(
    minicity, checkpoint, capsys, target
):
    run = checkpoint.parent
    (run / "notes.txt").write_text("mine")
    (run / "notes.json").write_text('{"mine": true}')
    (run / "folder.json").mkdir()
    before = snapshot(run)
    status = main(eval_argv(checkpoint, minicity, "--output", str(run / target)))
    match = {"last.pt": "must be a .json file", "notes.txt": "must be a .json file"}
    match |= {"notes.json": "is not a results file of dgcn evaluate", "folder.json": "is a folder"}
    assert_one_line_error(capsys, status, match[target])
    assert snapshot(run) == before


def test_a_result_is_replaced_only_by_the_same_evaluation(minicity, checkpoint, capsys):
    output = checkpoint.parent / "mine.json"
    assert main(eval_argv(checkpoint, minicity, "--output", str(output))) == 0
    first = json.loads(output.read_text())
    assert main(eval_argv(checkpoint, minicity, "--output", str(output))) == 0  # rerun
    assert json.loads(output.read_text())["evaluation"] == first["evaluation"]
    capsys.readouterr()
    before = output.read_text()
    status = main(eval_argv(checkpoint, minicity, "--flip", "--output", str(output)))
    assert_one_line_error(capsys, status, "holds the results of another evaluation")
    assert output.read_text() == before


def test_two_different_evaluations_never_share_a_default_results_file(minicity, checkpoint, capsys):
    run = checkpoint.parent
    shutil.copy(checkpoint, run / "previous.pt")
    assert main(eval_argv(checkpoint, minicity)) == 0
    assert main(eval_argv(checkpoint, minicity, "--flip")) == 0
    assert main(eval_argv(checkpoint, minicity, "--split", "train")) == 0
    assert main(eval_argv(run / "previous.pt", minicity)) == 0
    names = results_files(run)
    assert len(names) == 4, names
    assert sum(n.startswith("eval-previous-val-whole-") for n in names) == 1
    assert main(eval_argv(checkpoint, minicity)) == 0  # the same evaluation: its own file
    assert results_files(run) == names
    records = [json.loads((run / n).read_text())["evaluation"] for n in names]
    assert len({json.dumps(r, sort_keys=True) for r in records}) == 4


# --- the export ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["leftImg8bit/val", "gtFine", ".", "..", "other"])
def test_export_never_writes_into_the_dataset_or_a_folder_of_other_files(
    minicity, checkpoint, capsys, where
):
    other = checkpoint.parent / "other"
    (other / "city").mkdir(parents=True)
    (other / "city" / "a_leftImg8bit.png").write_bytes(b"an image of another dataset")
    folder = other if where == "other" else minicity / where
    before = snapshot(minicity.parent), snapshot(checkpoint.parent)
    output = checkpoint.parent / "e.json"
    status = main(eval_argv(checkpoint, minicity, "--export", str(folder), "--output", str(output)))
    match = "was not written by dgcn evaluate" if where == "other" else "the dataset root"
    assert_one_line_error(capsys, status, match)
    assert (snapshot(minicity.parent), snapshot(checkpoint.parent)) == before


def test_an_export_is_redone_only_by_the_same_evaluation(minicity, checkpoint, capsys):
    folder = checkpoint.parent / "export"
    argv = eval_argv(checkpoint, minicity, "--export", str(folder))
    assert main(argv) == 0
    assert (folder / EXPORT_MARKER).is_file() and list(folder.glob("*/*.png"))
    assert main(argv) == 0  # the same evaluation again: its own PNGs replaced
    capsys.readouterr()
    before = snapshot(folder)
    status = main(eval_argv(checkpoint, minicity, "--flip", "--export", str(folder)))
    assert_one_line_error(capsys, status, "holds the export of another evaluation")
    assert snapshot(folder) == before


# --- the run folder's lock -------------------------------------------------------------------


def dgcn_process(*argv):
    """``python -m dgcn ARGV`` as a separate process (this checkout's package), quiet."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_DIR)}
    command = [sys.executable, "-m", "dgcn", *argv]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def one_iteration(minicity, **extra):
    return tiny_opts(minicity, **{"train.iterations": 1, "train.checkpoint_every": 1, **extra})


@pytest.mark.slow
def test_a_second_training_into_a_running_run_is_refused(minicity, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_argv(run, one_iteration(minicity))) == 0
    long = one_iteration(minicity, **{"train.iterations": 100_000})
    first = dgcn_process(*train_argv(run, long, "--resume"))
    try:
        deadline = time.monotonic() + 180
        while len((run / "metrics.jsonl").read_text().splitlines()) < 3:  # it is training
            assert first.poll() is None, first.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the first training did not start"
            time.sleep(0.2)
        capsys.readouterr()
        for flags in (["--resume"], ["--overwrite"]):
            status = main(train_argv(run, long, *flags))
            assert_one_line_error(capsys, status, f"is in use by another training (pid {first.pid}")
        assert first.poll() is None  # the first one goes on
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        first.kill()
        first.communicate()
    assert not lock_path(run).exists()  # released on SIGTERM
    with RunLock(run) as lock:
        assert lock.note is None


def test_a_lock_left_by_a_killed_training_is_taken_over_with_a_note(minicity, tmp_path, capsys):
    run = tmp_path / "run"
    code = (
        "import os, signal; from dgcn.training.runlock import RunLock; "
        f"RunLock({str(run)!r}).acquire(); os.kill(os.getpid(), signal.SIGKILL)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_DIR)}
    killed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert lock_path(run).is_file()
    assert main(train_argv(run, one_iteration(minicity))) == 0
    out = capsys.readouterr().out
    assert "took over the lock" in out and "killed before it could release it" in out
    assert (run / "last.pt").is_file() and not lock_path(run).exists()


def test_the_lock_is_released_when_a_start_fails(tmp_path, capsys):
    argv = train_argv(tmp_path / "runs" / "run", tiny_opts(tmp_path / "typo"))
    status = main([*argv, "data.dataset=cityscapes"])
    assert_one_line_error(capsys, status, "does not exist")
    assert not any(tmp_path.iterdir())  # no lock, no runs/ folder made for it


@pytest.mark.parametrize("rank, locked", [("0", True), ("1", False)])
def test_under_torchrun_only_rank_0_holds_the_lock(tmp_path, monkeypatch, rank, locked):
    seen = []

    def fit(cfg, folder, *args):
        seen.append(lock_path(folder).is_file())

    monkeypatch.setattr(runs, "fit", fit)
    env = {"RANK": rank, "WORLD_SIZE": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runs.train(load_config("minicity-cpu"), tmp_path / "run")
    assert seen == [locked]
    assert not lock_path(tmp_path / "run").exists()


def test_every_test_mode_setting_is_part_of_an_evaluations_identity():
    """A setting of ``eval`` left out of the identity would let two evaluations share a file."""
    import dataclasses

    from dgcn.config import EvalConfig, load_config
    from dgcn.evaluation.outputs import evaluation_identity

    cfg = load_config("minicity-cpu")
    identity = evaluation_identity(cfg, "last.pt", "val", "fp32")
    # report_scaled only adds a rescaled figure to the same scores: the same evaluation
    reported = {"precision", "report_scaled"}
    missing = {f.name for f in dataclasses.fields(EvalConfig)} - set(identity) - reported
    assert not missing, f"eval settings not in the identity: {missing}"
