"""``dgcn reproduce``: the paper's ablation table (baseline, + coordinate GCN, + feature GCN,
both), trained and evaluated with one preset, written beside the paper's numbers.

With no arguments it runs the CPU preset ``minicity-ablation``: one committed MiniCity backbone
(undilated, so its receptive field cannot see a whole vehicle) is frozen, its features are
computed once, and each row trains only its head on them (about a minute a row on two cores).
Every row's baseline is the same head with the graph module replaced by identity; two control
rows put pooling where the graphs go (image-level pooling, and PSPNet's pyramid pooling), and a
non-local row a full pixel-affinity block. Beside the mIoU the table gives each row's head and
context-module parameters and the share of big-vehicle objects (truck, bus, train) whose
majority prediction is right, and a second table each graph row's margin over the better
pooling row. With ``--preset cityscapes-paper --data-root <cityscapes>`` on a GPU every row is
trained end to end: the real reproduction.

On a PASCAL Context preset (a config whose ``data.dataset`` is ``pascal-context`` or
``pascal-context-60``) the paper has no ablation, only DGCNet's one number (53.7, ResNet-101,
multi-scale, from its abstract; which background setting it used is unconfirmed, see
``docs/reference/pascal_context.md``): the default is the ``both`` row beside it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from dgcn.ablation import (  # the rows and their tables, re-exported: dgcn.reproduce.ROWS etc.
    FROZEN_ROWS,
    GRAPH_ROWS,
    LABELS,
    OBJECTS_COLUMN,
    PAPER_ROWS,
    PASCAL_CONTEXT_DATASETS,
    PASCAL_CONTEXT_ROWS,
    POOLING_ROWS,
    ROWS,
    baseline_of,
    best_row,
    class_names_of,
    context_miou,
    default_rows,
    gain,
    head_parameters,
    is_pascal_context,
    margin,
    paper_column,
    paper_numbers,
    per_class_table,
    pooling_table,
    results_table,
    rows_for,
)
from dgcn.checkpoint import export_weights, load_for_inference
from dgcn.config import (
    apply_overrides,
    load_config,
    model_overrides,
    parse_duration,
)
from dgcn.datasets.build import build_dataset
from dgcn.datasets.minicity import CONTEXT_CLASSES
from dgcn.distributed import is_main_process
from dgcn.errors import ConfigError, DgcnError, RunDirError
from dgcn.evaluation.objects import BIG_VEHICLES, MIN_PIXELS
from dgcn.evaluation.prediction import predict
from dgcn.fileio import write_text_atomic
from dgcn.models import model_spec
from dgcn.training.frozen import cache_features, cache_key
from dgcn.training.runs import train as train_run
from dgcn.viz.predictions import iou_bars, prediction_grid, row_curves, save_figure

DEFAULT_PRESET = "minicity-ablation"

__all__ = [
    "COMMITTED_MODELS",
    "DEFAULT_PRESET",
    "FROZEN_ROWS",
    "GRAPH_ROWS",
    "LABELS",
    "OBJECTS_COLUMN",
    "PAPER_ROWS",
    "PASCAL_CONTEXT_DATASETS",
    "PASCAL_CONTEXT_ROWS",
    "POOLING_ROWS",
    "RECORD_KEYS",
    "RESULTS",
    "ROWS",
    "baseline_of",
    "best_row",
    "class_names_of",
    "committed_model",
    "context_miou",
    "default_rows",
    "gain",
    "head_parameters",
    "is_pascal_context",
    "margin",
    "paper_column",
    "paper_numbers",
    "per_class_table",
    "pooling_table",
    "read_results",
    "reproduce",
    "results_table",
    "rows_for",
]


def _figures(
    out: Path,
    records: list[dict[str, Any]],
    count: int = 4,
    marked: tuple[str, ...] = CONTEXT_CLASSES,
) -> list[Path]:
    """Prediction grids per row, validation-mIoU curves of every row (first seed) and per-class
    IoU bars (both vs baseline, the ``marked`` classes marked)."""
    written = []
    first_seed = min(rec["seed"] for rec in records)
    by_row = {rec["row"]: rec for rec in records if rec["seed"] == first_seed}
    curves = {}
    for row, rec in by_row.items():
        model, cfg = load_for_inference(Path(rec["run_dir"]) / "last.pt")
        dataset = build_dataset(cfg.data, cfg.data.val_split, train=False)
        items = [dataset[i] for i in range(min(count, len(dataset)))]
        images = torch.stack([im for im, _ in items])
        targets = torch.stack([m for _, m in items])
        preds = predict(model, images, cfg.eval).argmax(1)
        path = out / f"predictions-{row}.png"
        save_figure(prediction_grid(images, targets, preds), path)
        written.append(path)
        log = Path(rec["run_dir"]) / "metrics.jsonl"
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        curves[LABELS[row]] = [(r["iteration"], 100 * r["miou"]) for r in lines if "miou" in r]
    if any(len(points) > 1 for points in curves.values()):
        save_figure(
            row_curves(curves, "validation mIoU while training (first seed)"), out / "curves.png"
        )
        written.append(out / "curves.png")
    if "both" in by_row:
        reference = by_row.get("baseline", {}).get("per_class")
        fig = iou_bars(
            by_row["both"]["per_class"],
            None
            if reference is None
            else {k: 100 * v for k, v in reference.items() if v is not None},
            title="both graphs vs baseline (grey), * context class",
            reference_name="baseline",
            marked=marked,
        )
        save_figure(fig, out / "per-class-iou.png")
        written.append(out / "per-class-iou.png")
    return written


RESULTS = "results.json"
RECORD_KEYS = ("row", "seed", "miou", "context_miou", "pixel_accuracy", "per_class", "seconds")


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The records of a finished ``dgcn reproduce``: one dict per (row, seed), as written.

    Args:
        path: its output folder (``results.json`` inside) or the JSON file itself, e.g.
            ``experiments/results/minicity`` (committed) or ``runs/reproduce/<timestamp>``.

    Returns:
        records with the keys of :data:`RECORD_KEYS`, ready for :func:`results_table`; those
        written since the keys existed also hold ``head_params``, ``context_params`` and
        ``object_accuracy`` (None for end-to-end runs), ``object_per_class``.

    Raises:
        DgcnError: the file is missing, not JSON, or not a list of such records.
    """
    path = Path(path)
    file = path / RESULTS if path.is_dir() else path
    if not file.is_file():
        raise DgcnError(f"{file} does not exist: run `dgcn reproduce --out {file.parent}` first")
    try:
        records = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DgcnError(f"{file} is not readable JSON ({err}); run `dgcn reproduce` again") from err
    if not isinstance(records, list) or not records:
        raise DgcnError(f"{file} holds no records; it is not a results file of `dgcn reproduce`")
    for i, record in enumerate(records):
        missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
        if missing:
            raise DgcnError(
                f"record {i} of {file} lacks {', '.join(missing)}: it is not a results file of "
                "`dgcn reproduce`"
            )
        if record["row"] not in ROWS:
            raise DgcnError(f"record {i} of {file} has unknown row {record['row']!r}")
    return records


