"""Bad inputs a new user may give (issue 29): each ends in one line on stderr naming the cause
and the fix, exit status 2, every file that existed before unchanged.

This file: configs (duplicate keys, ``base:`` beside its file, alias bombs, run names),
checkpoints with non-finite weights, ``predict --images`` of one name, and the torchrun
environment. tests/test_bad_outputs.py: what ``evaluate`` writes, and the run folder's lock.
"""

import math

import pytest
from helpers import tiny_opts, train_argv
from test_errors import COMMITTED, assert_one_line_error, snapshot

from dgcn.checkpoint import load_checkpoint, load_for_inference, save_checkpoint
from dgcn.cli import main
from dgcn.config import REPO_DIR, load_config
from dgcn.errors import CheckpointError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- configs -------------------------------------------------------------------------------


def test_a_key_written_twice_is_refused_naming_it_and_its_lines(tmp_path, capsys):
    config = write(
        tmp_path / "dup.yaml", "base: minicity-cpu\ntrain:\n  lr: 0.01\n  iterations: 2\n  lr: 5\n"
    )
    status = main(["plan", "--config", str(config), "--gpu", "T4"])
    assert_one_line_error(capsys, status, "key 'lr' is written twice")
    with pytest.raises(Exception, match="on lines 3 and 5"):
        load_config(config)


def test_a_merge_key_is_not_a_duplicate(tmp_path):
    config = write(
        tmp_path / "merge.yaml",
        "base: minicity-cpu\nmodel:\n  overrides: &o {downsample: 8}\n"
        "train: {lr: 0.02, iterations: 3}\n",
    )
    cfg = load_config(config)
    assert (cfg.train.lr, cfg.train.iterations, cfg.model.overrides) == (0.02, 3, {"downsample": 8})


def test_a_relative_base_is_read_beside_the_file_that_names_it(tmp_path, monkeypatch):
    write(tmp_path / "cfg" / "parent.yaml", "base: minicity-cpu\ntrain:\n  lr: 0.02\n")
    write(tmp_path / "cfg" / "sibling.yaml", "base: minicity-cpu\ntrain:\n  lr: 0.03\n")
    child = write(tmp_path / "cfg" / "sub" / "child.yaml", "base: ../parent.yaml\n")
    by_name = write(tmp_path / "cfg" / "by-name.yaml", "base: sibling\n")
    decoy = write(tmp_path / "elsewhere" / "parent.yaml", "base: minicity-cpu\ntrain:\n  lr: 9\n")
    monkeypatch.chdir(decoy.parent)  # a file of that name in the working directory: not read
    assert load_config(child).train.lr == 0.02
    assert load_config(by_name).train.lr == 0.03
    assert load_config(REPO_DIR / "experiments/configs/minicity-backbone.yaml").data.dataset == (
        "minicity"  # the presets' own base names still find the presets
    )


def test_a_missing_relative_base_names_where_it_was_looked_for(tmp_path, capsys):
    child = write(tmp_path / "cfg" / "child.yaml", "base: ./nope.yaml\n")
    status = main(["plan", "--config", str(child), "--gpu", "T4"])
    assert_one_line_error(capsys, status, str(tmp_path / "cfg" / "nope.yaml"))


def alias_bomb(levels=7, width=9) -> str:
    """A "billion laughs": each level's list holds ``width`` aliases of the level before, so
    a few hundred bytes stand for width ** levels strings; ``name`` refers to the last one."""
    lines = ["model:", "  overrides:", "    l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"    l{level}: &l{level} [{refs}]")
    return "\n".join([*lines, f"name: *l{levels - 1}", ""])


def test_an_alias_bomb_is_refused_in_one_short_line(tmp_path, capsys):
    text = alias_bomb()
    assert len(text) < 800
    config = write(tmp_path / "bomb.yaml", text)
    status = main(["plan", "--config", str(config), "--gpu", "T4"])
    assert_one_line_error(capsys, status, "expands to more than")
    few = write(tmp_path / "few.yaml", alias_bomb(levels=2, width=3))  # 12 values: allowed
    status = main(["plan", "--config", str(few), "--gpu", "T4"])
    out, err = capsys.readouterr()
    assert status == 2 and len(err) < 300, err  # a list for name: refused, the value cut short


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "..", ".hidden", "a b", "x" * 101])
def test_a_run_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, capsys, monkeypatch, name):
    write(tmp_path / "x" / "metrics.jsonl", "{}\n")  # a run that ../x from runs/ would replace
    write(tmp_path / "runs" / "keep.txt", "x")
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    opts = [*tiny_opts(tmp_path / "mc"), f"name={name}"]
    argv = ["train", "--config", "minicity-cpu", "--quiet", "--overwrite", "--opt", *opts]
    assert_one_line_error(capsys, main(argv), "must be a plain folder name")
    assert snapshot(tmp_path) == before


