"""The error contract through the CLI: one line on stderr, exit status 2, nothing lost."""

import gc
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import tiny_opts, train_argv

import dgcn.checkpoint
import dgcn.training.loop
from dgcn.checkpoint import load_checkpoint
from dgcn.cli import main
from dgcn.config import DATASET_CLASSES, REPO_DIR, load_config
from dgcn.datasets import make_minicity
from dgcn.datasets.labels import NUM_CLASSES
from dgcn.datasets.pascal_context import CLASS_NAMES_59, CLASS_NAMES_60
from dgcn.errors import ConfigError
from dgcn.evaluation import default_eval_output


def snapshot(folder):
    """Every file under ``folder`` with its content hash."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_one_line_error(capsys, status, match):
    out, err = capsys.readouterr()
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dgcn: error: "), err
    assert "Traceback" not in err and match in lines[0], err
    return out


BAD_VALUES = [
    ("train.iterations=-5", "train.iterations must be >= 1"),
    ("train.iterations=0", "train.iterations must be >= 1"),
    ("train.batch_size=0", "train.batch_size must be >= 1"),
    ("train.checkpoint_every=0", "train.checkpoint_every must be >= 1"),
    ("train.lr=-1", "train.lr must be > 0"),
    ("train.lr=nan", "train.lr in --opt must be a finite number"),
    ("train.loss=foo", "train.loss in --opt must be one of ohem, ce"),
    ("train.precision=fp8", "train.precision in --opt must be one of"),
    ("train.time_limit=soon", "train.time_limit must be seconds >= 0 or a duration such as"),
    ("train.time_limit=-60", "train.time_limit must be seconds >= 0"),
    ("eval.mode=bogus", "eval.mode in --opt must be one of whole, slide, multiscale"),
    ("eval.overlap=1.5", "eval.overlap must be in [0, 1)"),
    ("data.crop_size=[0,0]", "data.crop_size must be 2 sizes >= 1"),
    ("data.scales=[]", "data.scales must be a non-empty list"),
    ("data.workers=-1", "data.workers must be >= 0"),
    ("model.num_classes=5", "model.num_classes=5, but minicity has 19 classes"),
    ("model.overrides.graphs=bogus", "graphs='bogus' is not one of"),
    ("model.overrides.pooling=max", "pooling='max' is not one of avg, conv"),
    ("model.overrides.downsample=3", "downsample must be a power of two"),
    ("model.overrides.dilated=maybe", "dilated must be bool"),
]


@pytest.mark.parametrize("opt, match", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_config_values_stop_before_any_work(minicity, tmp_path, capsys, opt, match):
    before = snapshot(minicity)
    run = tmp_path / "run"
    status = main(train_argv(run, [*tiny_opts(minicity), opt]))
    assert_one_line_error(capsys, status, match)
    assert not run.exists()
    assert snapshot(minicity) == before


def test_reproduce_checks_every_row_before_the_first_trains(minicity, tmp_path, capsys):
    out = tmp_path / "out"
    opts = [*tiny_opts(minicity), "model.overrides.downsample=3"]
    status = main(["reproduce", "--rows", "baseline", "both", "--out", str(out), "--opt", *opts])
    assert_one_line_error(capsys, status, "downsample must be a power of two")
    assert not out.exists()


def test_scientific_notation_is_a_number_in_opt_and_in_yaml(tmp_path):
    assert load_config("minicity-cpu", ["train.lr=1e-3"]).train.lr == pytest.approx(1e-3)
    path = tmp_path / "c.yaml"
    path.write_text("base: minicity-cpu\ntrain:\n  weight_decay: 5e-4\n  lr: 1E-2\n")
    cfg = load_config(path)
    assert (cfg.train.weight_decay, cfg.train.lr) == (pytest.approx(5e-4), pytest.approx(1e-2))
    with pytest.raises(ConfigError, match="must be a number"):
        load_config("minicity-cpu", ["train.lr=fast"])


def test_overwrite_refuses_a_folder_that_is_not_a_run(minicity, tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "important.txt").write_text("keep me")
    status = main(train_argv(folder, tiny_opts(minicity), "--overwrite"))
    assert_one_line_error(capsys, status, "holds no dgcn run")
    assert (folder / "important.txt").read_text() == "keep me"


def test_run_dir_that_is_a_file(minicity, tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    status = main(train_argv(path, tiny_opts(minicity)))
    assert_one_line_error(capsys, status, "is a file")
    assert path.read_text() == "x"


def test_overwrite_keeps_the_previous_run_when_the_new_one_cannot_start(minicity, tmp_path, capsys):
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 1, "train.checkpoint_every": 1})
    assert main(train_argv(run, opts)) == 0
    before = snapshot(run)
    capsys.readouterr()
    missing = [*opts, f"data.root={tmp_path / 'typo'}", "data.dataset=cityscapes"]
    status = main(train_argv(run, missing, "--overwrite"))
    assert status == 2 and "Traceback" not in capsys.readouterr().err
    assert snapshot(run) == before


def test_a_diverging_run_stops_with_exit_2_and_keeps_only_finite_checkpoints(tmp_path, capsys):
    # 128x256 MiniCity (shared with the demo's end-to-end preset): lr 50 overflows the BN
    # statistics within a few iterations while the loss stays finite
    root = tmp_path / "mc"
    make_minicity(root, train=16, val=2, progress=False)
    run = tmp_path / "run"
    opts = [
        f"data.root={root}",
        "data.minicity_train=16",
        "data.minicity_val=2",
        "train.lr=50.0",
        "train.iterations=10",
        "train.checkpoint_every=1",
        "train.threads=1",
    ]
    status = main(train_argv(run, opts))
    out = assert_one_line_error(capsys, status, "the model diverged")
    assert "mIoU" not in out
    last = load_checkpoint(run / "last.pt")  # the last good one, from before the divergence
    assert 1 <= last["iteration"] < 10
    assert all(t.isfinite().all() for t in last["model"].values() if t.is_floating_point())
    assert not (run / "summary.json").exists()


# The two loader workers outlive the failed run until the garbage collector shuts them down,
# waiting 5 s for each: collected here, so that the 10 s are not billed to the next test.
@pytest.mark.slow
def test_a_corrupt_image_read_by_a_loader_worker_is_one_line(minicity, tmp_path, capsys):
    root = tmp_path / "mc"
    shutil.copytree(minicity, root)
    image = sorted((root / "leftImg8bit" / "train").rglob("*.png"))[0]
    image.write_bytes(b"not a png")
    opts = [*tiny_opts(root), "data.workers=2", "train.iterations=4"]
    status = main(train_argv(tmp_path / "run", opts))
    assert_one_line_error(capsys, status, image.name)
    gc.collect()


def test_an_output_path_under_a_file_is_one_line(minicity, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    status = main(train_argv(blocker / "run", tiny_opts(minicity)))
    assert_one_line_error(capsys, status, str(blocker))
    assert blocker.read_text() == "x"


def test_evaluate_prints_its_table_before_a_failed_write(minicity, tmp_path, capsys):
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 1, "train.checkpoint_every": 1})
    assert main(train_argv(run, opts)) == 0
    capsys.readouterr()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = ["evaluate", "--checkpoint", str(run / "last.pt"), "--quiet", "--workers", "0"]
    status = main([*argv, "--output", str(blocker / "eval.json")])
    out = assert_one_line_error(capsys, status, str(blocker))
    assert "mIoU" in out


def test_resume_removes_the_temp_file_of_a_killed_checkpoint_write(minicity, tmp_path):
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 1, "train.checkpoint_every": 1})
    assert main(train_argv(run, opts)) == 0
    stale = run / ".last.pt.12345.tmp"
    stale.write_bytes(b"half a checkpoint")
    keep = run / ".notes.tmp"  # not of the pattern: not ours to delete
    keep.write_text("x")
    longer = tiny_opts(minicity, **{"train.iterations": 2, "train.checkpoint_every": 1})
    assert main(train_argv(run, longer, "--resume")) == 0
    assert not stale.exists() and keep.exists()


def test_resume_refuses_a_changed_config_unless_asked_and_keeps_the_history(
    minicity, tmp_path, capsys
):
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 1, "train.checkpoint_every": 1})
    assert main(train_argv(run, opts)) == 0
    before = snapshot(run)
    capsys.readouterr()
    changed = [*opts, "train.batch_size=2", "model.overrides.downsample=4"]
    status = main(train_argv(run, changed, "--resume"))
    assert_one_line_error(capsys, status, "model.overrides.downsample, train.batch_size")
    assert snapshot(run) == before
    longer = tiny_opts(minicity, **{"train.iterations": 2, "train.checkpoint_every": 1})
    assert main(train_argv(run, longer, "--resume")) == 0  # growing iterations is resuming
    smaller = [*longer, "train.iterations=3", "train.batch_size=2"]
    assert main(train_argv(run, smaller, "--resume", "--allow-config-change")) == 0
    history = [json.loads(line) for line in (run / "config-history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in history] == [0, 1, 2]
    assert [h["config"]["train"]["batch_size"] for h in history] == [4, 4, 2]


COMMITTED = "experiments/checkpoints/minicity-dgcnet-paper.pt"
OTHER_COMMANDS = [
    (["summary", "--model", "dgcnet_paper_micro", "--size", "0", "0"], "--size must be"),
    (["summary", "--model", "nope"], "unknown model 'nope'"),
    (["evaluate", "--checkpoint", COMMITTED, "--mode", "slide", "--tile", "0"], "eval.tile"),
    (["evaluate", "--checkpoint", COMMITTED, "--overlap", "2"], "eval.overlap must be in"),
    (["evaluate", "--checkpoint", COMMITTED, "--scale-tile", "0"], "eval.scale_tile must be"),
    (["evaluate", "--checkpoint", COMMITTED, "--precision", "fp16", "--device", "cpu"], "CUDA"),
    (["predict", "--checkpoint", COMMITTED, "--images", "missing.jpg"], "not found"),
    (["predict", "--checkpoint", COMMITTED, "--images", "README.md"], "is it a PNG or JPEG"),
    (["make-minicity", "--out", "OUT", "--train", "-3"], "must be >= 0"),
    (["check-data", "--root", "OUT/none"], "does not exist"),
    (["check-data", "--dataset", "pascal-context", "--root", "OUT/none"], "does not exist"),
    (["convert-pascal-context", "--root", "OUT/none"], "does not exist"),
    (["export", "--checkpoint", "missing.pt", "--out", "OUT/x.pt"], "not found"),
]


@pytest.mark.parametrize(
    "argv, match", OTHER_COMMANDS, ids=[" ".join(a[:2]) for a, _ in OTHER_COMMANDS]
)
def test_every_command_keeps_the_contract(tmp_path, capsys, argv, match):
    before = snapshot(REPO_DIR / "experiments")
    argv = [str(tmp_path / a[4:]) if a.startswith("OUT/") else a for a in argv]
    argv = [str(tmp_path / "mc") if a == "OUT" else a for a in argv]
    argv = [str(REPO_DIR / a) if a in (COMMITTED, "README.md") else a for a in argv]
    assert_one_line_error(capsys, main(argv), match)
    assert snapshot(REPO_DIR / "experiments") == before
    assert not any(tmp_path.iterdir())


def test_predict_reads_a_jpeg_photo(tmp_path, capsys):
    from PIL import Image

    photo = tmp_path / "street.jpg"
    Image.new("RGB", (200, 100), (90, 90, 95)).save(photo)
    out = tmp_path / "out"
    argv = ["predict", "--checkpoint", str(REPO_DIR / COMMITTED), "--images", str(photo)]
    assert main([*argv, "--out", str(out)]) == 0
    assert (out / "street_pred.png").is_file() and (out / "street_overlay.png").is_file()


def test_a_failed_start_leaves_no_folder_behind(tmp_path, capsys):
    run = tmp_path / "run"
    argv = train_argv(run, [f"data.root={tmp_path / 'typo'}", "data.dataset=cityscapes"])
    assert_one_line_error(capsys, main(argv), "does not exist")
    assert not run.exists()


def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_last_one(
    minicity, tmp_path, capsys, monkeypatch
):
    import errno

    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 1, "train.checkpoint_every": 1})
    assert main(train_argv(run, opts)) == 0
    before = (run / "last.pt").read_bytes()
    capsys.readouterr()

    def full_disk(state, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(dgcn.checkpoint.torch, "save", full_disk)
    longer = tiny_opts(minicity, **{"train.iterations": 2, "train.checkpoint_every": 1})
    status = main(train_argv(run, longer, "--resume"))
    assert_one_line_error(capsys, status, "No space left on device")
    assert (run / "last.pt").read_bytes() == before
    assert not list(run.glob(".*.tmp"))


def test_evaluate_never_writes_into_the_committed_checkpoints_folder(tmp_path):
    committed = REPO_DIR / COMMITTED
    identity = {"split": "val", "mode": "whole"}
    default = Path(default_eval_output(committed, identity))
    assert default.parent == Path("runs/evaluate")
    assert default.name.startswith("eval-minicity-dgcnet-paper-val-whole-")
    run = tmp_path / "run" / "last.pt"
    default = Path(default_eval_output(run, identity))
    assert default.parent == run.parent and default.name.startswith("eval-last-val-whole-")


def test_the_config_gate_knows_the_datasets_class_count():
    assert DATASET_CLASSES == {
        "cityscapes": NUM_CLASSES,
        "minicity": NUM_CLASSES,
        "pascal-context": len(CLASS_NAMES_59),
        "pascal-context-60": len(CLASS_NAMES_60),
    }


@pytest.mark.slow
def test_an_unreadable_last_pt_resumes_from_previous_pt_or_is_one_line(minicity, tmp_path, capsys):
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 2, "train.checkpoint_every": 1})
    assert main(train_argv(run, opts)) == 0
    last, previous = run / "last.pt", run / "previous.pt"
    good = previous.read_bytes()
    assert load_checkpoint(previous)["iteration"] == 1
    longer = tiny_opts(minicity, **{"train.iterations": 3, "train.checkpoint_every": 1})
    last.write_bytes(b"cut off by a disconnect")
    previous.write_bytes(b"\x00" * 10)
    capsys.readouterr()
    before = snapshot(run)
    status = main(train_argv(run, longer, "--resume"))
    assert_one_line_error(capsys, status, "neither last.pt nor previous.pt can be read")
    assert snapshot(run) == before

    previous.write_bytes(good)
    assert main(train_argv(run, longer, "--resume")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{last} cannot be read (") and "\n" not in out[0]
    assert out[0].endswith("resuming from previous.pt at iteration 1")
    assert out[1].startswith(f"resuming {run} at iteration 1/3")
    assert load_checkpoint(last)["iteration"] == 3
    assert load_checkpoint(previous)["iteration"] == 2  # the damaged file was not kept
    history = (run / "config-history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["checkpoint"] == "previous.pt"

    previous.unlink()
    last.write_bytes(b"damaged")
    status = main(train_argv(run, longer, "--resume"))
    assert_one_line_error(capsys, status, "there is no previous.pt beside it to fall back to")


def test_a_gpu_out_of_memory_is_one_line_naming_a_smaller_micro_batch(
    minicity, tmp_path, capsys, monkeypatch
):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(dgcn.training.loop, "_wrap", lambda model, cfg, info: out_of_memory)
    status = main(train_argv(tmp_path / "run", tiny_opts(minicity)))
    expected = (
        "out of GPU memory at iteration 1 with micro-batch 4 in fp32 on this CPU; run the same "
        "command with --overwrite --opt train.micro_batch=2 (more accumulation steps, the "
        "batch stays 4)"
    )
    assert_one_line_error(capsys, status, expected)


def test_a_config_for_a_dgcn_checkpoint_is_refused_not_ignored(tmp_path, capsys):
    # --config is for the authors' .pth; a dgcn checkpoint carries its own config
    checkpoint = Path(__file__).resolve().parent.parent / "experiments/checkpoints"
    argv = ["evaluate", "--checkpoint", str(checkpoint / "minicity-dgcnet-paper.pt")]
    out = tmp_path / "eval.json"
    assert main([*argv, "--config", "cityscapes-paper", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--config cityscapes-paper is for the authors' checkpoint" in err[0]
    assert not out.exists()


MODEL_KEYS = [
    (
        ["model.overrides.grpahs=both"],
        "model: unknown model option 'grpahs'; did you mean 'graphs'?",
    ),
    (
        ["model.overrides.graphs=spatial"],
        "model: model option graphs='spatial' is not one of both,",
    ),
    (["model.name=dgcnet_paper_mikro"], "model: unknown model 'dgcnet_paper_mikro'; did you mean"),
    (["model.overrides.head_channels=6"], "head_channels must be a multiple of 4, got 6"),
]


@pytest.mark.parametrize("opts, match", MODEL_KEYS, ids=[m[0][0] for m in MODEL_KEYS])
def test_load_config_refuses_a_bad_model_key_in_one_config_error(opts, match):
    # where every other section is checked: a config held in a notebook is valid or refused
    with pytest.raises(ConfigError) as refused:
        load_config("minicity-cpu", opts)
    assert match in str(refused.value) and "\n" not in str(refused.value)


def test_num_classes_follows_the_dataset_unless_set():
    cfg = load_config("minicity-cpu")
    assert cfg.model.num_classes is None and cfg.num_classes == DATASET_CLASSES["minicity"]
    pascal = load_config("pascal-context-official")
    assert pascal.model.num_classes is None and pascal.num_classes == 59
    sixty = load_config("pascal-context-official", ["data.dataset=pascal-context-60"])
    assert sixty.num_classes == 60  # derived: no preset number to contradict
    assert load_config("minicity-cpu", ["model.num_classes=19"]).num_classes == 19  # set
    with pytest.raises(ConfigError, match="set model.num_classes=19"):
        load_config("minicity-cpu", ["model.num_classes=59"])


def test_a_run_with_the_class_count_written_out_is_the_same_config():
    # runs and committed models saved before model.num_classes could be left unset hold 19
    from dgcn.training.rundir import changed_keys

    written = load_config("minicity-cpu", ["model.num_classes=19"])
    assert changed_keys(written, load_config("minicity-cpu")) == {}
    other = load_config("pascal-context-official", ["model.num_classes=59"])
    assert "model.num_classes" not in changed_keys(other, load_config("pascal-context-official"))
