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
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml

from dgcn.checkpoint import export_weights, load_for_inference
from dgcn.config import (
    CONFIG_DIR,
    Config,
    apply_overrides,
    load_config,
    model_overrides,
    parse_duration,
)
from dgcn.datasets.build import build_dataset
from dgcn.datasets.labels import CLASS_NAMES
from dgcn.datasets.minicity import CONTEXT_CLASSES
from dgcn.distributed import is_main_process
from dgcn.errors import ConfigError, DgcnError
from dgcn.evaluation.objects import BIG_VEHICLES, MIN_PIXELS
from dgcn.evaluation.prediction import predict
from dgcn.fileio import write_text_atomic
from dgcn.markdown import markdown_table
from dgcn.models import build_model, model_spec
from dgcn.training.frozen import cache_features, cache_key
from dgcn.training.loop import RunDirError
from dgcn.training.runs import train as train_run
from dgcn.viz.predictions import iou_bars, prediction_grid, row_curves, save_figure

DEFAULT_PRESET = "minicity-ablation"

#: the ablation rows as model overrides of the preset's network. The four paper rows keep the
#: preset's head; their baseline is that head without graphs. ``global-pool`` and ``ppm`` are
#: the pooling controls (image-level pooling, PSPNet's pyramid pooling where the graphs go),
#: ``non-local`` a non-local block there (every pixel related to every other);
#: ``official-*`` is the row set of the authors' released head (``head: official``), with its
#: own baseline.
ROWS: dict[str, dict[str, str]] = {
    "baseline": {"graphs": "none"},
    "coordinate": {"graphs": "coordinate"},
    "feature": {"graphs": "feature"},
    "both": {"graphs": "both"},
    "global-pool": {"graphs": "global-pool"},
    "ppm": {"graphs": "ppm"},
    "non-local": {"graphs": "non-local"},
    "official-baseline": {"head": "official", "graphs": "none"},
    "official-coordinate": {"head": "official", "graphs": "coordinate"},
    "official-feature": {"head": "official", "graphs": "feature"},
    "official-both": {"head": "official", "graphs": "both"},
}
PAPER_ROWS = ("baseline", "coordinate", "feature", "both")
#: the controls that add only pooled context: every graph row is compared with the best of them
POOLING_ROWS = ("global-pool", "ppm")
#: the rows that relate pixels to each other, each compared with the best pooling row
GRAPH_ROWS = ("coordinate", "feature", "both", "non-local")
#: the rows run on a frozen backbone by default: the paper's, the pooling controls, non-local
FROZEN_ROWS = (*PAPER_ROWS, *POOLING_ROWS, "non-local")
#: the datasets of the PASCAL Context benchmark: 59 classes with the background ignored, and 60
#: with the background as class 0
PASCAL_CONTEXT_DATASETS = ("pascal-context", "pascal-context-60")
#: the paper's PASCAL Context comparison: DGCNet (both graphs) only, no ablation rows
PASCAL_CONTEXT_ROWS = ("both",)
LABELS = {
    "baseline": "baseline (head without graphs)",
    "coordinate": "+ coordinate-space GCN",
    "feature": "+ feature-space GCN",
    "both": "+ both (DGCNet)",
    "global-pool": "control: + image-level pooling",
    "ppm": "control: + pyramid pooling (PSPNet bins 1, 2, 3, 6)",
    "non-local": "+ non-local block (full pixel affinity)",
    "official-baseline": "authors' head: baseline (identity graph)",
    "official-coordinate": "authors' head: + coordinate GCN",
    "official-feature": "authors' head: + feature GCN",
    "official-both": "authors' head: + both",
}


def baseline_of(row: str) -> str:
    """The row a row's gain is measured against (same head, graph module = identity)."""
    return "official-baseline" if row.startswith("official-") else "baseline"


def is_pascal_context(dataset: str) -> bool:
    """Whether a config's ``data.dataset`` is one of the PASCAL Context settings."""
    return dataset in PASCAL_CONTEXT_DATASETS


def rows_for(dataset: str, frozen: bool = False) -> tuple[str, ...]:
    """The rows the paper reports for a dataset: on PASCAL Context DGCNet alone
    (:data:`PASCAL_CONTEXT_ROWS`); otherwise the four ablation rows, plus the pooling controls
    and the non-local row (:data:`FROZEN_ROWS`) when heads train on a frozen backbone (a minute
    or so a row; on a GPU preset each row is a whole training run)."""
    if is_pascal_context(dataset):
        return PASCAL_CONTEXT_ROWS
    return FROZEN_ROWS if frozen else PAPER_ROWS


def default_rows(preset: str, overrides: list[str] | None = None) -> tuple[str, ...]:
    """The rows ``dgcn reproduce`` runs on a preset by default: :func:`rows_for` its dataset."""
    cfg = load_config(preset, overrides)
    return rows_for(cfg.data.dataset, bool(cfg.frozen.backbone))


