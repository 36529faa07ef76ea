"""Damaged files and faults end in one line, exit status 2, nothing changed (issue 29).

A command that could crash the process (a segmentation fault in a decoder) runs in a
subprocess, so that a regression fails its test instead of killing pytest; the others run
in-process through :func:`dgcn.cli.main`.
"""

import io
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import dgcn, hashes, tiny_opts, train_argv
from PIL import Image

from dgcn.cli import main
from dgcn.config import load_config
from dgcn.datasets import make_minicity
from dgcn.datasets.cityscapes import read_image
from dgcn.datasets.png_check import png_problem
from dgcn.errors import ConfigError, DatasetError

MODEL = Path(__file__).parents[1] / "experiments/checkpoints/minicity-dgcnet-paper.pt"


def fails(argv, capsys) -> str:
    """The one line ``dgcn ARGV`` printed when it failed (exit status 2), run in-process."""
    capsys.readouterr()
    status = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("dgcn: error: "), (status, err)
    return err.strip()


def one_error_line(result) -> str:
    """The only line a failed command printed: on stderr, exit status 2, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dgcn: error: "), result.stderr[-2000:]
    return lines[0]


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk of a PNG."""
    pos, found = 8, []
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        found.append((kind, png[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return found


def assemble(parts: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG from (type, data) chunks, each with its right CRC."""
    out = b"\x89PNG\r\n\x1a\n"
    for kind, data in parts:
        out += struct.pack(">I", len(data)) + kind + data
        out += struct.pack(">I", zlib.crc32(kind + data))
    return out


def with_header(png: bytes, width: int | None = None, height: int | None = None) -> bytes:
    """The PNG with its IHDR's size changed (and its CRC made right again)."""
    parts = chunks(png)
    w, h = struct.unpack(">II", parts[0][1][:8])
    header = struct.pack(">II", width or w, height or h) + parts[0][1][8:]
    return assemble([(b"IHDR", header), *parts[1:]])


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def made_png(array: np.ndarray, interlace: bool = False, bad_row: int | None = None) -> bytes:
    """An 8-bit RGB PNG of ``array`` written here, Adam7-interlaced or not (PIL writes no
    interlaced PNG), filter type 0 on every row but ``bad_row``, which gets the unknown 7."""
    passes = ((0, 8, 0, 8), (0, 8, 4, 8), (4, 8, 0, 4), (0, 4, 2, 4), (2, 4, 0, 2), (0, 2, 1, 2))
    passes = (*passes, (1, 2, 0, 1)) if interlace else ((0, 1, 0, 1),)
    rows = []
    for row0, row_step, col0, col_step in passes:
        rows += [row.tobytes() for row in array[row0::row_step, col0::col_step] if row.size]
    raw = b"".join(bytes([7 if i == bad_row else 0]) + row for i, row in enumerate(rows))
    height, width = array.shape[:2]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, int(interlace))
    return assemble([(b"IHDR", header), (b"IDAT", zlib.compress(raw)), (b"IEND", b"")])


@pytest.fixture()
def photo():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)


def test_png_problem_finds_each_damage_that_crashes_libpng(photo):
    sound = png_bytes(photo)
    assert png_problem(sound) is None
    assert png_problem(png_bytes(photo[..., 0])) is None  # a grey label
    assert png_problem(made_png(photo)) is None
    assert png_problem(made_png(photo, interlace=True)) is None
    parts = chunks(sound)
    idat = next(i for i, (kind, _) in enumerate(parts) if kind == b"IDAT")
    stream = parts[idat][1]
    damaged = {
        "its header declares 38 rows of 53 pixels but its data holds 37": with_header(
            sound, height=38
        ),
        "unknown filter type": made_png(photo, bad_row=20),
        "CRC error in its IDAT": sound[:-30] + bytes([sound[-30] ^ 1]) + sound[-29:],
        "incorrect data check": assemble(
            [*parts[:idat], (b"IDAT", stream[:-1] + bytes([stream[-1] ^ 1])), *parts[idat + 1 :]]
        ),
        "no IEND": sound[:-12],
        "its header declares 37 rows of 53 pixels but its data is shorter": with_header(
            made_png(photo[:36], interlace=True), height=37
        ),
    }
    for reason, data in damaged.items():
        assert reason in (png_problem(data) or ""), (reason, png_problem(data))


def test_sound_interlaced_png_decodes_as_written(tmp_path, photo):
    path = tmp_path / "x_leftImg8bit.png"
    path.write_bytes(made_png(photo, interlace=True))
    assert torch.equal(read_image(path), torch.from_numpy(photo).permute(2, 0, 1))


@pytest.fixture()
def damaged_city(tmp_path):
    """The MiniCity of ``tiny_opts`` whose first train image declares one row more than its
    data holds."""
    root = tmp_path / "minicity"
    make_minicity(root, train=8, val=3, height=64, width=128, progress=False)
    image = sorted((root / "leftImg8bit" / "train").rglob("*.png"))[0]
    image.write_bytes(with_header(png_bytes(np.asarray(Image.open(image))), height=65))
    return root, image


def test_damaged_png_in_check_data_train_and_predict_is_one_line(tmp_path, damaged_city):
    root, image = damaged_city
    before = hashes(tmp_path)
    run, out = tmp_path / "run", str(tmp_path / "out")
    commands = {
        "check-data": ["check-data", "--root", str(root), "--quiet"],
        "train": train_argv(run, tiny_opts(root, **{"train.iterations": 2})),
        "predict": ["predict", "--checkpoint", str(MODEL), "--images", str(image), "--out", out],
    }
    for name, argv in commands.items():
        line = one_error_line(dgcn(*argv))
        declares = "its header declares 65 rows of 128 pixels but its data holds 64"
        assert f"{image}: it is a damaged PNG ({declares})" in line, name
        assert "download" in line, line
    assert not (tmp_path / "out").exists()
    assert {k: v for k, v in hashes(tmp_path).items() if not k.startswith(str(run))} == before


@pytest.fixture(scope="module")
def trained(minicity, tmp_path_factory):
    """A run of two iterations on the tiny MiniCity, and its opts."""
    opts = tiny_opts(minicity, **{"train.iterations": 2})
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(train_argv(run, opts)) == 0
    return run, opts


def copy_run(trained, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    return run


def test_resume_from_an_exported_file_is_refused(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    assert main(["export", "--checkpoint", str(run / "last.pt"), "--out", str(run / "x.pt")]) == 0
    (run / "x.pt").replace(run / "last.pt")
    before = hashes(tmp_path)
    opts = [*trained[1][:-1], "train.iterations=4"]
    line = fails(train_argv(run, opts, "--resume"), capsys)
    assert f"{run / 'last.pt'} holds weights only" in line and "--overwrite" in line, line
    assert hashes(tmp_path) == before


def test_a_checkpoint_without_its_config_is_named(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    state = torch.load(run / "last.pt", weights_only=True)
    del state["config"]
    torch.save(state, run / "last.pt")
    before = hashes(tmp_path)
    line = fails(["evaluate", "--checkpoint", run / "last.pt", "--quiet"], capsys)
    assert f"checkpoint {run / 'last.pt'} has no valid 'config' entry" in line, line
    line = fails(train_argv(run, trained[1], "--resume"), capsys)
    assert "has no valid 'config' entry" in line, line
    assert hashes(tmp_path) == before


def test_a_config_file_that_is_not_utf8_is_named(tmp_path, capsys):
    config = tmp_path / "x.yaml"
    config.write_bytes(b"name: x\nmodel:\n  name: caf\xe9\n")
    line = fails(["train", "--config", config, "--run-dir", tmp_path / "run"], capsys)
    assert (
        line == f"dgcn: error: {config} is not UTF-8 text (byte 0xe9 on line 3); save it as UTF-8"
    )
    assert sorted(tmp_path.iterdir()) == [config]


def test_a_metrics_log_that_is_not_utf8_stops_a_resume_before_any_write(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path)
    with open(run / "metrics.jsonl", "ab") as log:
        log.write(b'{"iteration": 2, "loss": 1.0, "note": "\xff"}\n')
    before = hashes(tmp_path)
    opts = [*trained[1][:-1], "train.iterations=4"]
    line = fails(train_argv(run, opts, "--resume"), capsys)
    lines = (run / "metrics.jsonl").read_bytes().count(b"\n")
    assert f"{run / 'metrics.jsonl'} is not UTF-8 text (byte 0xff on line {lines})" in line
    assert "delete that line" in line
    assert hashes(tmp_path) == before


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.seed=1180591620717411303424", "train.seed must be >= 0 and <= 4294967295"),
        ("train.seed=-1", "train.seed must be >= 0 and <= 4294967295, got -1"),
        ("train.batch_size=1099511627776", "train.batch_size must be >= 1 and <= 4096"),
        ("train.micro_batch=5000", "train.micro_batch must be >= 0 and <= 4096"),
        (
            "train.iterations=1180591620717411303424",
            "train.iterations must be >= 1 and <= 1000000000",
        ),
        ("data.minicity_seed=-3", "data.minicity_seed must be >= 0 and <= 4294967295"),
        ("data.workers=100000", "data.workers must be >= 0 and <= 256"),
        ("data.minicity_size=[99999,64]", "data.minicity_size must be 2 sizes >= 16 and <= 8192"),
    ],
)
def test_config_checks_bound_seeds_batch_sizes_and_counts(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("minicity-cpu", [override])


@pytest.mark.parametrize("seed", ["1180591620717411303424", "-1"])
def test_train_with_a_huge_or_negative_seed_is_one_line(minicity, tmp_path, capsys, seed):
    run = tmp_path / "runs" / "run"
    line = fails(train_argv(run, [*tiny_opts(minicity), f"train.seed={seed}"]), capsys)
    assert f"train.seed must be >= 0 and <= 4294967295, got {seed}" in line, line
    assert not (tmp_path / "runs").exists()


def test_a_huge_seed_in_a_yaml_config_is_refused(tmp_path, capsys):
    config = tmp_path / "x.yaml"
    config.write_text("base: minicity-cpu\ntrain:\n  seed: 1180591620717411303424\n")
    line = fails(["train", "--config", config, "--run-dir", tmp_path / "run"], capsys)
    assert "train.seed must be >= 0 and <= 4294967295, got 1180591620717411303424" in line
    assert sorted(tmp_path.iterdir()) == [config]


def parser_refuses(argv, capsys) -> str:
    """The one line with which the argument parser refused ``dgcn ARGV`` (exit status 2)."""
    line = fails(argv, capsys)
    assert line.startswith("dgcn: error: "), line
    return line


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["evaluate", "--checkpoint", MODEL, "--workers", "-1"],
            "--workers must be >= 0 and <= 256",
        ),
        (["evaluate", "--checkpoint", MODEL, "--workers", "x"], "must be a whole number, got 'x'"),
        (["predict", "--checkpoint", MODEL, "--count", "0"], "--count must be >= 1, got 0"),
        (["summary", "--batch", "0"], "--batch must be >= 1 and <= 4096, got 0"),
        (["summary", "--classes", "-2"], "--classes must be >= 1, got -2"),
        (["summary", "--size", "8", "64"], "--size must be >= 32 and <= 8192, got 8"),
        (["reproduce", "--seeds", "1", "-4"], "--seeds must be >= 0 and <= 4294967295, got -4"),
        (["make-minicity", "--train", "-1"], "--train must be >= 0, got -1"),
        (["make-minicity", "--test", "-1"], "--test must be >= 0, got -1"),
        (["make-minicity", "--size", "8", "8"], "--size must be >= 16 and <= 8192, got 8"),
    ],
)
def test_every_count_option_refuses_values_out_of_range(tmp_path, capsys, argv, message):
    line = parser_refuses(argv, capsys)
    assert message in line and "see `dgcn " in line, line


def test_make_minicity_with_a_negative_seed_creates_nothing(tmp_path, capsys):
    out = tmp_path / "new" / "minicity"
    line = parser_refuses(["make-minicity", "--out", out, "--seed", "-1"], capsys)
    assert "--seed must be >= 0 and <= 4294967295, got -1" in line
    with pytest.raises(DatasetError, match="the seed must be an integer from 0 to 4294967295"):
        make_minicity(out, train=1, val=0, seed=-1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_make_minicity_that_fails_midway_removes_only_what_it_created(tmp_path, monkeypatch):
    import dgcn.datasets.minicity.files as files

    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return scene(*args)

    scene = files.generate_scene
    monkeypatch.setattr(files, "generate_scene", failing)
    out = tmp_path / "new" / "minicity"
    with pytest.raises(OSError):
        make_minicity(out, train=4, val=1, height=32, width=64, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its new parent
    kept = tmp_path / "kept"
    (kept / "leftImg8bit").mkdir(parents=True)
    (kept / "notes.txt").write_text("mine")
    calls.clear()
    with pytest.raises(OSError):
        make_minicity(kept, train=4, val=1, height=32, width=64, progress=False, overwrite=True)
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*")) == [
        "leftImg8bit",
        "notes.txt",
    ]
