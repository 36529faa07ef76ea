"""Training engine: losses, schedule, overfit, exact resume after SIGKILL, torchrun, errors;
resume on another device, the time limit, previous.pt, every rank's own random state."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import checkpoints_equal, dgcn, hashes, losses, tiny_opts, torchrun, train_argv
from PIL import Image

from dgcn import distributed, optional, training
from dgcn import precision as precision_rules
from dgcn.checkpoint import load_checkpoint, save_checkpoint
from dgcn.cli import main
from dgcn.config import load_config, parse_duration
from dgcn.datasets import generate_scene
from dgcn.datasets.labels import id_to_train_id_lut
from dgcn.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD
from dgcn.errors import CheckpointError, ConfigError
from dgcn.models import build_model
from dgcn.optional import available
from dgcn.training import resume
from dgcn.training.loop import config_changes
from dgcn.training.losses import SegmentationLoss, ohem_mask
from dgcn.training.resume import TimeLimit, rank_seed, restore_rng, resume_settings, rng_state
from dgcn.training.rundir import ResumePoint, find_checkpoint
from dgcn.training.sampling import ResumableSampler
from dgcn.training.schedule import poly_scheduler


def batch_from_scenes(n=2, height=64, width=128):
    images, masks = [], []
    lut = id_to_train_id_lut()
    for i in range(n):
        image, label = generate_scene(np.random.default_rng(i), height, width)
        x = torch.from_numpy(image).permute(2, 0, 1).float() / 255
        x = (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[
            :, None, None
        ]
        images.append(x)
        masks.append(torch.from_numpy(lut[label]).long())
    return torch.stack(images), torch.stack(masks)


@pytest.mark.slow
def test_one_batch_overfit_reaches_95_percent():
    torch.manual_seed(0)
    images, masks = batch_from_scenes(2, 128, 256)
    model = build_model("dgcnet_paper_micro").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    criterion = SegmentationLoss("ce", aux_weight=0.4)
    for _ in range(200):
        optimizer.zero_grad()
        loss, _ = criterion(model(images), masks)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        preds = model(images)["out"].argmax(1)
    valid = masks != 255
    accuracy = (preds[valid] == masks[valid]).float().mean().item()
    assert accuracy >= 0.95, accuracy


def test_ohem_with_threshold_one_equals_ce():
    logits = torch.randn(2, 5, 16, 16)
    target = torch.randint(0, 5, (2, 16, 16))
    target[0, :3] = 255
    ohem = SegmentationLoss("ohem", aux_weight=0, ohem_thresh=1.0, ohem_min_kept=10)
    # per image, then over the images (the authors' one image per process)
    ce = torch.stack(
        [F.cross_entropy(logits[i : i + 1], target[i : i + 1], ignore_index=255) for i in range(2)]
    ).mean()
    torch.testing.assert_close(ohem({"out": logits}, target)[0], ce)


def test_ohem_keeps_the_hardest_and_at_least_min_kept():
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 20, 20) * 3
    target = torch.randint(0, 4, (2, 20, 20))
    target[1, :5] = 255
    keep = ohem_mask(logits, target, thresh=0.05, min_kept=50)
    probs = torch.softmax(logits, 1)
    for b in range(2):
        valid = target[b] != 255
        p = probs[b].gather(0, target[b].clamp(max=3)[None])[0][valid]
        threshold = max(0.05, float(p.sort().values[49]))  # the 50th smallest, by hand
        assert keep[b].sum() >= 50
        assert torch.equal(keep[b][valid], p <= threshold)
        assert not keep[b][~valid].any()


def test_poly_schedule_matches_its_formula():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.01)
    scheduler = poly_scheduler(optimizer, total=100, power=0.9)
    for step in range(100):
        expected = 0.01 * (1 - step / 100) ** 0.9
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)
        optimizer.step()
        scheduler.step()


def test_sampler_splits_one_global_stream():
    single = ResumableSampler(10, micro_batch=4, seed=3)
    two = [
        ResumableSampler(10, micro_batch=1, world_size=2, rank=r, accumulation=2, seed=3)
        for r in range(2)
    ]
    stream = [single.index_at(p) for p in range(12)]
    assert sorted(stream[:10]) == list(range(10))  # one epoch is a permutation
    positions = sorted(p for s in two for p in s.positions(0))
    assert positions == single.positions(0) == [0, 1, 2, 3]
    resumed = ResumableSampler(10, micro_batch=4, seed=3, start_iteration=2)
    assert next(iter(resumed)) == (single.index_at(8), single.sample_seed(8))


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(minicity, tmp_path):
    opts = tiny_opts(minicity, **{"train.iterations": 12, "train.checkpoint_every": 3})
    straight = dgcn(*train_argv(tmp_path / "a", opts))
    assert straight.returncode == 0, straight.stderr

    run = tmp_path / "b"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dgcn",
            *train_argv(run, opts),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if (run / "last.pt").exists() and load_checkpoint(run / "last.pt")["iteration"] >= 3:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = load_checkpoint(run / "last.pt")["iteration"]
    assert 3 <= killed_at < 12
    written = [  # what the killed process logged up to its checkpoint
        line
        for line in (run / "metrics.jsonl").read_text().splitlines(keepends=True)
        if json.loads(line)["iteration"] <= killed_at
    ]
    resumed = dgcn(*train_argv(run, opts, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    # the resumed process started from the checkpoint, not from zero: its start is recorded at
    # the checkpoint's iteration, and the killed process's records are kept byte for byte
    starts = [json.loads(line)["iteration"] for line in open(run / "config-history.jsonl")]
    assert starts == [0, killed_at]
    assert (run / "metrics.jsonl").read_text().startswith("".join(written))

    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(run / "last.pt")
    assert a["iteration"] == 12
    checkpoints_equal(a, b)
    losses = [
        [
            (r["iteration"], r["loss"])
            for r in map(json.loads, open(p / "metrics.jsonl"))
            if "loss" in r
        ]
        for p in (tmp_path / "a", run)
    ]
    assert losses[0] == losses[1]


@pytest.mark.slow
def test_torchrun_two_processes_train_and_allreduced_confusion(minicity, tmp_path):
    opts = tiny_opts(minicity, **{"train.iterations": 2, "train.micro_batch": 2})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "dgcn",
    ]
    run = subprocess.run(
        [
            *torchrun,
            *train_argv(tmp_path / "ddp", opts, "--device", "cpu"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["accumulation"] == 1
    checkpoint = str(tmp_path / "ddp" / "last.pt")
    args = [
        "evaluate",
        "--checkpoint",
        checkpoint,
        "--quiet",
        "--device",
        "cpu",
        "--workers",
        "0",
        "--mode",
        "whole",
    ]
    two = subprocess.run(
        [*torchrun, *args, "--output", str(tmp_path / "two.json")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    one = dgcn(*args, "--output", str(tmp_path / "one.json"))
    assert one.returncode == 0, one.stderr
    results = [json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two")]
    assert results[0]["confusion"] == results[1]["confusion"]
    assert results[1]["processes"] == 2 and sum(map(sum, results[0]["confusion"])) > 0


def test_unknown_config_key_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'train.lr'"):
        load_config("minicity-cpu", ["train.learning_rate=0.1"])


@pytest.mark.parametrize(
    "case", ["unknown_key", "missing_checkpoint", "other_model", "existing_run_dir"]
)
def test_user_errors_are_one_line_exit_2_and_touch_nothing(case, minicity, tmp_path, capsys):
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 1})
    assert main(train_argv(run, opts)) == 0
    capsys.readouterr()
    before = hashes(tmp_path)
    if case == "unknown_key":
        argv = train_argv(run, ["train.lrr=1"], "--resume")
        expected = "unknown config key 'train.lrr'"
    elif case == "missing_checkpoint":
        argv = ["evaluate", "--checkpoint", str(tmp_path / "nope.pt")]
        expected = "not found"
    elif case == "other_model":
        argv = [  # past the config check, the checkpoint's own check speaks
            *train_argv(run, opts, "--resume", "--allow-config-change"),
            "model.name=fcn_micro",
        ]
        expected = "another model"
    else:
        argv = train_argv(run, opts)
        expected = "already holds a run"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert hashes(tmp_path) == before


def test_official_checkpoint_passed_as_ours_says_so(tmp_path, capsys):
    path = tmp_path / "authors.pth"
    torch.save({"conv1.0.weight": torch.zeros(1)}, path)
    assert main(["evaluate", "--checkpoint", str(path)]) == 2
    assert "--official" in capsys.readouterr().err


def test_predict_and_export_write_pngs(minicity, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(optional, "_NOTED", set())  # each note is printed once a process
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 2})
    assert main(train_argv(run, opts)) == 0
    out = tmp_path / "pred"
    assert (
        main(["predict", "--checkpoint", str(run / "last.pt"), "--count", "2", "--out", str(out)])
        == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert sum(n.endswith("_pred.png") for n in names) == 2
    # the grid needs matplotlib (the notebooks extra); without it one note says so
    assert ("grid.png" in names) == available("matplotlib")
    assert ("grid.png not drawn" in capsys.readouterr().err) != available("matplotlib")
    export = tmp_path / "export"
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(run / "last.pt"),
                "--quiet",
                "--workers",
                "0",
                "--export",
                str(export),
                "--output",
                str(tmp_path / "e.json"),
            ]
        )
        == 0
    )
    pngs = sorted(export.rglob("*.png"))
    assert len(pngs) == 3  # the 3 validation images, one labelId PNG each
    values = np.unique(np.array(Image.open(pngs[0])))
    assert set(values.tolist()) <= {0, *range(7, 34)}  # label ids, not train ids
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["images"] == 3 and 0 <= result["miou"] <= 1


# --- what a run keeps across resumes and machines (dgcn.training.resume) ---------------------

A100 = ("bf16", "fp16", "fp32")  # device_precisions of a GPU of compute capability >= 8
T4 = ("fp16", "fp32")  # and of an older one


def resume_point(tmp_path, cfg, **settings):
    """A ResumePoint of a run of ``cfg`` that resolved ``settings`` (none: a legacy one)."""
    state = {"config": cfg.to_dict(), "iteration": 1}
    if settings:
        state["settings"] = {"processes": 1, "device": "a GPU", **settings}
    return ResumePoint(tmp_path / "last.pt", state)


def on(monkeypatch, precisions):
    """Emulate a device that trains in ``precisions`` (the first is what ``auto`` picks)."""
    monkeypatch.setattr(resume, "device_precisions", lambda device: precisions)
    monkeypatch.setattr(precision_rules, "device_precisions", lambda device: precisions)


CPU = distributed.DistInfo()


def test_a_resumed_run_keeps_its_precision_and_micro_batch_on_another_device(tmp_path, monkeypatch):
    cfg = load_config("minicity-cpu", ["train.precision=auto"])
    fp16_run = resume_point(tmp_path, cfg, precision="fp16", micro_batch=2, accumulation=4)
    on(monkeypatch, A100)  # a T4 run resumed on an A100: auto would pick bf16, the run is fp16
    settings, changes = resume_settings(cfg, CPU, fp16_run)
    assert (settings.precision, settings.micro_batch, settings.accumulation) == ("fp16", 2, 4)
    assert changes == []
    new, _ = resume_settings(cfg, CPU, None)  # a new run resolves on the device
    assert (new.precision, new.micro_batch, new.accumulation) == ("bf16", 8, 1)

    override = load_config("minicity-cpu", ["train.precision=bf16", "train.micro_batch=4"])
    settings, changes = resume_settings(override, CPU, fp16_run)
    assert (settings.precision, settings.micro_batch, settings.accumulation) == ("bf16", 4, 2)
    assert changes[:2] == ["precision fp16 -> bf16", "micro-batch 2 x 4 -> 4 x 2"]
    assert "train.precision 'auto' -> 'bf16'" in changes


def test_a_bf16_run_on_a_device_without_bf16_is_refused_naming_the_override(tmp_path, monkeypatch):
    cfg = load_config("minicity-cpu", ["train.precision=auto"])
    bf16_run = resume_point(tmp_path, cfg, precision="bf16", micro_batch=8, accumulation=1)
    on(monkeypatch, T4)
    with pytest.raises(ConfigError, match="trains in bf16.*--opt train.precision=fp16"):
        resume_settings(cfg, CPU, bf16_run)
    fp16 = load_config("minicity-cpu", ["train.precision=fp16"])
    settings, changes = resume_settings(fp16, CPU, bf16_run)
    assert settings.precision == "fp16" and changes[0] == "precision bf16 -> fp16"
    with pytest.raises(ConfigError, match="train.precision=bf16 does not run on"):
        resume_settings(load_config("minicity-cpu", ["train.precision=bf16"]), CPU, bf16_run)


def test_a_checkpoint_without_settings_resolves_them_on_this_device(tmp_path, monkeypatch):
    cfg = load_config("minicity-cpu", ["train.precision=auto", "train.time_limit=1h"])
    legacy = resume_point(tmp_path, load_config("minicity-cpu", ["train.precision=auto"]))
    on(monkeypatch, T4)
    settings, changes = resume_settings(cfg, CPU, legacy)
    assert settings.precision == "fp16" and settings.micro_batch == 8
    assert changes == ["train.time_limit 0.0 -> '1h'"]


def test_the_micro_batch_is_kept_while_it_divides_the_batch(tmp_path):
    cfg = load_config("minicity-cpu")
    two_processes = resume_point(tmp_path, cfg, precision="fp32", micro_batch=4, accumulation=1)
    two_processes.state["settings"]["processes"] = 2
    settings, changes = resume_settings(cfg, CPU, two_processes)  # one process: 4 x 2
    assert (settings.micro_batch, settings.accumulation) == (4, 2)
    assert changes == ["micro-batch 4 x 1 -> 4 x 2", "processes 2 -> 1"]
    smaller = load_config("minicity-cpu", ["train.batch_size=2"])  # --allow-config-change
    settings, _ = resume_settings(smaller, CPU, two_processes)
    assert (settings.micro_batch, settings.accumulation) == (2, 1)


def test_the_keys_a_resume_may_change_are_not_a_config_change():
    run = load_config("minicity-cpu")
    other = load_config(
        "minicity-cpu",
        [
            "train.precision=bf16",
            "train.micro_batch=2",
            "train.time_limit=11h30m",
            "data.workers=2",
        ],
    )
    assert config_changes(run, other) == []
    assert config_changes(run, load_config("minicity-cpu", ["train.lr=0.5"])) == ["train.lr"]


@pytest.mark.parametrize(
    "value, seconds",
    [
        (0, 0.0),
        (90, 90.0),
        ("3600", 3600.0),
        ("11h30m", 41400.0),
        ("1h 2m 3s", 3723.0),
        ("90m", 5400.0),
        ("1.5h", 5400.0),
        ("soon", None),
        (-1, None),
        ("5x", None),
        (True, None),
    ],
)
def test_time_limits_read_as_seconds(value, seconds):
    assert parse_duration(value) == seconds


def test_the_time_limit_stops_before_the_next_iteration_would_overrun_it():
    clock = TimeLimit(100.0, start=0.0)
    clock.step, clock.checkpoint, clock.evaluation = 10.0, 5.0, 30.0
    assert not clock.expired(evaluation_next=False, now=84.0)  # 84 + 10 + 5 <= 100
    assert clock.expired(evaluation_next=False, now=86.0)
    assert clock.expired(evaluation_next=True, now=60.0)  # an evaluation is due after it
    assert not TimeLimit(0.0, start=0.0).expired(True, now=1e9)  # 0: no limit


def test_a_checkpoint_keeps_the_one_before_it_as_previous(tmp_path):
    last, previous = tmp_path / "last.pt", tmp_path / "previous.pt"
    for iteration in (1, 2, 3):
        save_checkpoint(last, {"iteration": iteration, "config": {}}, previous=previous)
    assert load_checkpoint(last)["iteration"] == 3
    assert load_checkpoint(previous)["iteration"] == 2
    last.write_bytes(b"cut by a disconnect")
    point = find_checkpoint(tmp_path)
    assert point.path == previous and point.state["iteration"] == 2
    assert "last.pt cannot be read" in point.note and "\n" not in point.note
    previous.write_bytes(b"also damaged")
    with pytest.raises(CheckpointError, match="neither last.pt nor previous.pt can be read"):
        find_checkpoint(tmp_path)


def test_each_rank_restores_its_own_random_state():
    states = []
    for rank in range(2):
        torch.manual_seed(rank_seed(0, rank))
        states.append(rng_state(torch.device("cpu")))
    checkpoint = {"rng": states[0], "rng_ranks": states, "iteration": 5}
    torch.manual_seed(123)
    assert restore_rng(checkpoint, distributed.DistInfo(rank=1, world_size=2), seed=0) is None
    assert torch.equal(torch.get_rng_state(), states[1]["torch"])
    three = distributed.DistInfo(rank=2, world_size=3)  # a rank the checkpoint has no state of
    note = restore_rng(checkpoint, three, seed=0)
    assert "saved by 2 process(es) for 3" in note
    torch.manual_seed(rank_seed(0, 2, 5))
    expected = torch.get_rng_state()
    restore_rng(checkpoint, three, seed=0)
    assert torch.equal(torch.get_rng_state(), expected)


@pytest.mark.slow
def test_time_limit_stops_at_a_checkpoint_and_the_resume_is_bit_identical(
    minicity, tmp_path, capsys
):
    opts = tiny_opts(minicity, **{"train.iterations": 4, "train.checkpoint_every": 2})
    assert main(train_argv(tmp_path / "straight", opts)) == 0
    capsys.readouterr()
    run = tmp_path / "limited"
    # a limit shorter than any iteration: each start runs one iteration, then stops
    assert main(train_argv(run, [*opts, "train.time_limit=0.000001"])) == 0
    out = capsys.readouterr().out
    assert "stopped at iteration 1/4 by train.time_limit=1e-06; resume with: dgcn train" in out
    assert "mIoU" not in out and not (run / "summary.json").exists()
    assert load_checkpoint(run / "last.pt")["iteration"] == 1  # off the checkpoint_every grid
    status = training.run_status(run)  # what a notebook reads before resuming
    assert (status.iteration, status.finished, status.settings.precision) == (1, False, "fp32")
    assert status.config.train.time_limit == pytest.approx(1e-6) and status.note is None
    command = shlex.split(out.strip().splitlines()[-1].split("resume with: ")[1])
    assert command[:2] == ["dgcn", "train"] and "--resume" in command
    assert main([*command[1:], "--quiet"]) == 0  # the printed command: the run's own config
    assert "stopped at iteration 2/4" in capsys.readouterr().out
    assert load_checkpoint(run / "previous.pt")["iteration"] == 1
    assert main(train_argv(run, [*opts, "train.time_limit=0"], "--resume")) == 0
    out = capsys.readouterr().out
    assert "with changes: train.time_limit 1e-06 -> 0.0" in out and "mIoU" in out
    assert json.loads((run / "summary.json").read_text())["iterations"] == 4
    checkpoints_equal(
        load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(run / "last.pt")
    )
    assert losses(tmp_path / "straight") == losses(run)
    history = [json.loads(line) for line in open(run / "config-history.jsonl")]
    assert [h["iteration"] for h in history] == [0, 1, 2]
    assert history[2]["changes"] == ["train.time_limit 1e-06 -> 0.0"]
    assert history[2]["settings"]["precision"] == "fp32"


@pytest.mark.slow
def test_a_bf16_run_resumed_on_a_t4_is_refused_in_one_line_or_resumed_in_fp16(
    minicity, tmp_path, capsys, monkeypatch
):
    """Colab's GPU changes across reconnects: emulated on the CPU (autocast and GradScaler run
    there in both precisions) by the precisions each device trains in."""
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.precision": "auto", "train.checkpoint_every": 1})

    def start(device, iterations, *extra):
        on(monkeypatch, device)
        argv = train_argv(run, [*opts, f"train.iterations={iterations}", *extra], "--resume")
        status = main(argv if (run / "last.pt").exists() else [a for a in argv if a != "--resume"])
        out, err = capsys.readouterr()
        return status, out, err

    assert start(A100, 1)[0] == 0  # auto on an A100: bf16
    assert load_checkpoint(run / "last.pt")["settings"]["precision"] == "bf16"
    before = hashes(run)
    status, _, err = start(T4, 2)  # reconnected to a T4, no override: one line, nothing changed
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "trains in bf16" in err and "--opt train.precision=fp16" in err
    assert hashes(run) == before
    status, out, err = start(T4, 2, "train.precision=fp16")  # the override: fp16, a new scaler
    assert status == 0, err
    assert out.count("\n") == 2 and "with changes: precision bf16 -> fp16;" in out
    assert "train.precision 'auto' -> 'fp16'" in out
    state = load_checkpoint(run / "last.pt")
    assert state["settings"]["precision"] == "fp16" and state["scaler"]["scale"] > 0
    status, out, err = start(A100, 3, "train.precision=fp16")  # back on an A100: fp16 kept
    assert status == 0, err
    first = out.splitlines()[0]  # the grown schedule is the only change
    assert first.endswith(
        "at iteration 2/3 with changes: train.iterations 2 -> 3 (recorded in config-history.jsonl)"
    )
    assert load_checkpoint(run / "last.pt")["scaler"]["scale"] > 0  # the scale went on
    status, out, err = start(A100, 4)  # auto again: an override back to bf16, scaler dropped
    assert status == 0, err
    assert "precision fp16 -> bf16" in out
    state = load_checkpoint(run / "last.pt")
    assert state["settings"]["precision"] == "bf16" and state["scaler"] == {}
    history = [json.loads(line) for line in open(run / "config-history.jsonl")]
    assert [h["settings"]["precision"] for h in history] == ["bf16", "fp16", "fp16", "bf16"]
    assert history[1]["changes"][0] == "precision bf16 -> fp16"


@pytest.mark.slow
def test_torchrun_ranks_resume_their_own_random_states_and_evaluate_rank_0s_model(
    minicity, tmp_path
):
    opts = tiny_opts(
        minicity, **{"train.iterations": 3, "train.micro_batch": 2, "train.checkpoint_every": 3}
    )
    straight = torchrun(*train_argv(tmp_path / "a", opts, "--device", "cpu"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    run = tmp_path / "b"
    stopped = torchrun(*train_argv(run, [*opts, "train.time_limit=1e-6"], "--device", "cpu"))
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "stopped at iteration 1/3" in stopped.stdout
    assert "torchrun --standalone --nproc_per_node=2 -m dgcn train" in stopped.stdout
    resumed = torchrun(*train_argv(run, opts, "--device", "cpu", "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(run / "last.pt")
    checkpoints_equal(a, b)
    assert len(a["rng_ranks"]) == len(b["rng_ranks"]) == 2
    ranks = [state["torch"] for state in a["rng_ranks"]]
    assert not torch.equal(ranks[0], ranks[1])  # each rank draws its own dropout masks
    for rank in range(2):  # and resumed its own stream: rank 1 as if never interrupted
        assert torch.equal(a["rng_ranks"][rank]["torch"], b["rng_ranks"][rank]["torch"]), rank
    assert losses(tmp_path / "a") == losses(run)

    # the evaluation at the end of training is the evaluation of the checkpoint it leaves
    output = tmp_path / "eval.json"
    evaluate = ["evaluate", "--checkpoint", str(run / "last.pt"), "--quiet", "--device", "cpu"]
    evaluate += ["--workers", "0", "--mode", "whole", "--output", str(output)]
    assert main(evaluate) == 0
    during = json.loads((run / "summary.json").read_text())["eval"]
    after = json.loads(output.read_text())
    assert during["miou"] == after["miou"] and during["per_class"] == after["per_class"]


@pytest.mark.cuda
def test_on_a_gpu_a_run_moves_from_fp16_to_bf16_and_keeps_its_own_gpus_random_state(
    minicity, tmp_path, capsys
):
    run = tmp_path / "run"

    def argv(iterations, precision, *flags):
        opts = tiny_opts(minicity, **{"train.iterations": iterations, "train.precision": precision})
        return train_argv(run, opts, "--device", "cuda", *flags)

    assert main(argv(1, "fp16")) == 0  # as on a T4
    state = load_checkpoint(run / "last.pt")
    assert state["settings"]["precision"] == "fp16" and state["scaler"]["scale"] > 0
    assert isinstance(state["rng"]["cuda"], torch.Tensor)  # this GPU's state only
    assert main(argv(2, "fp16", "--resume")) == 0  # fp16 on both sides: the scale goes on
    assert load_checkpoint(run / "last.pt")["scaler"]["scale"] > 0
    if torch.cuda.get_device_capability()[0] >= 8:  # then on an A100, in bf16: scaler dropped
        assert main(argv(3, "bf16", "--resume")) == 0
        state = load_checkpoint(run / "last.pt")
        assert state["settings"]["precision"] == "bf16" and state["scaler"] == {}
        assert "precision fp16 -> bf16" in capsys.readouterr().out
