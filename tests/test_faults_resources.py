"""Faults of the machine (memory, disk), of atomic writes and of the error line itself
(torchrun, the notebooks' setup cell offline): one line, exit status 2, nothing changed
(issue 29). Helpers are test_faults.py's."""

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_opts, train_argv
from PIL import Image
from test_faults import MODEL, assemble, fails, one_error_line, png_bytes

ALLOCATION = (
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 1216000000 bytes. Error code 12 (Cannot allocate memory)"
)


def test_a_photo_too_large_for_the_memory_is_named_with_its_size(tmp_path, capsys, monkeypatch):
    import dgcn.viz.prediction_pngs as pngs

    def no_memory(*args):
        raise RuntimeError(ALLOCATION)

    monkeypatch.setattr(pngs, "predict", no_memory)
    photo = tmp_path / "street.png"
    photo.write_bytes(png_bytes(np.zeros((40, 60, 3), np.uint8)))
    out = tmp_path / "out" / "street"
    line = fails(["predict", "--checkpoint", MODEL, "--images", photo, "--out", out], capsys)
    assert line == (
        f"dgcn: error: out of memory predicting {photo} (60x40, 0.0 megapixels: 1.1 GiB more "
        "could not be allocated); downscale it (e.g. to 2048 pixels on its longer side), or use "
        "a machine with more memory"
    )
    assert sorted(tmp_path.iterdir()) == [photo]  # neither out/ nor out/street


def test_a_photo_whose_header_declares_too_many_pixels_is_refused_before_decoding(tmp_path, capsys):
    header = struct.pack(">IIBBBBB", 11000, 10000, 8, 2, 0, 0, 0)
    photo = tmp_path / "huge.png"
    photo.write_bytes(assemble([(b"IHDR", header), (b"IDAT", zlib.compress(b"")), (b"IEND", b"")]))
    line = fails(["predict", "--checkpoint", MODEL, "--images", photo, "--out", tmp_path], capsys)
    assert f"image {photo} is 11000x10000 (110 megapixels), more than the 100 megapixels" in line


def test_out_of_memory_anywhere_else_is_one_line(capsys, monkeypatch):
    import dgcn.models.profile as profile

    def no_memory(*args):
        raise MemoryError

    monkeypatch.setattr(profile, "model_summary", no_memory)
    line = fails(["summary", "--size", "64", "64"], capsys)
    assert line.startswith("dgcn: error: out of memory (memory could not be allocated); use ")


