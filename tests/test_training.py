"""Training engine: losses, schedule, overfit, exact resume after SIGKILL, torchrun, errors."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_opts, train_argv
from PIL import Image

from dgcn.checkpoint import load_checkpoint
from dgcn.cli import main
from dgcn.config import load_config
from dgcn.datasets import generate_scene
from dgcn.datasets.labels import id_to_train_id_lut
from dgcn.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD
from dgcn.errors import ConfigError
from dgcn.models import build_model
from dgcn.training.losses import SegmentationLoss, ohem_mask
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


def dgcn(*args, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dgcn", *args], capture_output=True, text=True, env=env, **kwargs
    )


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


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
    assert a["iteration"] == b["iteration"] == 12
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for buffer_a, buffer_b in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(buffer_a["momentum_buffer"], buffer_b["momentum_buffer"])
    assert a["scheduler"] == b["scheduler"]
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


def test_predict_and_export_write_pngs(minicity, tmp_path, capsys):
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 2})
    assert main(train_argv(run, opts)) == 0
    out = tmp_path / "pred"
    assert (
        main(["predict", "--checkpoint", str(run / "last.pt"), "--count", "2", "--out", str(out)])
        == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert "grid.png" in names and sum(n.endswith("_pred.png") for n in names) == 2
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
