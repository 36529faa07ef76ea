"""benchmarks/evaluation.py times what ``dgcn evaluate`` runs and saves after every case."""

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import evaluation as bench  # noqa: E402

from dgcn.config import EvalConfig  # noqa: E402


def test_cases_are_the_evaluate_defaults_in_both_precisions():
    cpu = bench.cases(cpu=True, tile=192)
    assert [label for label, _ in cpu] == ["slide", "whole", "multiscale+flip"]
    for _, config in cpu:  # what `dgcn evaluate` runs: the config's defaults but the mode
        assert config.precision == "auto" and config.average == EvalConfig().average
        assert config.overlap == EvalConfig().overlap and config.tile == 192
    assert cpu[2][1].scale_tile == 192  # the multi-scale case slides every scale
    gpu = bench.cases(cpu=False, tile=832)
    assert [c.precision for _, c in gpu] == ["auto"] * 3 + ["fp32"] * 2


def test_time_case_runs_evaluate_and_counts_images(monkeypatch):
    calls = []

    def spy(model, batches, config, **kwargs):
        calls.append((len(batches), config.mode))
        return original(model, batches, config, **kwargs)

    original = bench.evaluate
    monkeypatch.setattr(bench, "evaluate", spy)
    model = torch.nn.Conv2d(3, 19, 1)
    images, masks = torch.randn(1, 3, 8, 8), torch.zeros(1, 8, 8, dtype=torch.long)
    config = EvalConfig(mode="whole")
    seconds = bench.time_case(model, images, masks, config, torch.device("cpu"), 3)
    assert seconds > 0 and calls == [(1, "whole"), (3, "whole")]  # warm-up, then the images


def test_results_are_written_after_every_case(monkeypatch):
    written = []
    monkeypatch.setattr(bench, "time_case", lambda *args: 0.5)
    monkeypatch.setattr(
        bench, "write_result", lambda name, p, **_: written.append(copy.deepcopy(p))
    )
    monkeypatch.setattr(sys, "argv", ["evaluation.py", "--images", "1"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    bench.main()
    assert [len(p["rows"]) for p in written] == [1, 2, 3, 3]
    assert [p["complete"] for p in written] == [False, False, False, True]
    assert written[-1]["rows"][0]["seconds_for_500"] == 250.0
