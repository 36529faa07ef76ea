"""The files of a ``dgcn reproduce``: ``results.json`` (one record per row and seed),
``results.csv``, ``results.md`` (the table beside the paper's, the margins over the pooling
controls, IoU per class) and the figures; :func:`read_results` reads them back, and
:func:`collect_results` the single runs committed beside them.

They are rewritten after every row that finishes, so an interrupted table holds every row
done so far; the figures are drawn once every row is done.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import torch

from dgcn.ablation import (
    LABELS,
    OBJECTS_COLUMN,
    ROWS,
    class_names_of,
    is_pascal_context,
    paper_numbers,
    per_class_table,
    pooling_table,
    results_table,
)
from dgcn.checkpoint import load_for_inference
from dgcn.datasets.build import build_dataset
from dgcn.datasets.minicity import CONTEXT_CLASSES
from dgcn.errors import DgcnError
from dgcn.evaluation.objects import BIG_VEHICLES, MIN_PIXELS
from dgcn.evaluation.prediction import predict
from dgcn.fileio import write_text_atomic
from dgcn.optional import available, note_skipped
from dgcn.training.rundir import read_metrics
from dgcn.viz.predictions import iou_bars, prediction_grid, row_curves, save_figure

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


def collect_results(
    folder: str | Path,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The results committed one file per run in ``folder`` (``experiments/results/*.json``,
    a GPU run's record or list of records), split by dataset.

    Args:
        folder: the folder; its subfolders (a ``dgcn reproduce`` table each, such as
            ``minicity/``) are not read.

    Returns:
        ``(ablation, pascal_context)``: the records with an mIoU that name an ablation ``row``
        (Cityscapes), and those whose ``dataset`` is PASCAL Context, each with ``file``, its
        file's name, added; files in sorted order. Entries that are no record or have no mIoU
        are skipped.

    Raises:
        DgcnError: a file is not readable JSON.
    """
    ablation: list[dict[str, Any]] = []
    pascal: list[dict[str, Any]] = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            content = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DgcnError(f"{path} is not readable JSON ({err})") from err
        for record in content if isinstance(content, list) else [content]:
            if not isinstance(record, dict) or record.get("miou") is None:
                continue
            if is_pascal_context(record.get("dataset", "")):
                pascal.append({**record, "file": path.name})
            elif "row" in record:
                ablation.append({**record, "file": path.name})
    return ablation, pascal


def _figures(
    out: Path,
    records: list[dict[str, Any]],
    count: int = 4,
    marked: tuple[str, ...] = CONTEXT_CLASSES,
) -> list[Path]:
    """Prediction grids per row, validation-mIoU curves of every row (first seed) and per-class
    IoU bars (both vs baseline, the ``marked`` classes marked); none without matplotlib (one
    note says so)."""
    if not available("matplotlib"):
        note_skipped(
            "the table's figures",
            instead="the numbers are in results.md; once it is installed, the same command with "
            "the same --out draws them",
        )
        return []
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
        lines = read_metrics(log, "and run the report again")
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


def write_report(
    out: Path,
    records: list[dict[str, Any]],
    preset: str,
    seeds: list[int] | tuple[int, ...],
    minutes: float,
    pending: int = 0,
) -> None:
    """Write results.json/.csv/.md of ``records`` into ``out``; with ``pending`` = 0 (every
    row done) also the figures, and print the tables."""
    final = pending == 0
    dataset = records[0]["dataset"]
    pascal = is_pascal_context(dataset)
    marked = () if pascal else CONTEXT_CLASSES  # MiniCity's context classes mean nothing there
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
                "" if rec["seconds"] is None else f"{rec['seconds']:.1f}",  # a joined run
                *("" if v is None else f"{v:.4f}" for v in per_class),
            ]
        )
    write_text_atomic(out / "results.csv", buffer.getvalue())
    write_text_atomic(out / RESULTS, json.dumps(records, indent=2) + "\n")
    figures = _figures(out, records, marked=marked) if final else []
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
        + (", ".join(p.name for p in figures) or "none (matplotlib is not installed)")
        + "; each run's own curves.png and checkpoint last.pt in its folder."
        if final
        else f"Unfinished: {pending} more row(s) to train; figures when every row is done.",
    ]
    write_text_atomic(out / "results.md", "\n".join(body) + "\n")
    if not final:
        return
    print()
    print(table)
    if against:
        print()
        print(against)
    print(note)
    print(
        f"results: {out / 'results.md'}, {out / 'results.csv'}; figures: "
        f"{', '.join(str(p) for p in figures) or 'none (matplotlib is not installed)'}"
    )
