"""dgcn reproduce: every row and seed trained and evaluated, results written, table built."""

import csv
import json
import math
from pathlib import Path

import pytest
from helpers import tiny_opts

from dgcn.config import REPO_DIR, apply_overrides, load_config
from dgcn.datasets.labels import CLASS_NAMES
from dgcn.errors import ConfigError, DgcnError, RunDirError
from dgcn.models import build_model
from dgcn.reproduce import (
    FROZEN_ROWS,
    LABELS,
    OBJECTS_COLUMN,
    PASCAL_CONTEXT_ROWS,
    POOLING_ROWS,
    ROWS,
    baseline_of,
    best_row,
    collect_results,
    context_miou,
    default_rows,
    gain,
    head_parameters,
    margin,
    paper_column,
    paper_numbers,
    per_class_table,
    pooling_table,
    read_results,
    reproduce,
    results_table,
    rows_for,
)


@pytest.mark.slow
def test_frozen_rows_two_seeds_write_results_and_figures(minicity, tmp_path):
    out = tmp_path / "ablation"
    opts = tiny_opts(minicity, **{"train.iterations": 4, "train.eval_every": 2})
    rows = ["baseline", "both", "global-pool"]
    reproduce(seeds=[0, 1], rows=rows, out=out, overrides=opts, progress=False)
    records = json.loads((out / "results.json").read_text())
    assert sorted((r["row"], r["seed"]) for r in records) == sorted(
        (row, seed) for row in rows for seed in (0, 1)
    )
    assert all(0 <= r["miou"] <= 1 for r in records)
    for r in records:  # the object score of fit_head, and the head counted on the row's model
        summary = json.loads((out / f"{r['row']}-seed{r['seed']}" / "summary.json").read_text())
        assert r["object_accuracy"] == summary["eval"]["object_accuracy"]
        assert r["object_per_class"] == summary["eval"]["object_per_class"]
        assert r["object_accuracy"] is None or 0 <= r["object_accuracy"] <= 1
        assert set(summary["eval"]["object_counts"]) == {"truck", "bus", "train"}
        model = build_model(r["model"], 19, **r["overrides"])
        assert r["head_params"] == sum(p.numel() for p in model.head.parameters())
        graph = model.head.graph
        assert r["context_params"] == (
            0 if graph is None else sum(p.numel() for p in graph.parameters())
        )
    assert {r["context_params"] for r in records if r["row"] == "baseline"} == {0}
    assert read_results(out) == records
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6
    assert {"row", "seed", "miou", "context_miou", "object_accuracy", *CLASS_NAMES} <= set(table[0])
    assert [int(t["head_params"]) for t in table] == [r["head_params"] for r in records]
    text = (out / "results.md").read_text()
    for row in rows:  # each row's line shows the mean of its seeds, computed here by hand
        values = [100 * r["miou"] for r in records if r["row"] == row]
        line = next(x for x in text.splitlines() if x.startswith(f"| {LABELS[row]} |"))
        assert line.split(" | ")[1].startswith(f"{sum(values) / len(values):.1f} +- ")
    assert LABELS["both"] in text and "+- " in text and "delta / pooled std" in text
    assert "## Against the best pooling row" in text and OBJECTS_COLUMN in text
    assert f"| {LABELS['both']} | {LABELS['global-pool']} (best pooling row) |" in text
    assert "truck *" in text  # context classes marked in the per-class table
    for name in ("per-class-iou.png", "curves.png", "predictions-global-pool.png"):
        assert (out / name).stat().st_size > 0
    with pytest.raises(
        RunDirError, match="already holds results of another table .* in seeds, rows"
    ):
        reproduce(rows=["baseline"], out=out, overrides=opts, progress=False)
    with pytest.raises(ConfigError, match="unknown row 'pooling'"):
        reproduce(rows=["pooling"], out=tmp_path / "x", overrides=opts, progress=False)


def test_end_to_end_preset_still_trains_every_row(minicity, tmp_path):
    out = tmp_path / "e2e"
    opts = tiny_opts(minicity, **{"train.iterations": 1, "train.checkpoint_every": 1})
    assert default_rows("minicity-cpu") == (
        "baseline",
        "coordinate",
        "feature",
        "both",
        "global-pool",
    )
    reproduce("minicity-cpu", rows=["baseline", "both"], out=out, overrides=opts, progress=False)
    records = json.loads((out / "results.json").read_text())
    assert [r["overrides"]["graphs"] for r in records] == ["none", "both"]


