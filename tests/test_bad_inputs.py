"""Bad inputs a new user may give (issue 29): each ends in one line on stderr naming the cause
and the fix, exit status 2, every file that existed before unchanged.

This file: configs (duplicate keys, ``base:`` beside its file, alias bombs, run names),
checkpoints with non-finite weights, ``predict --images`` of one name, and the torchrun
environment. tests/test_bad_outputs.py: what ``evaluate`` writes, and the run folder's lock.
"""

import pytest
from helpers import tiny_opts
from test_errors import assert_one_line_error, snapshot

from dgcn.cli import main
from dgcn.config import REPO_DIR, load_config


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
