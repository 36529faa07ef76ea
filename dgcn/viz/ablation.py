"""An ablation's figures: its gains, one group of bars per row and one bar per series (the
paper's gains and ours side by side, the rows that only the last series ran, controls and
rivals, hatched on the right), and the published numbers of one benchmark on one axis, a range
where a source gives one.

matplotlib is imported only when the figure is drawn (:func:`~dgcn.viz.palette.new_figure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from dgcn.viz.palette import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: the width of one bar, in units of the distance between two rows
WIDTH = 0.27

#: ``(name, values, errors or None, colour)``: one series of :func:`gain_bars`
Series = tuple[str, Sequence[float | None], Sequence[float | None] | None, str]


def _floats(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def gain_bars(
    series: Sequence[Series],
    labels: Sequence[str],
    extra: Sequence[bool],
    reference: tuple[float, str] | None = None,
    *,
    extra_name: str = "controls, rival",
    title: str = "",
) -> Figure:
    """Gains over a baseline, one group of bars per row and one bar per series.

    Every series has a bar on every ordinary row, side by side; a row marked ``extra`` (a
    control or rival that only the last series ran) has the last series' bar alone, centred,
    hatched in that series' colour, right of a grey vertical line. Each drawn bar carries its
    value (``+1.5``), or "n/a" where the value is NaN or None (drawn as 0).

    Args:
        series: ``(name, values, errors, colour)`` each: one value per row (NaN or None: no
            number), errors drawn as error bars (or None).
        labels: the x tick label of each row.
        extra: True for each row that only the last series has; these come after the others.
        reference: ``(value, label)`` of a dashed horizontal line, e.g. the gain a row must
            clear, or None.
        extra_name: what the hatched bars are, in the legend after the last series' name.
        title: the axes' title.

    Raises:
        ValueError: when an extra row comes before an ordinary one, or a series' length is not
            the number of rows.
    """
    extra = np.asarray(extra, dtype=bool)
    ordinary = ~extra
    if len(extra) != len(labels):
        raise ValueError(f"{len(extra)} extra flags for {len(labels)} rows")
    if extra.any() and ordinary.any() and np.flatnonzero(extra)[0] < np.flatnonzero(ordinary)[-1]:
        raise ValueError("the extra rows must come after the ordinary ones")
    fig = new_figure((7.8, 3.6))
    ax = fig.add_subplot()
    last = len(series) - 1
    for k, (name, values, errors, colour) in enumerate(series):
        values = _floats(values)
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} rows")
        error = None if errors is None else np.nan_to_num(_floats(errors))
        shown = np.nan_to_num(values)
        x = np.arange(len(labels)) + (k - last / 2) * WIDTH * ordinary  # extra rows: centred
        kept = ordinary | (k == last)
        hatched = dict(color="white", edgecolor=colour, hatch="///", lw=0.8)
        for mask, style, label in [
            (ordinary, dict(color=colour), name),
            (kept & extra, hatched, f"{name}: {extra_name}"),
        ]:
            if mask.any():
                yerr = None if error is None else error[mask]
                ax.bar(x[mask], shown[mask], WIDTH, yerr=yerr, capsize=2, label=label, **style)
        for i in np.flatnonzero(kept):
            text = "n/a" if np.isnan(values[i]) else f"{values[i]:+.1f}"
            top = max(shown[i] + (0 if error is None else error[i]), 0)
            ax.text(x[i], top + 0.05, text, ha="center", va="bottom", fontsize=7)
    if reference is not None:
        ax.axhline(reference[0], color="0.35", ls="--", lw=0.8, label=reference[1])
    ax.axhline(0, color="black", lw=0.6)
    if extra.any():
        ax.axvline(np.flatnonzero(extra)[0] - 0.5, color="0.6", lw=0.6)
    ax.set_ylim(min(0, ax.get_ylim()[0]), 1.45 * ax.get_ylim()[1])
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("mIoU gain over the baseline (points)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def range_bars(
    labels: Sequence[str],
    low: Sequence[float],
    high: Sequence[float],
    start: float,
    stop: float,
    xlabel: str = "",
) -> Figure:
    """Numbers on one horizontal axis from ``start`` to ``stop``, one bar each, top to bottom.

    A bar is grey from ``start`` up to its low end and blue from there to its high end (no blue
    for a single number, ``low == high``), and is labelled ``80.3`` or ``80.3 to 80.4``.

    Args:
        labels: one label per number (e.g. the row and its source).
        low: each number, or the low end of its range.
        high: the high end of each range (the number itself when it is not a range).
        start: where the axis, and the grey bars, begin.
        stop: where the axis ends.
        xlabel: the axis' label.
    """
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    fig = new_figure((7.0, 0.3 * len(labels) + 0.9))
    ax = fig.add_subplot()
    y = np.arange(len(labels))
    ax.barh(y, low - start, left=start, color="0.75", height=0.6)
    ax.barh(y, high - low, left=low, color="tab:blue", height=0.6)
    for yi, lo, hi in zip(y, low, high, strict=True):
        text = f"{lo:g}" if lo == hi else f"{lo:g} to {hi:g}"
        ax.text(hi + 0.3, yi, text, va="center", fontsize=7)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(start, stop)
    ax.set_xlabel(xlabel)
    return fig