def test_default_rows_and_baselines():
    assert default_rows("minicity-ablation") == (
        "baseline",
        "coordinate",
        "feature",
        "both",
        "global-pool",
        "ppm",
        "non-local",
    )
    assert POOLING_ROWS == ("global-pool", "ppm")
    assert ROWS["ppm"] == {"graphs": "ppm"} and ROWS["non-local"] == {"graphs": "non-local"}
    assert baseline_of("official-both") == "official-baseline"
    assert baseline_of("global-pool") == "baseline"
    assert all(ROWS[r]["head"] == "official" for r in ROWS if r.startswith("official-"))


def test_results_table_deltas_pooled_std_and_paper_columns():
    def rec(row, seed, miou):
        return {"row": row, "seed": seed, "miou": miou, "per_class": {"truck": miou, "bus": 0.5}}

    records = [
        rec("baseline", 0, 0.25),
        rec("baseline", 1, 0.27),
        rec("both", 0, 0.30),
        rec("both", 1, 0.34),
    ]
    paper = {"baseline": 75.2, "both": 80.5}
    lines = results_table(records, paper).splitlines()
    assert lines[0].startswith("| row | ours mIoU % (2 seeds) | ours delta | delta / pooled std |")
    # baseline 26.0 +- 1.414, both 32.0 +- 2.828: pooled sqrt((2 + 8) / 2) = 2.236, 6 / 2.236
    assert (
        lines[3] == f"| {LABELS['both']} | 32.0 +- 2.8 | +6.0 | 2.7 | 41.0 +- 1.4 | 80.5 | +5.3 |"
    )
    g = gain(records, "both")
    assert g["delta"] == pytest.approx(6.0) and g["pooled_std"] == pytest.approx(math.sqrt(5))
    assert context_miou({"truck": 0.2, "bus": None, "car": 0.9}) == pytest.approx(0.2)


def _plain_margin(ours, theirs):
    """(mean difference, difference / pooled std) in points, written out."""
    n, m = len(ours), len(theirs)
    mean_a, mean_b = sum(ours) / n, sum(theirs) / m
    var_a = sum((x - mean_a) ** 2 for x in ours) / (n - 1)
    var_b = sum((x - mean_b) ** 2 for x in theirs) / (m - 1)
    return mean_a - mean_b, (mean_a - mean_b) / math.sqrt((var_a + var_b) / 2)


def test_graph_rows_against_the_best_pooling_row_and_both_against_the_better_graph():
    mious = {
        "baseline": [0.30, 0.31, 0.32],
        "coordinate": [0.36, 0.35, 0.37],
        "feature": [0.38, 0.37, 0.385],
        "both": [0.39, 0.38, 0.40],
        "global-pool": [0.34, 0.35, 0.345],
        "ppm": [0.355, 0.36, 0.35],  # the better pooling row
        "non-local": [0.37, 0.36, 0.38],
    }
    records = [
        {"row": row, "seed": seed, "miou": v, "per_class": {}}
        for row, values in mious.items()
        for seed, v in enumerate(values)
    ]
    assert best_row(records, POOLING_ROWS) == "ppm"
    assert best_row(records, ("coordinate", "feature")) == "feature"
    assert best_row(records, ("official-both",)) is None
    lines = pooling_table(records).splitlines()
    assert lines[0] == "| row | against | delta | delta / pooled std |"
    expected = [
        ("coordinate", "ppm", "best pooling row"),
        ("feature", "ppm", "best pooling row"),
        ("both", "ppm", "best pooling row"),
        ("both", "feature", "better single graph"),
        ("non-local", "ppm", "best pooling row"),
    ]
    assert len(lines) == 2 + len(expected)
    for line, (row, reference, why) in zip(lines[2:], expected, strict=True):
        delta, ratio = _plain_margin(
            [100 * v for v in mious[row]], [100 * v for v in mious[reference]]
        )
        assert (
            line == f"| {LABELS[row]} | {LABELS[reference]} ({why}) | {delta:+.1f} | {ratio:.1f} |"
        )
        m = margin(records, row, reference)
        assert m["delta"] == pytest.approx(delta) and m["ratio"] == pytest.approx(ratio)
    assert margin(records, "both", "both") is None and margin(records, "both", "ppm2") is None
    one_seed = [r for r in records if r["seed"] == 0]
    assert pooling_table(one_seed).splitlines()[0] == "| row | against | delta |"
    no_pooling = [r for r in records if r["row"] not in POOLING_ROWS]
    assert pooling_table(no_pooling) == ""
    assert pooling_table([r for r in records if r["row"] in ("baseline", "ppm")]) == ""