def _paper_results() -> dict[str, Any]:
    return yaml.safe_load((CONFIG_DIR.parent / "paper_results.yaml").read_text())


def paper_numbers(dataset: str = "cityscapes") -> dict[str, float]:
    """The paper's mIoU per row, from experiments/paper_results.yaml.

    Args:
        dataset: a config's ``data.dataset``. PASCAL Context (either setting): ``{"both":
            53.7}``, the row ``pascal_context`` of the file (abstract; R-101, multi-scale;
            setting unconfirmed). Any other: the Cityscapes val ablation rows.
    """
    data = _paper_results()
    if is_pascal_context(dataset):
        row = next(r for r in data["other"] if r["row"] == "pascal_context")
        return {"both": row["miou"]}
    return {r["row"]: r["miou"] for r in data["cityscapes_val_r101"] if r["row"] in PAPER_ROWS}


def paper_column(dataset: str = "cityscapes") -> str:
    """The header of the paper's column in :func:`results_table` for a dataset."""
    if is_pascal_context(dataset):
        return "paper mIoU % (PASCAL Context, R-101 multi-scale; setting unconfirmed)"
    return "paper mIoU % (Cityscapes val, as summarised)"


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def context_miou(per_class: dict[str, float | None]) -> float:
    """Mean IoU over MiniCity's context-ambiguous classes present in ``per_class`` (a fraction)."""
    values = [per_class[n] for n in CONTEXT_CLASSES if per_class.get(n) is not None]
    return statistics.fmean(values) if values else math.nan


def gain(records: list[dict[str, Any]], row: str, key: str = "miou") -> dict[str, float] | None:
    """A row's gain over its baseline in points: mean difference, the pooled std of the two
    rows' seeds, and their ratio (None when the baseline was not run).

    The pooled std is ``sqrt((s_row^2 + s_baseline^2) / 2)``, ``s`` the sample std over seeds.
    """
    return margin(records, row, baseline_of(row), key)


def margin(
    records: list[dict[str, Any]], row: str, reference: str, key: str = "miou"
) -> dict[str, float] | None:
    """A row's margin over another row, as :func:`gain` measures it against the baseline:
    ``{"delta", "pooled_std", "ratio"}`` in points (None when either row was not run, or when
    they are the same row)."""
    ours = [100 * r[key] for r in records if r["row"] == row]
    theirs = [100 * r[key] for r in records if r["row"] == reference]
    if not ours or not theirs or row == reference:
        return None
    (m1, s1), (m0, s0) = _mean_std(ours), _mean_std(theirs)
    pooled = math.sqrt((s1**2 + s0**2) / 2)
    return {
        "delta": m1 - m0,
        "pooled_std": pooled,
        "ratio": (m1 - m0) / pooled if pooled else math.inf,
    }


def _format(values: list[float], seeds: int) -> str:
    mean, std = _mean_std(values)
    return f"{mean:.1f} +- {std:.1f}" if seeds > 1 else f"{mean:.1f}"


def head_parameters(cfg: Config) -> dict[str, int]:
    """The parameters of a row's head and of its context module, the module where the graphs
    go (``head.graph``: the graphs, a pooling control or the non-local block; none for the
    baseline), counted on the row's network built on the meta device (no memory, no weights).

    Every parameter of the head trains, on a frozen backbone as end to end.

    Returns:
        ``{"head_params": n, "context_params": n}``.
    """
    with torch.device("meta"):
        model = build_model(cfg.model.name, cfg.model.num_classes, **model_overrides(cfg, False))
    context = getattr(model.head, "graph", None)
    return {
        "head_params": sum(p.numel() for p in model.head.parameters()),
        "context_params": 0 if context is None else sum(p.numel() for p in context.parameters()),
    }


#: the column of :func:`results_table` with :func:`~dgcn.evaluation.objects.ObjectScore`
OBJECTS_COLUMN = "big-vehicle objects right %"