def reproduce(
    preset: str = DEFAULT_PRESET,
    data_root: str | None = None,
    seeds: list[int] | tuple[int, ...] = (0,),
    rows: list[str] | tuple[str, ...] | None = None,
    out: str | Path | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    device: str = "auto",
) -> Path:
    """Train and evaluate every row for every seed; write results.md/.csv/.json and figures.

    Args:
        preset: config preset the rows start from.
        data_root: dataset root (overrides ``data.root``).
        seeds: training seeds; several give mean +- std.
        rows: keys of :data:`ROWS` (default :func:`default_rows`).
        out: output folder (default ``runs/reproduce/<timestamp>``; never reused).
        overrides: ``key=value`` config overrides for every row.

    Returns:
        the output folder.
    """
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out or f"runs/reproduce/{stamp}")
    main = is_main_process()
    if main and out.exists() and any(out.iterdir()):
        raise RunDirError(f"{out} already holds results; choose another --out")
    rows = tuple(rows or default_rows(preset, overrides))
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ConfigError(f"unknown row {unknown[0]!r}; rows: {', '.join(ROWS)}")

    def row_config(row: str, seed: int):
        cfg = load_config(preset, overrides)
        apply_overrides(cfg, {"model": {"overrides": ROWS[row]}, "train": {"seed": seed}})
        if data_root:
            cfg.data.root = data_root
        cfg.name = f"{row}-seed{seed}"
        return cfg

    params = {}
    for row in rows:  # every row's model options are checked before the first row trains
        cfg = row_config(row, seeds[0])
        model_spec(cfg.model.name, **model_overrides(cfg))
        params[row] = head_parameters(cfg)
    dataset = cfg.data.dataset
    pascal = is_pascal_context(dataset)
    marked = () if pascal else CONTEXT_CLASSES  # MiniCity's context classes mean nothing there
    if parse_duration(cfg.train.time_limit):  # a row stopped by it would have no result
        raise ConfigError(
            "dgcn reproduce trains every row to the end and cannot resume one: drop "
            "train.time_limit (train a long row with `dgcn train ... --resume` instead)"
        )
    start = time.perf_counter()
    records = []
    caches: dict[tuple, Any] = {}
    for seed in seeds:
        for row in rows:
            cfg = row_config(row, seed)
            cache = None
            if cfg.frozen.backbone:
                key = cache_key(cfg)
                if key not in caches:
                    caches[key] = cache_features(cfg, progress=progress)
                cache = caches[key]
            run_start = time.perf_counter()
            summary = train_run(cfg, out / cfg.name, progress=progress, device=device, cache=cache)
            records.append(
                {
                    "row": row,
                    "seed": seed,
                    "miou": summary["miou"],
                    "context_miou": math.nan if pascal else context_miou(summary["per_class"]),
                    "pixel_accuracy": summary["pixel_accuracy"],
                    "per_class": summary["per_class"],
                    # frozen-backbone runs only (fit_head), on the Cityscapes classes
                    "object_accuracy": summary.get("object_accuracy"),
                    "object_per_class": summary.get("object_per_class"),
                    **params[row],
                    "seconds": time.perf_counter() - run_start,
                    "run_dir": str(out / cfg.name),
                    "preset": preset,
                    "dataset": dataset,
                    "model": cfg.model.name,
                    "overrides": cfg.model.overrides,
                }
            )
    if not main:
        return out
    paper = paper_numbers(dataset)
    table = results_table(records, paper, dataset)
    names = class_names_of(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "row",
            "seed",
            "miou",
            "context_miou",
            "pixel_accuracy",
            "object_accuracy",
            "head_params",
            "context_params",
            "paper_miou",
            "seconds",
            *names,
        ]
    )
    for rec in records:
        per_class = [rec["per_class"].get(name) for name in names]
        writer.writerow(
            [
                rec["row"],
                rec["seed"],
                f"{rec['miou']:.4f}",
                f"{rec['context_miou']:.4f}",
                f"{rec['pixel_accuracy']:.4f}",
                "" if rec["object_accuracy"] is None else f"{rec['object_accuracy']:.4f}",
                rec["head_params"],
                rec["context_params"],
                paper.get(rec["row"], ""),
                f"{rec['seconds']:.1f}",
                *("" if v is None else f"{v:.4f}" for v in per_class),
            ]
        )
    write_text_atomic(out / "results.csv", buffer.getvalue())
    write_text_atomic(out / RESULTS, json.dumps(records, indent=2) + "\n")
    figures = _figures(out, records, marked=marked)
    minutes = (time.perf_counter() - start) / 60
    if pascal:
        note = (
            f"Preset `{preset}` ({dataset}), seeds {list(seeds)}, {minutes:.1f} min in all. "
            "Ours: mIoU on the preset's validation split. Paper: DGCNet's PASCAL Context number "
            "from its abstract (ResNet-101, multi-scale); whether it is the 59-class mIoU, a "
            "true 60-class one or the 59-class one x 59/60 is unconfirmed "
            "(docs/reference/pascal_context.md); `dgcn evaluate --report-scaled` prints the "
            "x 59/60 figure of a 59-class run."
        )
    else:
        note = (
            f"Preset `{preset}`, seeds {list(seeds)}, {minutes:.1f} min in all. Ours: mIoU on "
            "the preset's validation split, each row's delta against the same head without "
            "graphs; context classes: " + ", ".join(CONTEXT_CLASSES) + ". Paper: Cityscapes "
            "val, ResNet-101 (paper, as summarised). MiniCity numbers measure the relative "
            "effect of the graphs on a synthetic city built so that context matters, not "
            "Cityscapes accuracy."
        )
        if any(rec["object_accuracy"] is not None for rec in records):
            note += (
                f" Column '{OBJECTS_COLUMN}': the share of {', '.join(BIG_VEHICLES)} objects "
                "(4-connected components of one class in the ground truth, at least "
                f"{MIN_PIXELS} pixels; MiniCity has no instance maps) whose pixels are "
                "predicted as their class more than as any other."
            )
    note += (
        " Params: the trainable parameters of the row's head and, of those, of its context "
        "module (where the graphs go)."
    )
    against = pooling_table(records)
    body = [
        f"# Ablation: {preset}",
        "",
        table,
        "",
        note,
        "",
        *(
            [
                "## Against the best pooling row",
                "",
                against,
                "",
                "Each graph row's mIoU margin over the pooling control with the higher mean "
                "(pooling gives every pixel one summary of the image; the graphs relate pixels "
                "to each other), and that of both graphs over the better single graph; with "
                "several seeds, delta / pooled std as in the table above.",
                "",
            ]
            if against
            else []
        ),
        "## IoU per class (%, mean over seeds"
        + ("" if pascal else "; * = context-ambiguous class")
        + ")",
        "",
        per_class_table(records, marked),
        "",
        "Figures: "
        + ", ".join(p.name for p in figures)
        + "; each run's own curves.png and checkpoint last.pt in its folder.",
    ]
    write_text_atomic(out / "results.md", "\n".join(body) + "\n")
    print()
    print(table)
    if against:
        print()
        print(against)
    print(note)
    print(
        f"results: {out / 'results.md'}, {out / 'results.csv'}; figures: "
        f"{', '.join(str(p) for p in figures)}"
    )
    return out