def test_objects_and_parameter_columns():
    def rec(row, seed, miou, objects, head, context):
        return {
            "row": row,
            "seed": seed,
            "miou": miou,
            "per_class": {"truck": miou},
            "object_accuracy": objects,
            "head_params": head,
            "context_params": context,
        }

    records = [
        rec("baseline", 0, 0.30, 0.25, 37555, 0),
        rec("baseline", 1, 0.32, 0.35, 37555, 0),
        rec("both", 0, 0.36, 0.50, 100723, 63168),
        rec("both", 1, 0.38, None, 100723, 63168),  # a run without objects is left out
    ]
    lines = results_table(records, {}).splitlines()
    header = lines[0].split(" | ")
    assert header[5:8] == [OBJECTS_COLUMN, "head params", "context params"]
    assert lines[2].split(" | ")[5:8] == ["30.0 +- 7.1", "37,555", "0"]
    assert lines[3].split(" | ")[5:8] == ["50.0 +- 0.0", "100,723", "63,168"]
    pascal = results_table(records, paper_numbers("pascal-context"), "pascal-context")
    assert OBJECTS_COLUMN not in pascal and "| 100,723 | 63,168 |" in pascal


def test_committed_results_are_still_read_and_tabled():
    # the first edition's files (MiniCity v1), written before objects and parameters existed
    for name in ("minicity-v1", "minicity-official-v1"):
        records = read_results(REPO_DIR / "experiments" / "results" / name)
        assert all("head_params" not in r and "object_accuracy" not in r for r in records)
        header = results_table(records, paper_numbers()).splitlines()[0]
        assert OBJECTS_COLUMN not in header and "head params" not in header
    assert pooling_table(records) == ""  # the authors' head rows: no pooling row was run
    # the v2 table carries them, and its pooling table compares with the better pooling row
    records = read_results(REPO_DIR / "experiments" / "results" / "minicity")
    assert all(r["object_accuracy"] is not None and r["head_params"] > 0 for r in records)
    assert {r["row"] for r in records} == set(FROZEN_ROWS)
    assert OBJECTS_COLUMN in results_table(records, paper_numbers()).splitlines()[0]
    assert "best pooling row" in pooling_table(records)


def test_head_parameters_count_the_head_and_its_graph():
    for row in ("baseline", "both", "global-pool", "official-coordinate"):
        cfg = load_config("minicity-ablation")
        apply_overrides(cfg, {"model": {"overrides": ROWS[row]}})
        model = build_model(cfg.model.name, 19, **cfg.model.overrides)
        graph = model.head.graph
        assert head_parameters(cfg) == {
            "head_params": sum(p.numel() for p in model.head.parameters()),
            "context_params": 0 if graph is None else sum(p.numel() for p in graph.parameters()),
        }


def test_rows_and_paper_numbers_per_dataset():
    assert rows_for("cityscapes") == ("baseline", "coordinate", "feature", "both", "global-pool")
    assert rows_for("minicity", frozen=True)[4:] == ("global-pool", "ppm", "non-local")
    for dataset in ("pascal-context", "pascal-context-60"):  # DGCNet alone, no ablation rows
        assert rows_for(dataset) == rows_for(dataset, frozen=True) == PASCAL_CONTEXT_ROWS
        assert PASCAL_CONTEXT_ROWS == ("both",) and ROWS["both"] == {"graphs": "both"}
        assert paper_numbers(dataset) == {"both": 53.7}  # the yaml row pascal_context
        assert "setting unconfirmed" in paper_column(dataset)
    assert (
        paper_numbers()
        == paper_numbers("minicity")
        == {
            "baseline": 75.2,
            "coordinate": 78.8,
            "feature": 79.3,
            "both": 80.5,
        }
    )


