"""dgcn reproduce: every row and seed trained and evaluated, results written, table built."""

import csv
import json

import pytest
from helpers import tiny_opts

from dgcn.reproduce import LABELS, paper_numbers, reproduce, results_table
from dgcn.training.loop import RunDirError


def test_two_rows_two_seeds_write_results_and_figures(minicity, tmp_path):
    out = tmp_path / "ablation"
    opts = tiny_opts(minicity, **{"train.iterations": 1, "train.checkpoint_every": 1})
    reproduce(seeds=[0, 1], rows=["baseline", "both"], out=out, overrides=opts, progress=False)
    records = json.loads((out / "results.json").read_text())
    assert sorted((r["row"], r["seed"]) for r in records) == [
        ("baseline", 0),
        ("baseline", 1),
        ("both", 0),
        ("both", 1),
    ]
    assert all(0 <= r["miou"] <= 1 for r in records)
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    table = (out / "results.md").read_text()
    assert results_table(records, paper_numbers()) in table
    assert LABELS["both"] in table and "+- " in table  # two seeds: mean +- std
    assert (out / "per-class-iou.png").stat().st_size > 0
    with pytest.raises(RunDirError, match="already holds results"):
        reproduce(rows=["baseline"], out=out, overrides=opts, progress=False)


def test_results_table_deltas_and_paper_columns():
    records = [
        {"row": "baseline", "seed": 0, "miou": 0.25},
        {"row": "coordinate", "seed": 0, "miou": 0.27},
    ]
    paper = {"baseline": 75.2, "coordinate": 78.8}
    lines = results_table(records, paper).splitlines()
    assert lines[0].startswith("| row | ours mIoU % (1 seed) |")
    assert lines[2] == f"| {LABELS['baseline']} | 25.0 |  | 75.2 |  |"
    assert lines[3] == f"| {LABELS['coordinate']} | 27.0 | +2.0 | 78.8 | +3.6 |"