#: the committed MiniCity models (the graphs and the pooling control): name -> the ``dgcn
#: reproduce`` row (preset ``minicity-ablation``, seed 0) whose run was exported to
#: ``experiments/checkpoints/<name>.pt``
COMMITTED_MODELS = {
    "minicity-dgcnet-paper": "both",
    "minicity-dgcnet-official": "official-both",
    "minicity-global-pool": "global-pool",
}
COMMITTED_DIR = Path("experiments/checkpoints")


def committed_model(name: str, progress: bool = True) -> tuple[torch.nn.Module, Any]:
    """(model in eval mode, its config) of a committed MiniCity model, as the notebooks use them.

    Loaded from ``experiments/checkpoints/<name>.pt`` (relative to the working directory, the
    repository root in the notebooks) when the file is there; otherwise trained first by the
    command that made it, ``dgcn reproduce --seeds 0 --rows <row>`` (about a minute on a CPU;
    it needs the committed ``minicity-backbone.pt``, whose sha256 the preset checks), and
    exported to that path.

    Raises:
        ConfigError: an unknown name.
    """
    if name not in COMMITTED_MODELS:
        raise ConfigError(f"no committed model {name!r}; known: {', '.join(COMMITTED_MODELS)}")
    path = COMMITTED_DIR / f"{name}.pt"
    if not path.exists():
        row = COMMITTED_MODELS[name]
        print(f"{path} is missing: training it as it was made (dgcn reproduce --rows {row})")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = reproduce(
            DEFAULT_PRESET, rows=[row], out=f"runs/committed/{name}-{stamp}", progress=progress
        )
        export_weights(out / f"{row}-seed0" / "last.pt", path)
    return load_for_inference(path)
