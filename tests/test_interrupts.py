"""A run survives what interrupts it: real SIGTERM and SIGINT sent to real ``dgcn train``
processes (and to ``torchrun``) keep the work and resume bit-identical; a signal in an
evaluation; a start that fails or is interrupted leaves nothing behind."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from helpers import checkpoints_equal, dgcn, hashes, losses, tiny_opts, torchrun, train_argv

from dgcn.checkpoint import load_checkpoint
from dgcn.cli import main
from dgcn.training import loop, steps
from dgcn.training.rundir import NewRun

ITERATIONS = 300


def records(run) -> int:
    """How many lines the run's metrics log holds (one per iteration with log_every=1)."""
    try:
        return (run / "metrics.jsonl").read_text().count("\n")
    except FileNotFoundError:
        return 0


def signalled(command, run, signum, again=None, after=120, group=False):
    """Start ``command``, send ``signum`` once ``run`` logged ``after`` records, then ``again``
    every 10 ms until the process ends (signals during the checkpoint write); ``group``: to
    the whole process group, as a terminal's Ctrl-C. Returns the finished process's
    (returncode, stdout, stderr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )

    def send(number):
        if group:
            os.killpg(process.pid, number)
        else:
            process.send_signal(number)

    deadline = time.time() + 300
    while process.poll() is None and records(run) < after and time.time() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before the signal: " + process.stderr.read()
    send(signum)
    time.sleep(0.1)  # handled first: pending signals are handled in the order of their numbers
    while again is not None and process.poll() is None:
        try:
            send(again)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def python_dgcn(run, opts, *flags):
    return [sys.executable, "-m", "dgcn", *train_argv(run, opts, *flags)]


@pytest.fixture(scope="module")
def straight(minicity, tmp_path_factory):
    """An uninterrupted run of ITERATIONS iterations (checkpoints every 100), and its opts."""
    opts = tiny_opts(minicity, **{"train.iterations": ITERATIONS, "train.checkpoint_every": 100})
    run = tmp_path_factory.mktemp("straight") / "run"
    result = dgcn(*train_argv(run, opts))
    assert result.returncode == 0, result.stderr
    return run, opts


def resume_from_printed_line(out):
    """Run the resume command that the stop line printed; returns its exit status."""
    line = out.strip().splitlines()[-1]
    command = shlex.split(line.split("resume with: ")[1])
    assert command[:2] == ["dgcn", "train"] and "--resume" in command
    return dgcn(*command[1:], "--quiet")


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_exits_143_and_the_resume_is_bit_identical(straight, tmp_path):
    reference, opts = straight
    run = tmp_path / "run"
    # SIGTERM, then SIGINT every 10 ms until the process ends: the later signals arrive while
    # it finishes its iteration and writes last.pt (previous.pt: the periodic one at 100)
    status, out, err = signalled(python_dgcn(run, opts), run, signal.SIGTERM, signal.SIGINT)
    assert status == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "dgcn: SIGTERM: finishing this iteration, then writing a checkpoint" in err
    assert out.count("\n") == 1  # one line: where it stopped and the command that resumes
    stopped = load_checkpoint(run / "last.pt")["iteration"]
    assert 120 <= stopped < ITERATIONS
    assert out.startswith(f"stopped at iteration {stopped}/{ITERATIONS} by SIGTERM; resume with: ")
    assert load_checkpoint(run / "previous.pt")["iteration"] == 100
    assert not (run / "summary.json").exists()
    assert not list(run.glob(".*.tmp"))

    resumed = resume_from_printed_line(out)
    assert resumed.returncode == 0, resumed.stderr
    checkpoints_equal(load_checkpoint(reference / "last.pt"), load_checkpoint(run / "last.pt"))
    assert losses(reference) == losses(run)
    starts = [json.loads(line)["iteration"] for line in open(run / "config-history.jsonl")]
    assert starts == [0, stopped]


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_with_loader_workers_keeps_the_work(straight, tmp_path):
    """A terminal's Ctrl-C reaches the loader workers too: they ignore it, the main process
    finishes its iteration (the batches it still needs come from the workers) and stops."""
    reference, opts = straight
    run = tmp_path / "run"
    opts = [*opts, "data.workers=2"]
    status, out, err = signalled(python_dgcn(run, opts), run, signal.SIGINT, group=True)
    assert status == 128 + signal.SIGINT, err
    assert "Traceback" not in err and "exited unexpectedly" not in err
    stopped = load_checkpoint(run / "last.pt")["iteration"]
    assert out == f"stopped at iteration {stopped}/{ITERATIONS} by SIGINT; resume with: " + (
        shlex.join(
            ["dgcn", "train", "--config", str(run / "config.yaml"), "--run-dir", str(run)]
            + ["--resume"]
        )
        + "\n"
    )
    resumed = resume_from_printed_line(out)
    assert resumed.returncode == 0, resumed.stderr
    # two loader workers give the same run as none
    checkpoints_equal(load_checkpoint(reference / "last.pt"), load_checkpoint(run / "last.pt"))
    assert losses(reference) == losses(run)


@pytest.mark.slow
def test_under_torchrun_every_rank_stops_at_one_iteration_and_rank_0_writes_it(minicity, tmp_path):
    opts = tiny_opts(
        minicity,
        **{"train.iterations": 160, "train.micro_batch": 2, "train.checkpoint_every": 1000},
    )
    straight = torchrun(*train_argv(tmp_path / "a", opts, "--device", "cpu"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    run = tmp_path / "b"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    launcher += ["--nproc_per_node=2", "-m", "dgcn", *train_argv(run, opts, "--device", "cpu")]
    # the launcher forwards SIGTERM to both workers, which may be at different points
    status, out, err = signalled(launcher, run, signal.SIGTERM, after=60)
    stopped = load_checkpoint(run / "last.pt")["iteration"]
    assert 60 <= stopped < 160, err[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("stopped at")]
    assert lines == [
        f"stopped at iteration {stopped}/160 by SIGTERM; resume with: torchrun --standalone "
        f"--nproc_per_node=2 -m dgcn train --config {run / 'config.yaml'} --run-dir {run} "
        "--resume --device cpu"
    ], out
    assert len(load_checkpoint(run / "last.pt")["rng_ranks"]) == 2  # both ranks' states
    resumed = torchrun(*train_argv(run, opts, "--device", "cpu", "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(run / "last.pt")
    checkpoints_equal(a, b)
    for rank in range(2):
        assert (a["rng_ranks"][rank]["torch"] == b["rng_ranks"][rank]["torch"]).all()
    assert losses(tmp_path / "a") == losses(run)


def signal_in_evaluation(monkeypatch, at_call: int):
    """Make the ``at_call``-th evaluation of the run send SIGTERM to this process."""
    calls = []
    evaluate = steps.evaluate

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == at_call:
            os.kill(os.getpid(), signal.SIGTERM)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(steps, "evaluate", interrupted)


@pytest.mark.slow
def test_an_evaluation_cut_short_by_a_signal_runs_when_the_run_resumes(
    minicity, tmp_path, monkeypatch, capsys
):
    opts = tiny_opts(minicity, **{"train.iterations": 6, "train.eval_every": 2})
    assert main(train_argv(tmp_path / "a", opts)) == 0
    capsys.readouterr()
    run = tmp_path / "b"
    signal_in_evaluation(monkeypatch, at_call=1)  # the evaluation at iteration 2
    assert main(train_argv(run, opts)) == 128 + signal.SIGTERM
    out = capsys.readouterr().out
    assert out.startswith("stopped at iteration 2/6 by SIGTERM; resume with:")
    assert load_checkpoint(run / "last.pt")["iteration"] == 2
    assert not any(m is not None for _, _, m in losses(run))  # the cut evaluation: not logged
    monkeypatch.undo()
    assert main(train_argv(run, opts, "--resume")) == 0
    # the evaluation at 2 ran first, without changing the random stream: the same run
    assert losses(tmp_path / "a") == losses(run)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(run / "last.pt")
    checkpoints_equal(a, b)


@pytest.mark.slow
def test_a_signal_in_the_final_evaluation_keeps_the_trained_run(
    minicity, tmp_path, monkeypatch, capsys
):
    opts = tiny_opts(minicity, **{"train.iterations": 3})
    run = tmp_path / "run"
    signal_in_evaluation(monkeypatch, at_call=1)
    assert main(train_argv(run, opts)) == 128 + signal.SIGTERM
    out = capsys.readouterr().out
    assert out.startswith("stopped after iteration 3/3, in the final evaluation, by SIGTERM;")
    assert load_checkpoint(run / "last.pt")["iteration"] == 3
    assert not (run / "summary.json").exists()
    monkeypatch.undo()
    assert main(train_argv(run, opts, "--resume")) == 0
    assert json.loads((run / "summary.json").read_text())["iterations"] == 3


def test_a_signal_before_training_starts_leaves_no_folder(minicity, tmp_path, monkeypatch, capsys):
    datasets = loop._datasets

    def interrupted(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        return datasets(*args)

    monkeypatch.setattr(loop, "_datasets", interrupted)
    run = tmp_path / "runs" / "run"
    assert main(train_argv(run, tiny_opts(minicity))) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert err == (
        "dgcn: interrupted by SIGTERM before training started; nothing was kept: run the same "
        "command again\n"
    )
    assert not (tmp_path / "runs").exists()
    # the handlers are the ones before the run again
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler


@pytest.fixture
def damaged(minicity, tmp_path):
    """A copy of the tiny MiniCity whose training images are all damaged, and a function that
    repairs them."""
    import shutil

    root = tmp_path / "damaged"
    shutil.copytree(minicity, root)
    images = sorted((root / "leftImg8bit" / "train").rglob("*.png"))
    kept = {p: p.read_bytes() for p in images}
    for path in images:
        path.write_bytes(b"not a png")

    def repair():
        for path, data in kept.items():
            path.write_bytes(data)

    return root, repair


@pytest.mark.parametrize("workers", [0, 2])
def test_a_start_that_fails_leaves_no_folder_and_the_same_command_runs_after_the_fix(
    damaged, tmp_path, workers, capsys
):
    root, repair = damaged
    run = tmp_path / "runs" / "run"
    argv = train_argv(run, tiny_opts(root, **{"train.iterations": 2, "data.workers": workers}))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot decode image" in err and "not a PNG" in err
    assert not (tmp_path / "runs").exists()  # neither the run folder nor its parent
    repair()
    assert main(argv) == 0  # no --overwrite, no --resume


def test_overwrite_that_fails_puts_the_earlier_run_back(minicity, damaged, tmp_path, capsys):
    root, _ = damaged
    run = tmp_path / "run"
    assert main(train_argv(run, tiny_opts(minicity, **{"train.iterations": 1}))) == 0
    before = hashes(run)
    opts = tiny_opts(root, **{"train.iterations": 1})
    assert main(train_argv(run, opts, "--overwrite")) == 2
    assert hashes(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged", "run"]  # nothing aside


def test_a_folder_whose_run_never_reached_a_checkpoint_is_started_again(minicity, tmp_path, capsys):
    """What a start killed with SIGKILL before its first checkpoint leaves behind."""
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 1})
    assert main(train_argv(run, opts)) == 0
    for name in ("last.pt", "summary.json"):
        (run / name).unlink()
    capsys.readouterr()
    assert main(train_argv(run, opts, "--resume")) == 2
    err = capsys.readouterr().err
    assert "holds no checkpoint (its run stopped before the first one); start it again" in err
    (run / "notes.txt").write_text("mine")  # a file of the user's: not a dead start, refused
    assert main(train_argv(run, opts)) == 2
    assert "already holds a run" in capsys.readouterr().err
    (run / "notes.txt").unlink()
    assert main(train_argv(run, opts)) == 0
    starts = [json.loads(line)["iteration"] for line in open(run / "config-history.jsonl")]
    assert starts == [0]  # the dead start's history went with it


def test_a_process_whose_loader_workers_ignore_signals_still_exits():
    """Workers that ignore SIGTERM would hang the exit of a process whose loader was never
    shut down (multiprocessing ends them with SIGTERM, then waits): they are killed instead."""
    code = (
        "from torch.utils.data import DataLoader\n"
        "from dgcn.training.interrupt import quiet_workers\n"
        "loader = DataLoader(list(range(64)), batch_size=2, num_workers=2,\n"
        "                    persistent_workers=True, worker_init_fn=quiet_workers())\n"
        "KEPT = iter(loader)  # alive until the interpreter exits: never shut down\n"
        "print(next(KEPT).tolist())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[0, 1]\n" and "Exception" not in result.stderr, result.stderr


def test_a_failed_start_removes_only_its_own_folder(tmp_path):
    """The parent it created stays when another run was started in it meanwhile."""
    runs = tmp_path / "runs"
    start = NewRun(runs / "a")  # what a start records before anything exists
    start.open()
    (runs / "b").mkdir()  # another run, started in the same parent meanwhile
    (runs / "b" / "config.yaml").write_text("x")
    (runs / "a" / "metrics.jsonl").write_text("")
    start.undo()
    assert sorted(p.name for p in runs.iterdir()) == ["b"]
    assert (runs / "b" / "config.yaml").read_text() == "x"
