"""``dgcn reproduce``: the paper's ablation table (baseline, + coordinate GCN, + feature GCN,
both), trained and evaluated with one preset, written beside the paper's numbers.

With no arguments it runs the CPU preset ``minicity-cpu`` on MiniCity (generated if absent):
the whole pipeline in a few minutes, numbers that say nothing about Cityscapes but show the
relative effect of the graphs on a city built so that context matters. With
``--preset cityscapes-paper --data-root <cityscapes>`` on a GPU it is the real reproduction.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from dgcn.config import CONFIG_DIR, apply_overrides, distributed_env, load_config
from dgcn.datasets.labels import CLASS_NAMES
from dgcn.fileio import write_text_atomic
from dgcn.markdown import markdown_table

#: the ablation rows as model overrides of the preset's network
ROWS: dict[str, dict[str, str]] = {
    "baseline": {"head": "fcn"},
    "coordinate": {"graphs": "coordinate"},
    "feature": {"graphs": "feature"},
    "both": {"graphs": "both"},
}
LABELS = {
    "baseline": "baseline (dilated FCN)",
    "coordinate": "+ coordinate-space GCN",
    "feature": "+ feature-space GCN",
    "both": "+ both (DGCNet)",
}


def paper_numbers() -> dict[str, float]:
    """The paper's Cityscapes val mIoU per ablation row, from experiments/paper_results.yaml."""
    data = yaml.safe_load((CONFIG_DIR.parent / "paper_results.yaml").read_text())
    return {r["row"]: r["miou"] for r in data["cityscapes_val_r101"] if r["row"] in ROWS}


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def results_table(records: list[dict[str, Any]], paper: dict[str, float]) -> str:
    """Markdown: our mIoU (mean +- std over seeds) and delta beside the paper's."""
    rows = [r for r in ROWS if any(rec["row"] == r for rec in records)]
    ours = {r: _mean_std([100 * rec["miou"] for rec in records if rec["row"] == r]) for r in rows}
    seeds = sorted({rec["seed"] for rec in records})
    header = [
        "row",
        f"ours mIoU % ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})",
        "ours delta",
        "paper mIoU % (Cityscapes val)",
        "paper delta",
    ]
    lines = []
    for row in rows:
        mean, std = ours[row]
        text = f"{mean:.1f} +- {std:.1f}" if len(seeds) > 1 else f"{mean:.1f}"
        delta = f"{mean - ours['baseline'][0]:+.1f}" if "baseline" in ours else ""
        ref = paper.get(row)
        ref_delta = (
            f"{ref - paper['baseline']:+.1f}" if ref is not None and row != "baseline" else ""
        )
        lines.append(
            [
                LABELS[row],
                text,
                delta if row != "baseline" else "",
                ref if ref is not None else "",
                ref_delta,
            ]
        )
    return markdown_table(header, lines)


def _figures(out: Path, records: list[dict[str, Any]], count: int = 4) -> list[Path]:
    """Prediction grids per row (first seed) and per-class IoU bars (baseline vs both)."""
    import torch

    from dgcn.datasets.build import build_dataset
    from dgcn.evaluation.inference import predict
    from dgcn.inference_setup import load_for_inference
    from dgcn.viz.predictions import iou_bars, prediction_grid, save_figure

    written = []
    first_seed = min(rec["seed"] for rec in records)
    for rec in records:
        if rec["seed"] != first_seed:
            continue
        model, cfg = load_for_inference(Path(rec["run_dir"]) / "last.pt")
        dataset = build_dataset(cfg.data, cfg.data.val_split, train=False)
        items = [dataset[i] for i in range(min(count, len(dataset)))]
        images = torch.stack([im for im, _ in items])
        targets = torch.stack([m for _, m in items])
        preds = predict(model, images, **cfg.eval.inference_kwargs()).argmax(1)
        path = out / f"predictions-{rec['row']}.png"
        save_figure(prediction_grid(images, targets, preds), path)
        written.append(path)
    by_row = {rec["row"]: rec for rec in records if rec["seed"] == first_seed}
    if "both" in by_row:
        reference = by_row.get("baseline", {}).get("per_class")
        fig = iou_bars(
            by_row["both"]["per_class"],
            reference,
            title="per-class IoU: both graphs (bars) vs baseline (reference)",
        )
        save_figure(fig, out / "per-class-iou.png")
        written.append(out / "per-class-iou.png")
    return written