MEMORY_CAP = """
import resource, sys
import torch
from dgcn.cli import main
size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + 3 * 2**29, resource.RLIM_INFINITY))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_16_megapixel_photo_under_a_memory_cap_is_one_line(tmp_path):
    """A real allocation failure: 1.5 GiB more than the process has after importing torch."""
    photo = tmp_path / "photo.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (4000, 4000, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "out"
    argv = ["predict", "--checkpoint", str(MODEL), "--images", str(photo), "--out", str(out)]
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_CAP, *argv], capture_output=True, text=True, timeout=600
    )
    line = one_error_line(result)
    assert f"out of memory predicting {photo} (4000x4000, 16.0 megapixels" in line, line
    assert not out.exists()


@pytest.mark.parametrize("fault", ["oserror", "torch"])
def test_disk_full_while_writing_last_pt_keeps_the_previous_one(
    minicity, tmp_path, capsys, monkeypatch, fault
):
    """The second checkpoint meets a full disk: half of it is written, then the write fails as
    the OS says it (ENOSPC) or as torch's writer does (a RuntimeError without the cause)."""
    import errno
    import shutil

    import dgcn.checkpoint as checkpoint

    save, calls = torch.save, []

    def full_disk(obj, path):
        calls.append(path)
        if len(calls) == 1:
            return save(obj, path)
        Path(path).write_bytes(b"half a checkpoint")
        if fault == "oserror":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 9 vs 7")

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(torch, "save", full_disk)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 4, "train.checkpoint_every": 2})
    line = fails(train_argv(run, opts), capsys)
    last = run / "last.pt"
    assert line.startswith(f"dgcn: error: cannot write {last}: No space left on device ")
    assert f"(0 MiB free in {run}); {last} is kept as it was" in line, line
    newest = f"resume from the newest intact checkpoint, {last} at iteration 2 (iterations 3-4"
    assert newest in line and "not saved), with `dgcn train --config" in line, line
    assert ".tmp" not in line
    assert torch.load(last, weights_only=True)["iteration"] == 2  # intact
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_a_failed_atomic_write_names_the_destination_not_the_temporary_file(tmp_path):
    import errno

    from dgcn.fileio import atomic_path

    target = tmp_path / "results.json"
    with pytest.raises(OSError) as info:
        with atomic_path(target) as tmp:
            tmp.write_text("{")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert info.value.filename == str(target) and ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_export_onto_a_full_disk_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    import errno

    def full_disk(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(torch, "save", full_disk)
    out = tmp_path / "model.pt"
    line = fails(["export", "--checkpoint", MODEL, "--out", out], capsys)
    assert line.startswith(f"dgcn: error: cannot write {out}: No space left on device (")
    assert f"no {out.name} was written" in line and ".tmp" not in line, line
    assert list(tmp_path.iterdir()) == []


def test_under_torchrun_an_error_every_process_meets_is_printed_once(tmp_path, monkeypatch):
    """A real launch of two processes (gloo, CPU): both meet the unknown preset."""
    from helpers import torchrun

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the processes' marker file goes here
    result = torchrun("train", "--config", "no-such-preset", "--run-dir", str(tmp_path / "run"))
    ours = [line for line in result.stderr.splitlines() if line.startswith("dgcn: ")]
    assert ours == [ours[0]] and "unknown config 'no-such-preset'" in ours[0], result.stderr
    assert not (tmp_path / "run").exists()
    assert len(list(tmp_path.glob("dgcn-error-*"))) == 1  # claimed once, by the first


def test_print_error_under_torchrun_prints_each_line_once(tmp_path, monkeypatch, capsys):
    import tempfile

    from dgcn.cli_args import print_error

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "2")
    for _ in range(2):  # two processes of one launch (one parent) meet the same error
        print_error("dgcn: error: the same for every rank")
    print_error("dgcn: error: a damaged image only rank 1 read")  # another line: printed
    assert capsys.readouterr().err.splitlines() == [
        "dgcn: error: the same for every rank",
        "dgcn: error: a damaged image only rank 1 read",
    ]
    monkeypatch.setenv("WORLD_SIZE", "1")  # one process: always printed, nothing written
    marker_count = len(list(tmp_path.iterdir()))
    print_error("dgcn: error: the same for every rank")
    assert capsys.readouterr().err == "dgcn: error: the same for every rank\n"
    assert len(list(tmp_path.iterdir())) == marker_count


# The notebooks' setup cell on Colab with no network: both clones fail (git has printed why);
# the cell must stop in one line, without a traceback, before it installs anything.
OFFLINE_HARNESS = r"""
import importlib, subprocess, sys, types
from pathlib import Path

repo, calls = Path(sys.argv[1]), []
def offline_run(args, **kwargs):
    calls.append([str(a) for a in args])
    if kwargs.get("check"):
        raise subprocess.CalledProcessError(128, args)
    return types.SimpleNamespace(returncode=128)
subprocess.run = offline_run
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != repo]
assert importlib.util.find_spec("dgcn") is None
sys.modules["google.colab"] = types.ModuleType("google.colab")
try:
    exec(compile(Path(sys.argv[2]).read_text(), "setup-cell", "exec"), {})
finally:
    print([c[:2] for c in calls])
"""


def test_the_setup_cell_offline_stops_in_one_line(tmp_path):
    from test_notebooks import NOTEBOOKS, SOURCES, setup_cell

    cell = tmp_path / "setup_cell.py"
    cell.write_text(setup_cell(SOURCES[0]))
    args = [sys.executable, "-c", OFFLINE_HARNESS, str(NOTEBOOKS.parent.resolve()), str(cell)]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == (
        "the clone failed (offline?): connect, or open the notebook in a checkout"
    )
    assert done.stdout.strip() == "[['git', 'clone'], ['git', 'clone']]"  # no pip install
    assert sorted(p.name for p in tmp_path.iterdir()) == ["setup_cell.py"]
