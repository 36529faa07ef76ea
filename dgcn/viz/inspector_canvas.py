"""The widget's redraw: one figure per layout, reused, and the PNGs of recent states.

:func:`~dgcn.viz.inspector_draw.render` builds a figure from nothing: its axes and their ticks,
then the constrained layout, which measures every text, take most of its time. The widget
redraws at every change of a control, so :class:`Canvas` keeps the figure of each layout (the
layers shown, the pixel's crosses, the graphs' row, the legend's shape) and, when a state of
that layout comes, changes only what a state changes: the pictures, the graph maps and their
colour scales, the bars, the titles, the legend and the crosses. The layout its first drawing
found is kept (the layout engine is switched off after it). The PNGs of the last states are
kept too, so going back to a state costs nothing. Neither runs the model: the arrays of
:func:`~dgcn.viz.inspector_compute.compute` hold everything.

Used by :func:`dgcn.viz.inspector.inspector` (notebooks/07_evaluation).
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from dgcn.viz.inspector_compute import InspectorData, InspectorState, describe
from dgcn.viz.inspector_draw import (
    bar_colors,
    draw_legend,
    draw_state,
    figure_size,
    graph_views,
    graphs_shown,
    layers,
    legend_classes,
    legend_shape,
    title,
)
from dgcn.viz.palette import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Canvas:
    """Draws states of one :class:`InspectorData` into reused figures, as the widget shows them.

    Args:
        data: from :func:`~dgcn.viz.inspector_compute.compute`.
        dpi: the resolution of the PNGs.
        cache: how many states' PNGs are kept (the most recently shown).
    """

    def __init__(self, data: InspectorData, dpi: float = 90, cache: int = 32) -> None:
        self.data, self.dpi, self.cache = data, dpi, cache
        self._figures: dict[tuple, tuple[Figure, dict[str, Any]]] = {}
        self._pngs: OrderedDict[InspectorState, bytes] = OrderedDict()
        self.draws = 0  # PNGs drawn (not taken from the kept ones)

    def layout(self, state: InspectorState) -> tuple:
        """What fixes a state's figure: states with the same layout share one figure."""
        width, _ = figure_size(self.data, state)
        legend = legend_shape(self.data, state, width)
        return state.show, state.pixel is not None, graphs_shown(self.data, state), legend

    def figure(self, state: InspectorState) -> Figure:
        """The figure of this layout, showing ``state`` (drawn the first time, else updated)."""
        key = self.layout(state)
        if key not in self._figures:
            fig = new_figure(figure_size(self.data, state))
            self._figures[key] = fig, draw_state(fig, self.data, state)
            fig.draw_without_rendering()  # the constrained layout, once: later states keep it
            fig.set_layout_engine(None)  # (no engine: savefig's layout pass is skipped too)
        else:
            fig, handles = self._figures[key]
            update(handles, self.data, state)
        return fig

    def png(self, state: InspectorState) -> bytes:
        """The state as PNG bytes (the widget's picture)."""
        if state in self._pngs:
            self._pngs.move_to_end(state)
            return self._pngs[state]
        buffer = io.BytesIO()  # zlib level 1: the fastest, a somewhat larger PNG
        options = {"format": "png", "dpi": self.dpi, "pil_kwargs": {"compress_level": 1}}
        self.figure(state).savefig(buffer, **options)
        picture = buffer.getvalue()
        self.draws += 1
        self._pngs[state] = picture
        while len(self._pngs) > self.cache:
            self._pngs.popitem(last=False)
        return picture

    def cached(self, state: InspectorState) -> bool:
        """Whether the state's PNG is kept (showing it again draws nothing)."""
        return state in self._pngs

    def width(self, state: InspectorState) -> int:
        """The PNG's width in pixels (the widget shows it at its own size)."""
        return round(figure_size(self.data, state)[0] * self.dpi)


def update(handles: dict[str, Any], data: InspectorData, state: InspectorState) -> None:
    """Show ``state`` in the artists :func:`~dgcn.viz.inspector_draw.draw_state` drew for a
    state of the same layout: what a fresh drawing of it would show, from the same values."""
    info = describe(data, state)
    for name, picture in layers(data, state).items():
        handles["layers"][name].set_data(picture)
    if state.pixel is not None:
        y, x = state.pixel
        for marker in handles["markers"]:
            marker.set_data([x], [y])
    handles["title"].set_text(title(data, state, info))
    shown = legend_classes(data, state), state.highlight
    if shown != handles.get("legend_shows"):  # the same classes: the legend stays
        if handles["legend"] is not None:
            handles["legend"].remove()
        handles["legend"] = draw_legend(handles["top"], data, state, handles["columns"])
        handles["legend_shows"] = shown
    if "graph_title" not in handles:
        return
    views = graph_views(data, state, info)
    handles["graph_title"].set_text(views["label"])
    for name in ("affinity", "assignment"):
        if name not in handles:
            continue
        handles[f"{name}_grey"].set_data(views["grey"])
        handles[name].set_data(views[name])
        if name == "affinity":  # imshow's own scale: the map's range
            handles[name].set_clim(float(views[name].min()), float(views[name].max()))
        else:  # centred on zero
            handles[name].set_clim(-views["limit"], views["limit"])
        handles[f"{name}_title"].set_text(views[f"{name}_title"])
        handles[f"{name}_marker"].set_data([x], [y])
    if "bars" in handles:
        for bar, value, color in zip(
            handles["bars"], views["column"], bar_colors(views), strict=True
        ):
            bar.set_height(value)
            bar.set_facecolor(color)
        handles["bar_axes"].relim()
        handles["bar_axes"].autoscale_view()


__all__ = ["Canvas", "update"]