def results_table(
    records: list[dict[str, Any]], paper: dict[str, float], dataset: str = "cityscapes"
) -> str:
    """Markdown: per row our mIoU (mean +- std over seeds), its gain over the row's baseline
    (and, with several seeds, the gain in pooled standard deviations), the mIoU over the
    context-ambiguous classes, the share of big-vehicle objects right, the parameters of the
    head and of its context module, and the paper's number and gain beside them.

    The objects and parameter columns appear when the records hold them (``object_accuracy``,
    ``head_params``, ``context_params``; results written before they existed do not).

    Args:
        records: one dict per (row, seed), as :func:`read_results` returns them.
        paper: the paper's mIoU per row (:func:`paper_numbers`).
        dataset: the runs' ``data.dataset``; on PASCAL Context the context-classes and objects
            columns (MiniCity's classes) are left out and the paper's column names its
            setting's caveat.
    """
    rows = [r for r in ROWS if any(rec["row"] == r for rec in records)]
    seeds = len({rec["seed"] for rec in records})
    context_column = not is_pascal_context(dataset)
    objects_column = context_column and any(
        rec.get("object_accuracy") is not None for rec in records
    )
    params_columns = any("head_params" in rec for rec in records)
    header = [
        "row",
        f"ours mIoU % ({seeds} seed{'s' if seeds > 1 else ''})",
        "ours delta",
        *(["delta / pooled std"] if seeds > 1 else []),
        *(["context classes mIoU %"] if context_column else []),
        *([OBJECTS_COLUMN] if objects_column else []),
        *(["head params", "context params"] if params_columns else []),
        paper_column(dataset),
        "paper delta",
    ]
    lines = []
    for row in rows:
        mine = [rec for rec in records if rec["row"] == row]
        g = gain(records, row)
        ref = paper.get(row.removeprefix("official-"))
        ref_delta = (
            f"{ref - paper['baseline']:+.1f}"
            if ref is not None and row != baseline_of(row) and "baseline" in paper
            else ""
        )
        context = [100 * context_miou(rec["per_class"]) for rec in mine if "per_class" in rec]
        objects = [
            100 * rec["object_accuracy"] for rec in mine if rec.get("object_accuracy") is not None
        ]
        counted = next((rec for rec in mine if "head_params" in rec), None)
        params = (
            ["", ""]
            if counted is None
            else [f"{counted['head_params']:,}", f"{counted['context_params']:,}"]
        )
        lines.append(
            [
                LABELS[row],
                _format([100 * rec["miou"] for rec in mine], seeds),
                f"{g['delta']:+.1f}" if g else "",
                *([f"{g['ratio']:.1f}" if g else ""] if seeds > 1 else []),
                *([_format(context, seeds) if context else ""] if context_column else []),
                *([_format(objects, seeds) if objects else ""] if objects_column else []),
                *(params if params_columns else []),
                ref if ref is not None else "",
                ref_delta,
            ]
        )
    return markdown_table(header, lines)


def best_row(
    records: list[dict[str, Any]], candidates: tuple[str, ...], key: str = "miou"
) -> str | None:
    """The row of ``candidates`` with the highest mean ``key`` over its seeds (the first of
    them on a tie), None when none of them was run."""
    means = {
        row: statistics.fmean(rec[key] for rec in records if rec["row"] == row)
        for row in candidates
        if any(rec["row"] == row for rec in records)
    }
    return max(means, key=means.__getitem__) if means else None


def pooling_table(records: list[dict[str, Any]]) -> str:
    """Markdown: each graph row's margin over the best pooling row, in mIoU points (and, with
    several seeds, in pooled standard deviations, as :func:`gain`), and that of ``both`` over
    the better single graph (coordinate or feature).

    Pooling gives every pixel the same summary of the image; what the graphs (and the non-local
    block) add beyond it is what relating pixels to each other is worth.

    Returns:
        the table, or "" when no pooling row (:data:`POOLING_ROWS`) or no graph row
        (:data:`GRAPH_ROWS`) was run.
    """
    pooling = best_row(records, POOLING_ROWS)
    graphs = [r for r in GRAPH_ROWS if any(rec["row"] == r for rec in records)]
    if pooling is None or not graphs:
        return ""
    seeds = len({rec["seed"] for rec in records})
    single = best_row(records, ("coordinate", "feature"))
    pairs = []
    for row in graphs:
        pairs.append((row, pooling, "best pooling row"))
        if row == "both" and single is not None:
            pairs.append((row, single, "better single graph"))
    lines = []
    for row, reference, why in pairs:
        m = margin(records, row, reference)
        lines.append(
            [
                LABELS[row],
                f"{LABELS[reference]} ({why})",
                f"{m['delta']:+.1f}",
                *([f"{m['ratio']:.1f}"] if seeds > 1 else []),
            ]
        )
    header = ["row", "against", "delta", *(["delta / pooled std"] if seeds > 1 else [])]
    return markdown_table(header, lines)


def class_names_of(records: list[dict[str, Any]]) -> list[str]:
    """The class names of the records' ``per_class`` in their order (the Cityscapes names
    when they hold none)."""
    names = list(dict.fromkeys(n for rec in records for n in rec.get("per_class", {})))
    return names or list(CLASS_NAMES)


def per_class_table(
    records: list[dict[str, Any]], marked: tuple[str, ...] = CONTEXT_CLASSES
) -> str:
    """Markdown: IoU % per class (mean over seeds) for every row; * marks the ``marked``
    classes (MiniCity's context classes by default)."""
    rows = [r for r in ROWS if any(rec["row"] == r for rec in records)]
    lines = []
    for name in class_names_of(records):
        cells = []
        for row in rows:
            values = [
                100 * rec["per_class"][name]
                for rec in records
                if rec["row"] == row and rec["per_class"].get(name) is not None
            ]
            cells.append(f"{statistics.fmean(values):.1f}" if values else "n/a")
        lines.append([f"{name} *" if name in marked else name, *cells])
    return markdown_table(["class", *rows], lines)


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
