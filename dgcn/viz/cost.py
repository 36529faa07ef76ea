"""The cost of context as a figure: time and memory of each context module against the number
of pixels, on log-log axes (the records of ``benchmarks/context_cost.py``).

matplotlib is imported only when the figure is drawn (:func:`~dgcn.viz.palette.new_figure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from dgcn.viz.palette import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: the panels of :func:`context_cost_figure`: record key, y label, factor from the key's unit
PANELS = (
    ("cpu_seconds", "CPU forward+backward time (ms)", 1000.0),
    ("cpu_peak_mib", "CPU peak memory, fp32 (MiB)", 1.0),
    ("bf16_activation_mib", "CUDA bf16 activations saved (MiB)", 1.0),
)


def context_cost_figure(records: Sequence[Mapping], title: str = "") -> Figure:
    """Time and memory per context module against the number of pixels N, log-log.

    One panel per measure of :data:`PANELS` (CPU time, CPU peak memory, bf16 activation
    memory), one line per module (a value that is None, i.e. not measured, is left out),
    dotted verticals at the named input sizes, and two dashed reference slopes, ``N`` and
    ``N^2``, through the largest value at the smallest N of each panel: a module whose line
    runs parallel to ``N`` grows linearly with the image, one parallel to ``N^2`` (the
    non-local block) quadratically.

    Args:
        records: ``{"module", "pixels", "size", "cpu_seconds", "cpu_peak_mib",
            "bf16_activation_mib"}`` each (the ``records`` of ``context_cost_cpu.json``).
        title: a title over the panels (e.g. the channels and batch of the measurement).
    """
    fig = new_figure((13.5, 4.6))
    axes = fig.subplots(1, len(PANELS))
    modules = list(dict.fromkeys(r["module"] for r in records))
    sizes = {r["pixels"]: r.get("size", "") for r in records}
    for ax, (key, label, factor) in zip(axes, PANELS, strict=True):
        for module in modules:
            points = sorted(
                (r["pixels"], factor * r[key])
                for r in records
                if r["module"] == module and r.get(key) is not None
            )
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, "o-", lw=1.4, ms=4, label=module)
        _reference_slopes(ax, [(r["pixels"], factor * r[key]) for r in records if r.get(key)])
        for pixels, name in sizes.items():
            ax.axvline(pixels, color="0.7", ls=":", lw=0.8)
            ax.annotate(
                name,
                (pixels, 1),
                xycoords=("data", "axes fraction"),
                xytext=(2, -4),
                textcoords="offset points",
                fontsize=7,
                color="0.4",
                va="top",
                rotation=90,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pixels N of the feature map (h x w at stride 8)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both", lw=0.5)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _reference_slopes(ax, points: list[tuple[float, float]]) -> None:
    """Dashed ``N`` and ``N^2`` lines through the largest value at the smallest N."""
    if len({x for x, _ in points}) < 2:
        return
    low, high = min(x for x, _ in points), max(x for x, _ in points)
    anchor = max(y for x, y in points if x == low)
    for power, style, name in ((1, "--", "reference: ∝ N"), (2, "-.", "reference: ∝ N²")):
        ends = [anchor * (x / low) ** power for x in (low, high)]
        ax.plot([low, high], ends, style, color="0.45", lw=1, label=name)


__all__ = ["context_cost_figure"]