def test_a_run_name_from_a_yaml_is_checked_too(tmp_path, capsys):
    config = write(tmp_path / "shared.yaml", "base: minicity-cpu\nname: ../../etc\n")
    status = main(["plan", "--config", str(config)])
    assert_one_line_error(capsys, status, "name '../../etc' must be a plain folder name")
    assert load_config("minicity-cpu", ["name=minicity-cpu_v2.1"]).name == "minicity-cpu_v2.1"


# --- non-finite weights --------------------------------------------------------------------


def poisoned_checkpoint(path, key_part, value, count=3):
    """The committed MiniCity model with ``count`` values of its first floating tensor whose
    name holds ``key_part`` set to ``value``; returns that tensor's name."""
    state = load_checkpoint(REPO_DIR / COMMITTED)
    state.pop("format")
    key = next(k for k, v in state["model"].items() if key_part in k and v.is_floating_point())
    state["model"][key] = state["model"][key].clone()
    state["model"][key].view(-1)[:count] = value
    save_checkpoint(path, state)
    return key


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_checkpoint_with_nan_weights_is_refused_before_any_image(tmp_path, capsys, command):
    key = poisoned_checkpoint(tmp_path / "run" / "last.pt", "weight", math.nan)
    before = snapshot(tmp_path)
    argv = [command, "--checkpoint", str(tmp_path / "run" / "last.pt"), "--opt", "data.val_limit=1"]
    out = ["--output", str(tmp_path / "e.json")] if command == "evaluate" else []
    out = out or ["--out", str(tmp_path / "png"), "--count", "1"]
    status = main([*argv, *out])
    assert_one_line_error(capsys, status, f"{key!r} has 3 NaN/Inf of")
    assert snapshot(tmp_path) == before


def test_an_infinite_batchnorm_statistic_is_refused_too(tmp_path):
    key = poisoned_checkpoint(tmp_path / "inf.pt", "running_var", math.inf, count=1)
    with pytest.raises(CheckpointError, match=f"{key!r} has 1 NaN/Inf"):
        load_for_inference(tmp_path / "inf.pt")


# --- predict --images ----------------------------------------------------------------------


@pytest.mark.parametrize("second", ["b/x.jpg", "a/x.png"])
def test_two_images_of_one_name_are_refused_before_any_is_written(tmp_path, capsys, second):
    from PIL import Image

    for name in ("a/x.png", "b/x.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (64, 32), (90, 90, 95)).save(tmp_path / name)
    argv = ["predict", "--checkpoint", str(REPO_DIR / COMMITTED), "--out", str(tmp_path / "out")]
    status = main([*argv, "--images", str(tmp_path / "a/x.png"), str(tmp_path / second)])
    assert_one_line_error(capsys, status, "have one name, 'x'")
    assert not (tmp_path / "out").exists()


# --- the torchrun environment --------------------------------------------------------------

BAD_LAUNCH = [
    ({"RANK": "1"}, "RANK=1 but WORLD_SIZE is unset"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2 but WORLD_SIZE is 2"),
    ({"LOCAL_RANK": "1"}, "LOCAL_RANK=1 but WORLD_SIZE is unset"),
    ({"WORLD_SIZE": "2", "RANK": "0"}, "WORLD_SIZE=2 but MASTER_ADDR and MASTER_PORT unset"),
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' must be a whole number from 1 to"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0' must be a whole number from 1 to"),
    ({"RANK": "-1"}, "RANK='-1' must be a whole number from 0 to"),
    ({"WORLD_SIZE": "9" * 40}, "WORLD_SIZE='99999999999999999...' must be a whole number"),
]


@pytest.mark.parametrize("env, match", BAD_LAUNCH, ids=[" ".join(e) for e, _ in BAD_LAUNCH])
def test_a_stray_torchrun_variable_is_refused_before_training(
    tmp_path, capsys, monkeypatch, env, match
):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status = main(train_argv(tmp_path / "run", tiny_opts(tmp_path / "mc")))
    assert_one_line_error(capsys, status, match)
    assert not any(tmp_path.iterdir())  # no run folder, no MiniCity


def test_evaluate_refuses_a_stray_rank_too(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    argv = ["evaluate", "--checkpoint", str(REPO_DIR / COMMITTED), "--quiet", "--workers", "0"]
    status = main([*argv, "--output", str(tmp_path / "e.json")])
    assert_one_line_error(capsys, status, "RANK=1 but WORLD_SIZE is unset")
    assert not any(tmp_path.iterdir())