def reproduce(
    preset: str = "minicity-cpu",
    data_root: str | None = None,
    seeds: list[int] | tuple[int, ...] = (0,),
    rows: list[str] | tuple[str, ...] = tuple(ROWS),
    out: str | Path | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    device: str = "auto",
) -> Path:
    """Train and evaluate every row for every seed; write results.md/.csv and figures.

    Args:
        preset: config preset the rows start from.
        data_root: dataset root (overrides ``data.root``).
        seeds: training seeds; several give mean +- std.
        rows: which of baseline, coordinate, feature, both.
        out: output folder (default ``runs/reproduce/<timestamp>``; never reused).
        overrides: ``key=value`` config overrides for every row.

    Returns:
        the output folder.
    """
    from dgcn.training.loop import RunDirError, fit

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out or f"runs/reproduce/{stamp}")
    main = distributed_env()["rank"] == 0
    if main and out.exists() and any(out.iterdir()):
        raise RunDirError(f"{out} already holds results; choose another --out")
    start = time.perf_counter()
    records = []
    for seed in seeds:
        for row in rows:
            cfg = load_config(preset, overrides)
            apply_overrides(cfg, {"model": {"overrides": ROWS[row]}, "train": {"seed": seed}})
            if data_root:
                cfg.data.root = data_root
            cfg.name = f"{row}-seed{seed}"
            run_start = time.perf_counter()
            summary = fit(cfg, out / cfg.name, progress=progress, device=device)
            records.append(
                {
                    "row": row,
                    "seed": seed,
                    "miou": summary["miou"],
                    "pixel_accuracy": summary["pixel_accuracy"],
                    "per_class": summary["per_class"],
                    "seconds": time.perf_counter() - run_start,
                    "run_dir": str(out / cfg.name),
                    "preset": preset,
                    "model": cfg.model.name,
                    "overrides": cfg.model.overrides,
                }
            )
    if not main:
        return out
    paper = paper_numbers()
    table = results_table(records, paper)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["row", "seed", "miou", "pixel_accuracy", "paper_miou", "seconds", *CLASS_NAMES]
    )
    for rec in records:
        per_class = [rec["per_class"].get(name) for name in CLASS_NAMES]
        writer.writerow(
            [
                rec["row"],
                rec["seed"],
                f"{rec['miou']:.4f}",
                f"{rec['pixel_accuracy']:.4f}",
                paper.get(rec["row"], ""),
                f"{rec['seconds']:.1f}",
                *("" if v is None else f"{v:.4f}" for v in per_class),
            ]
        )
    write_text_atomic(out / "results.csv", buffer.getvalue())
    write_text_atomic(out / "results.json", json.dumps(records, indent=2) + "\n")
    figures = _figures(out, records)
    minutes = (time.perf_counter() - start) / 60
    note = (
        f"Preset `{preset}`, seeds {list(seeds)}, {minutes:.1f} min in all. Ours: mIoU on the "
        "preset's validation split; paper: Cityscapes val, ResNet-101 (paper, as summarised). "
        "MiniCity numbers measure the relative effect of the graphs on a synthetic city, not "
        "Cityscapes accuracy."
    )
    body = [
        f"# Ablation: {preset}",
        "",
        table,
        "",
        note,
        "",
        "Figures: "
        + ", ".join(p.name for p in figures)
        + "; training curves in each run's curves.png.",
    ]
    write_text_atomic(out / "results.md", "\n".join(body) + "\n")
    print()
    print(table)
    print(note)
    print(
        f"results: {out / 'results.md'}, {out / 'results.csv'}; figures: "
        f"{', '.join(str(p) for p in figures)}"
    )
    return out
