"""The rows of the ablation table and the tables of their results: which model overrides make
each row, which rows a preset runs, the paper's numbers beside them, and the markdown tables
(mIoU with spread and gain, the graphs against the best pooling row, IoU per class) that
:mod:`dgcn.reproduce` writes and notebook 08 prints from committed results.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch
import yaml

from dgcn.config import CONFIG_DIR, Config, load_config, model_overrides
from dgcn.datasets.labels import CLASS_NAMES
from dgcn.datasets.minicity import CONTEXT_CLASSES
from dgcn.markdown import markdown_table
from dgcn.models import build_model

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
#: the rows trained end to end by default (on a GPU): the paper's and the image-level pooling
#: control, which on the CPU ablation took most of the graphs' gain
GPU_ROWS = (*PAPER_ROWS, "global-pool")
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
    or so a row), the image-level pooling control (:data:`GPU_ROWS`) when each row is a whole
    training run."""
    if is_pascal_context(dataset):
        return PASCAL_CONTEXT_ROWS
    return FROZEN_ROWS if frozen else GPU_ROWS


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
        model = build_model(cfg.model.name, cfg.num_classes, **model_overrides(cfg, False))
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
