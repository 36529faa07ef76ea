"""Figures of results: prediction grids, IoU bars, the confusion matrix, training curves.

Each function returns a ``matplotlib.figure.Figure`` built without pyplot, so it renders in a
notebook, in a test and on a headless server alike; :func:`save_figure` writes it as a PNG.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dgcn.datasets.labels import CLASS_NAMES, IGNORE_INDEX, PALETTE
from dgcn.fileio import atomic_path
from dgcn.viz.palette import MAX_DPI, _numpy, colorize, denormalize, error_map, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_PANEL_WIDTH = 2.4  # inches per image panel


def _as_rgb(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """A normalised [3, H, W] image or an 8-bit [H, W, 3] one -> [H, W, 3] uint8."""
    array = _numpy(image)
    if array.ndim == 3 and array.shape[-1] == 3 and array.dtype == np.uint8:
        return array
    return denormalize(array)


def prediction_grid(
    images: torch.Tensor | Sequence[np.ndarray | torch.Tensor],
    targets: torch.Tensor | Sequence[np.ndarray | torch.Tensor],
    preds: torch.Tensor | Sequence[np.ndarray | torch.Tensor],
    titles: Sequence[str] | None = None,
    max_rows: int = 8,
    palette: np.ndarray | None = None,
) -> Figure:
    """One row per sample: image | ground truth | prediction | errors.

    The errors panel is grey where the prediction is right, red where it is wrong and black
    where the ground truth is ignored; its title gives the fraction of correct pixels.

    Args:
        images: normalised images (or 8-bit RGB [H, W, 3] arrays).
        targets: ground-truth train ids, 255 = ignore.
        preds: predicted train ids.
        titles: one title per sample (e.g. the file name), shown over the image.
        max_rows: draw at most this many samples.
        palette: the colours of the train ids (``colorize``); default Cityscapes.

    Shape:
        images: [N, 3, H, W], targets: [N, H, W], preds: [N, H, W]
    """
    rows = min(len(images), len(targets), len(preds), max_rows)
    if rows == 0:
        raise ValueError("prediction_grid needs at least one sample")
    height, width = _numpy(targets[0]).shape[-2:]
    panel_height = _PANEL_WIDTH * height / width
    fig = new_figure((4 * _PANEL_WIDTH, rows * (panel_height + 0.35)))
    axes = fig.subplots(rows, 4, squeeze=False)
    for i in range(rows):
        target, pred = _numpy(targets[i]), _numpy(preds[i])
        evaluated = target != IGNORE_INDEX
        correct = (pred == target) & evaluated
        accuracy = correct.sum() / max(int(evaluated.sum()), 1)
        panels = [
            (_as_rgb(images[i]), titles[i] if titles is not None else "image"),
            (colorize(target, palette), "ground truth"),
            (colorize(pred, palette), "prediction"),
            (error_map(pred, target), f"errors ({accuracy:.1%} correct)"),
        ]
        for ax, (picture, title) in zip(axes[i], panels, strict=True):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    return fig


def _class_order(names: Sequence[str]) -> list[str]:
    known = {name: i for i, name in enumerate(CLASS_NAMES)}
    return sorted(names, key=lambda n: (known.get(n, len(known)), list(names).index(n)))


def iou_bars(
    per_class: Mapping[str, float | None],
    reference: Mapping[str, float] | None = None,
    title: str = "",
    reference_name: str = "reference",
    marked: Sequence[str] = (),
) -> Figure:
    """Horizontal bars of IoU per class, in the Cityscapes class order, top to bottom.

    Args:
        per_class: IoU as a fraction by class name (``summary()["per_class"]``); None draws
            no bar and writes "n/a".
        reference: optional IoUs in percent (as papers print them), drawn as grey bars beside.
        title: the figure's title; the mIoU of ``per_class`` is appended.
        reference_name: the legend's label of the reference bars.
        marked: classes whose label gets a ``*`` (e.g. MiniCity's context classes).
    """
    names = _class_order(list(per_class))
    ours = np.array([np.nan if per_class[n] is None else per_class[n] * 100 for n in names])
    y = np.arange(len(names))
    fig = new_figure((6.0, 0.26 * len(names) + 1.2))
    ax = fig.add_subplot()
    height = 0.4 if reference is not None else 0.8
    offset = height / 2 if reference is not None else 0.0
    colors = [
        PALETTE[CLASS_NAMES.index(n)] / 255 if n in CLASS_NAMES else (0.3, 0.4, 0.7) for n in names
    ]
    ax.barh(y - offset, np.nan_to_num(ours), height, color=colors, edgecolor="black", lw=0.4)
    for yi, value in zip(y, ours, strict=True):
        text = "n/a" if math.isnan(value) else f"{value:.1f}"
        ax.text((0 if math.isnan(value) else value) + 1, yi - offset, text, va="center", fontsize=7)
    valid = ours[~np.isnan(ours)]
    miou = float(valid.mean()) if valid.size else math.nan
    if reference is not None:
        refs = np.array([reference.get(n, np.nan) for n in names], dtype=float)
        ax.barh(y + offset, np.nan_to_num(refs), height, color="0.75", label=reference_name)
        ax.legend(loc="lower right", fontsize=7)
    if not math.isnan(miou):
        ax.axvline(miou, color="black", ls="--", lw=0.8)
    ax.set_yticks(y, [f"{n} *" if n in marked else n for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("IoU (%)")
    miou_text = "n/a" if math.isnan(miou) else f"{miou:.1f}"
    ax.set_title(f"{title} (mIoU {miou_text})" if title else f"mIoU {miou_text}", fontsize=10)
    return fig


def confusion_heatmap(
    matrix: np.ndarray | torch.Tensor,
    class_names: Sequence[str] = CLASS_NAMES,
    log: bool = True,
) -> Figure:
    """The confusion matrix with every row divided by its sum (rows: ground truth).

    Cell (t, p) is the fraction of the pixels of class t predicted as p, so the diagonal is
    each class's recall. Empty rows stay empty.

    Args:
        matrix: pixel counts, rows = ground truth, columns = prediction.
        class_names: K names.
        log: logarithmic colours (1e-4 .. 1), which show the small confusions; else linear.

    Shape:
        matrix: [K, K]
    """
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize

    counts = _numpy(matrix).astype(np.float64)
    k = counts.shape[0]
    if counts.shape != (k, k) or len(class_names) != k:
        raise ValueError(f"matrix {counts.shape} and {len(class_names)} class names disagree")
    rows = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    side = 0.28 * k + 2.5
    fig = new_figure((side + 0.8, side))
    ax = fig.add_subplot()
    norm = LogNorm(vmin=1e-4, vmax=1, clip=True) if log else Normalize(vmin=0, vmax=1)
    shown = np.ma.masked_less_equal(fractions, 0) if log else fractions
    cmap = colormaps["viridis"].with_extremes(bad="white")
    image = ax.imshow(shown, cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the row")
    return fig


def _iteration(record: Mapping[str, Any], index: int) -> float:
    for key in ("iteration", "iter", "step"):
        if key in record:
            return record[key]
    return index


def training_curves(records: Sequence[Mapping[str, Any]]) -> Figure:
    """Loss, learning rate and validation mIoU (%) against the iteration, one panel each.

    Args:
        records: the lines of a training log, e.g. ``{"iteration": 100, "loss": 0.8,
            "loss_main": 0.6, "loss_aux": 0.5, "lr": 0.009}`` and evaluation records
            ``{"iteration": 1000, "miou": 0.62}`` (a fraction, as the log keeps it; drawn in
            percent, 62.0); other keys are ignored. ``loss_main`` and ``loss_aux`` are drawn
            when present; panels without data are left out.
    """
    train = [(_iteration(r, i), r) for i, r in enumerate(records) if r.get("loss") is not None]
    evals = [(_iteration(r, i), r) for i, r in enumerate(records) if r.get("miou") is not None]
    lrs = [(it, r["lr"]) for it, r in train if r.get("lr") is not None]
    panels = [name for name, data in (("loss", train), ("lr", lrs), ("miou", evals)) if data]
    fig = new_figure((4.0 * max(len(panels), 1), 3.0))
    if not panels:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no records", ha="center", va="center")
        ax.set_axis_off()
        return fig
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if panel == "loss":
            for key, style in (("loss", "-"), ("loss_main", "--"), ("loss_aux", ":")):
                points = [(it, r[key]) for it, r in train if r.get(key) is not None]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, style, lw=1.2, label=key)
            ax.set_ylabel("loss")
            ax.legend(fontsize=8)
        elif panel == "lr":
            xs, ys = zip(*lrs, strict=True)
            ax.plot(xs, ys, color="tab:green", lw=1.2)
            ax.set_ylabel("learning rate")
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        else:
            xs = [it for it, _ in evals]
            ys = [100 * r["miou"] for _, r in evals]  # the log's fraction, in %
            ax.plot(xs, ys, "o-", color="tab:red", lw=1.2, ms=4)
            ax.set_ylabel("validation mIoU (%)")
    return fig


def row_curves(curves: Mapping[str, Sequence[tuple[float, float]]], title: str = "") -> Figure:
    """One line per run: ``{label: [(iteration, value), ...]}`` (e.g. validation mIoU %)."""
    fig = new_figure((6.5, 3.6))
    ax = fig.add_subplot()
    for label, points in curves.items():
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, "o-", lw=1.2, ms=3, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation mIoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = MAX_DPI) -> Path:
    """Write a figure as a PNG, atomically; dpi is capped at 100. Returns the path.

    Args:
        fig: the figure.
        path: the PNG to write (missing folders are created).
        dpi: dots per inch, at most 100.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=min(dpi, MAX_DPI), facecolor="white")
    return path


__all__ = [
    "confusion_heatmap",
    "iou_bars",
    "prediction_grid",
    "save_figure",
    "training_curves",
]