def test_default_rows_of_a_pascal_context_config(tmp_path, monkeypatch):
    """A config naming pascal-context (on top of an existing preset) gets the DGCNet row. Until
    the config accepts that dataset name, the same config is built by hand."""
    import dgcn.reproduce as rep
    from dgcn.config import load_config

    path = tmp_path / "pc.yaml"
    path.write_text(
        "base: cityscapes-paper\ndata: {dataset: pascal-context}\nmodel: {num_classes: 59}\n"
    )
    try:
        assert default_rows(str(path)) == ("both",)
    except ConfigError as err:  # data.dataset does not know pascal-context yet
        assert "pascal-context" in str(err)
        cfg = load_config("cityscapes-paper")
        cfg.data.dataset = "pascal-context"
        monkeypatch.setattr(rep, "load_config", lambda preset, overrides=None: cfg)
        assert default_rows(str(path)) == ("both",)
    monkeypatch.undo()
    assert default_rows("cityscapes-paper") == (
        "baseline",
        "coordinate",
        "feature",
        "both",
        "global-pool",
    )


def test_results_table_on_pascal_context():
    per_class = {"aeroplane": 0.6, "road": 0.5, "truck": 0.3}
    records = [{"row": "both", "seed": 0, "miou": 0.5, "per_class": per_class}]
    lines = results_table(records, paper_numbers("pascal-context"), "pascal-context").splitlines()
    assert lines[0] == (
        "| row | ours mIoU % (1 seed) | ours delta | "
        + paper_column("pascal-context")
        + " | paper delta |"
    )
    assert lines[2] == f"| {LABELS['both']} | 50.0 |  | 53.7 |  |"  # no context column
    table = per_class_table(records, marked=())
    assert "| aeroplane | 60.0 |" in table and "*" not in table
    assert "| truck * |" in per_class_table(records)  # MiniCity's marks by default


def test_a_committed_model_is_loaded_or_made_by_its_own_command(tmp_path, monkeypatch):
    import shutil

    import dgcn
    from dgcn import reproduce as module

    committed = Path(module.__file__).resolve().parent.parent / "experiments" / "checkpoints"
    calls = []

    def fake_reproduce(preset, rows, out, progress):  # the row's run, as reproduce leaves it
        calls.append((preset, list(rows)))
        (Path(out) / f"{rows[0]}-seed0").mkdir(parents=True)
        shutil.copy(committed / "minicity-dgcnet-paper.pt", Path(out) / f"{rows[0]}-seed0/last.pt")
        return Path(out)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(module, "reproduce", fake_reproduce)
    model, cfg = dgcn.committed_model("minicity-dgcnet-paper", progress=False)
    assert calls == [("minicity-ablation", ["both"])]  # the command that made the file
    assert (tmp_path / "experiments/checkpoints/minicity-dgcnet-paper.pt").exists()
    assert not model.training and cfg.model.name == "dgcnet_paper_micro"
    dgcn.committed_model("minicity-dgcnet-paper", progress=False)
    assert len(calls) == 1  # present now: loaded, not trained again
    with pytest.raises(dgcn.ConfigError, match="no committed model"):
        dgcn.committed_model("minicity-nope")


def test_collect_results_splits_the_committed_single_runs_by_dataset(tmp_path):
    both = {"row": "both", "seed": 0, "miou": 0.8}
    pascal = {"row": "both", "seed": 0, "miou": 0.5, "dataset": "pascal-context-60"}
    (tmp_path / "b.json").write_text(json.dumps([both, {"row": "feature", "miou": None}, 3]))
    (tmp_path / "a.json").write_text(json.dumps(pascal))
    (tmp_path / "c.json").write_text(json.dumps({"miou": 0.7}))  # no row: not an ablation's
    (tmp_path / "minicity").mkdir()  # a reproduce table beside them is not read
    (tmp_path / "minicity" / "results.json").write_text(json.dumps([both]))
    ablation, pascal_context = collect_results(tmp_path)
    assert ablation == [{**both, "file": "b.json"}]
    assert pascal_context == [{**pascal, "file": "a.json"}]
    assert collect_results(tmp_path / "minicity") == ([{**both, "file": "results.json"}], [])
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(DgcnError, match="d.json is not readable JSON"):
        collect_results(tmp_path)
