"""The YAML presets: every one loads, passes the config checks, and no two describe one run."""

from __future__ import annotations

import dataclasses

import pytest

from dgcn.config import CONFIG_DIR, check_config, load_config
from dgcn.models import model_spec

PRESETS = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_passes_the_checks(name):
    check_config(load_config(name))


def test_no_two_presets_describe_the_same_run():
    runs: dict[str, str] = {}
    for name in PRESETS:
        cfg = dataclasses.asdict(load_config(name))
        del cfg["name"]  # the run's name, which is the preset's
        # the network as built: an override equal to the model's default is no change
        cfg["model"]["overrides"] = model_spec(cfg["model"]["name"], **cfg["model"]["overrides"])
        resolved = repr(cfg)
        assert resolved not in runs, f"presets {runs[resolved]!r} and {name!r} are the same run"
        runs[resolved] = name
    assert len(runs) == len(PRESETS) >= 10


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_evaluates_at_the_size_it_trained_on(name):
    # the graphs' sums grow with the pixels and eval-mode BN keeps the statistics of the
    # training crop: whole images only where the crop is the whole frame (MiniCity)
    cfg = load_config(name)
    crop = tuple(cfg.data.crop_size)
    if cfg.eval.mode == "whole":
        assert cfg.data.dataset == "minicity", f"{name}: whole-image evaluation"
        assert crop == tuple(cfg.data.minicity_size), f"{name}: crop {crop} is not the frame"
    else:
        assert cfg.eval.mode == "slide" and cfg.eval.tile == max(crop), f"{name}: {cfg.eval}"


@pytest.mark.parametrize("name", PRESETS)
def test_every_presets_multiscale_test_is_the_authors(name):
    # `--mode multiscale` predicts every scale whole, as the authors' script; a preset's tile
    # is its sliding window's, never slid over the scales unless `--scale-tile` asks
    assert load_config(name).eval.scale_tile is None
