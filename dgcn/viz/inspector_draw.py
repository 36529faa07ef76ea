"""The inspector's drawing: one :class:`InspectorState` of an :class:`InspectorData` as a figure.

:func:`layers` gives the RGB pictures of a state; :func:`render` draws them (a legend of the
image's classes by name under them) and, with a picked pixel, what the graphs do for it (the
node's row of ``A_S``, its strongest feature node's map of ``H_F``, its projection onto the
feature nodes, each colour scale labelled); :func:`static_figure` stacks a few states in one
figure (what a static page shows); :func:`png` is what the widget displays. Pure: they read
only the arrays, never the model. The arrays: :mod:`dgcn.viz.inspector_compute`; the widget:
:mod:`dgcn.viz.inspector`.

Used by notebooks/07_evaluation.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dgcn.datasets.labels import IGNORE_INDEX
from dgcn.viz.inspector_compute import LAYERS, InspectorData, InspectorState, check_state, describe
from dgcn.viz.palette import CORRECT_COLOR, WRONG_COLOR, colorize, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

#: the brightness kept by a pixel that is not of the highlighted class
DIM = 0.25
#: the colour-bar labels of the graph panels
AFFINITY_LABEL = "A_S[i, j] (not normalised)"
ASSIGNMENT_LABEL = "H_F[p, k] (signed)"
_PANEL_WIDTH = 2.3  # inches per image panel
_LEGEND_ENTRY = 1.15  # inches per legend entry ("traffic light" at 7 pt with its swatch)
_LEGEND_ROW = 0.16  # inches per legend row
_MARK = {"marker": "x", "linestyle": "none", "color": "cyan", "ms": 7, "mew": 2}  # the pixel


def _blend(base: np.ndarray, colors: np.ndarray, alpha: float) -> np.ndarray:
    mixed = (1 - alpha) * base.astype(np.float32) + alpha * colors.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def _dim(picture: np.ndarray, keep: np.ndarray) -> np.ndarray:
    out = picture.astype(np.float32)
    out[~keep] *= DIM
    return np.rint(out).astype(np.uint8)


def layers(data: InspectorData, state: InspectorState) -> dict[str, np.ndarray]:
    """The RGB pictures :func:`render` draws for a state, by layer name (in :data:`LAYERS` order).

    Ground truth and prediction: the Cityscapes colours over the image with weight
    ``opacity`` (pixels not scored keep the image); errors: red where wrong, grey where right,
    black where not scored, over the image with weight ``opacity``. With a highlighted class
    the pixels not of that class are dimmed to :data:`DIM` of their brightness in the ground
    truth (by the ground truth) and in the prediction (by the prediction), and in the errors
    panel every pixel that is of the class in neither.

    Shape:
        each picture: [H, W, 3] uint8
    """
    i = check_state(data, state)
    image, target, pred = data.images[i], data.targets[i], data.preds[i]
    alpha = float(np.clip(state.opacity, 0.0, 1.0))
    scored = target != IGNORE_INDEX
    pictures = {}
    for name in LAYERS:
        if name not in state.show:
            continue
        if name == "image":
            picture = image.copy()
        elif name == "ground truth":
            picture = np.where(scored[..., None], _blend(image, colorize(target), alpha), image)
        elif name == "prediction":
            picture = _blend(image, colorize(pred), alpha)
        else:
            errors = np.empty_like(image)
            errors[...] = 0  # not scored: black
            errors[scored] = CORRECT_COLOR
            errors[data.errors[i]] = WRONG_COLOR
            picture = _blend(image, errors, alpha)
        if state.highlight is not None and name != "image":
            k = state.highlight
            keep = {
                "ground truth": target == k,
                "prediction": pred == k,
                "errors": (target == k) | (pred == k),
            }[name]
            picture = _dim(picture, keep)
        pictures[name] = picture
    return pictures


def legend_classes(data: InspectorData, state: InspectorState) -> list[int]:
    """The train ids the legend names: those of the shown image's scored ground truth or its
    prediction, in train-id order; none when neither layer is shown."""
    i = check_state(data, state)
    if not {"ground truth", "prediction"} & set(state.show):
        return []
    target = data.targets[i]
    present = np.union1d(np.unique(target[target != IGNORE_INDEX]), np.unique(data.preds[i]))
    return [int(k) for k in present if 0 <= k < len(data.class_names)]


def legend_shape(data: InspectorData, state: InspectorState, width: float) -> tuple[int, int]:
    """(columns, rows) of the class legend in a figure ``width`` inches wide."""
    count = len(legend_classes(data, state))
    if not count:
        return 0, 0
    columns = max(1, min(count, int(width // _LEGEND_ENTRY)))
    return columns, -(-count // columns)


def draw_legend(
    target: Figure | SubFigure, data: InspectorData, state: InspectorState, columns: int
) -> Any:
    """The classes of the image, by name and colour, under the layers (highlighted: bold)."""
    from matplotlib.patches import Patch

    classes = legend_classes(data, state)
    if not classes:
        return None
    colors = colorize(np.asarray(classes)) / 255
    handles = [
        Patch(facecolor=color, edgecolor="black", linewidth=0.4, label=data.class_names[k])
        for k, color in zip(classes, colors, strict=True)
    ]
    shown = target.legend(
        handles=handles,
        loc="outside lower center",
        ncols=columns,
        fontsize=7,
        frameon=False,
        handlelength=1.0,
        columnspacing=0.8,
        borderaxespad=0.1,
    )
    if state.highlight in classes:
        shown.get_texts()[classes.index(state.highlight)].set_fontweight("bold")
    return shown


def title(data: InspectorData, state: InspectorState, info: dict[str, Any]) -> str:
    parts = [f"image {state.image}"]
    if data.source:
        parts.append(data.source)
    parts.append(f"{info['accuracy']:.1%} of scored pixels right")
    if "class" in info:
        if info["union"]:
            parts.append(
                f"{info['class']}: IoU {info['iou']:.1%} "
                f"({info['intersection']} / {info['union']} px)"
            )
        else:
            parts.append(f"{info['class']}: in neither ground truth nor prediction")
    return ", ".join(parts)


def graphs_shown(data: InspectorData, state: InspectorState) -> bool:
    return state.pixel is not None and (data.affinity is not None or data.assignment is not None)


def draw_state(
    target: Figure | SubFigure, data: InspectorData, state: InspectorState
) -> dict[str, Any]:
    """Draw one state into a figure or subfigure: the layers, then (with a pixel) the graphs.

    Returns:
        the artists a later state changes, by name (what
        :class:`~dgcn.viz.inspector_canvas.Canvas` updates in place): ``layers`` (the layer
        images by name), ``markers`` (the pixel's crosses), ``title``, ``top`` (the
        layers' (sub)figure, which holds ``legend``) and, with the graphs, those of
        :func:`graph_views`' panels.
    """
    info = describe(data, state)
    pictures = layers(data, state)
    width, _ = figure_size(data, state)
    columns, _ = legend_shape(data, state, width)
    if graphs_shown(data, state):
        parts = target.subfigures(2, 1, height_ratios=_row_heights(data, state))
    else:
        parts = [target]
    top = parts[0]
    handles: dict[str, Any] = {"layers": {}, "markers": [], "top": top, "columns": columns}
    axes = top.subplots(1, max(len(pictures), 1), squeeze=False)[0]
    for ax, (name, picture) in zip(axes, pictures.items(), strict=False):
        handles["layers"][name] = ax.imshow(picture, interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    for ax in axes[len(pictures) :]:
        ax.set_axis_off()
    if state.pixel is not None:
        for ax in axes[: len(pictures)]:
            handles["markers"] += ax.plot([state.pixel[1]], [state.pixel[0]], **_MARK)
    handles["legend"] = draw_legend(top, data, state, columns)
    handles["legend_shows"] = legend_classes(data, state), state.highlight
    handles["title"] = target.suptitle(title(data, state, info), fontsize=9)
    if len(parts) > 1:
        handles |= _draw_graphs(parts[1], data, state, info)
    return handles


def graph_views(data: InspectorData, state: InspectorState, info: dict) -> dict[str, Any]:
    """What the graph panels show for a state with a pixel: their texts and arrays.

    Returns:
        ``label`` (the row's title), ``grey`` (the image in grey, under the maps), with the
        coordinate graph ``affinity`` (the node's row of ``A_S`` at every pixel: each pixel
        shows the weight of the node that holds it) and ``affinity_title``, with the feature
        graph ``assignment`` (the strongest feature node's ``H_F`` at every pixel),
        ``limit`` (its colour scale's half-width), ``assignment_title``, ``column`` (the
        pixel's projection on every feature node) and ``strongest`` (that node).
    """
    i, (y, x) = state.image, state.pixel
    label = f"pixel (y={y}, x={x}): predicted {info['pred']}"
    if info["target_id"] != IGNORE_INDEX:
        label += f" (truth: {info['target']})"
    views: dict[str, Any] = {"label": label, "grey": data.images[i].mean(axis=2)}
    if data.affinity is not None:
        h, w = data.node_grid
        views["affinity"] = data.affinity[i, info["node"]][data.pixel_node]
        node = divmod(info["node"], w)
        views["affinity_title"] = f"A_S row of node {node} ({h} x {w} grid)"
    if data.assignment is not None:
        maps = data.assignment[i]
        k = info["feature_node"]
        heat = maps[k].reshape(-1)[data.pixel_feature]
        views["assignment"] = heat
        views["limit"] = float(np.abs(heat).max()) or 1.0
        views["assignment_title"] = f"H_F of feature node {k} (its strongest)"
        views["column"] = maps.reshape(maps.shape[0], -1)[:, data.pixel_feature[y, x]]
        views["strongest"] = k
    return views


def bar_colors(views: dict[str, Any]) -> np.ndarray:
    """The projection bars' colours: the strongest feature node red, the others grey."""
    return np.where(np.arange(len(views["column"])) == views["strongest"], "tab:red", "tab:gray")


def _draw_graphs(
    target: Figure | SubFigure, data: InspectorData, state: InspectorState, info: dict
) -> dict[str, Any]:
    """The picked pixel's node's row of A_S | its strongest feature node's map | its H_F column."""
    y, x = state.pixel
    views = graph_views(data, state, info)
    handles: dict[str, Any] = {"graph_title": target.suptitle(views["label"], fontsize=8)}
    panels = (data.affinity is not None) + 2 * (data.assignment is not None)
    axes = list(target.subplots(1, panels, squeeze=False)[0])
    maps = (("affinity", "magma", AFFINITY_LABEL), ("assignment", "RdBu_r", ASSIGNMENT_LABEL))
    for name, cmap, label in maps:
        if name not in views:
            continue
        ax = axes.pop(0)
        ax.imshow(views["grey"], cmap="gray", interpolation="nearest")
        limits = {"vmin": -views["limit"], "vmax": views["limit"]} if name == "assignment" else {}
        shown = ax.imshow(views[name], cmap=cmap, alpha=0.75, interpolation="nearest", **limits)
        ax.set_axis_off()
        handles[name] = shown
        handles[f"{name}_grey"] = ax.images[0]
        handles[f"{name}_title"] = ax.set_title(views[f"{name}_title"], fontsize=8)
        handles[f"{name}_marker"] = ax.plot([x], [y], **_MARK)[0]
        _colorbar(target, shown, ax, label)
    if "column" in views:
        ax = axes.pop(0)
        column = views["column"]
        handles["bars"] = ax.bar(np.arange(len(column)), column, color=bar_colors(views), width=0.8)
        handles["bar_axes"] = ax
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_title("its projection H_F[:, p]", fontsize=8)
        ax.set_xlabel("feature node k", fontsize=7)
        ax.tick_params(labelsize=6)
    return handles


def _colorbar(target: Figure | SubFigure, shown: Any, ax: Any, label: str) -> None:
    bar = target.colorbar(shown, ax=ax, shrink=0.8)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=7)


def _row_heights(data: InspectorData, state: InspectorState) -> tuple[float, float]:
    """Inches of the layers' row (with its legend) and of the graphs' row (larger panels, two
    titles)."""
    height, width = data.image_size
    panel_height = _PANEL_WIDTH * height / width
    _, rows = legend_shape(data, state, _width(data, state))
    legend = _LEGEND_ROW * rows if rows else 0.0
    return panel_height + 0.5 + legend, 1.35 * panel_height + 0.8


def _width(data: InspectorData, state: InspectorState) -> float:
    if graphs_shown(data, state):
        return 4 * _PANEL_WIDTH  # three graph panels need the width
    return max(len([n for n in LAYERS if n in state.show]), 1) * _PANEL_WIDTH


def figure_size(data: InspectorData, state: InspectorState) -> tuple[float, float]:
    layers_row, graphs_row = _row_heights(data, state)
    if graphs_shown(data, state):
        return _width(data, state), layers_row + graphs_row
    return _width(data, state), layers_row


def render(data: InspectorData, state: InspectorState) -> Figure:
    """One state of the inspector as a figure (pure: reads only ``data`` and ``state``).

    Top row: the layers of ``state.show``; its title gives the fraction of scored pixels
    predicted right and, with a highlighted class, its IoU on this image with the pixel counts
    (:func:`describe`); under it, a legend of the classes in the image's ground truth or
    prediction, by name (the highlighted one in bold). With a picked pixel, a second row: the
    row of ``A_S`` of the node that holds the pixel (each pixel coloured by the weight of its
    own node, so the node grid shows), the map of the feature-space node the pixel projects
    onto most strongly, and the pixel's whole projection onto the feature nodes (signed); the
    colour bars and the bars' axis say what the values are.
    """
    fig = new_figure(figure_size(data, state))
    draw_state(fig, data, state)
    return fig


def static_figure(data: InspectorData, states: Sequence[InspectorState]) -> Figure:
    """Several states of the inspector stacked in one figure, for pages without widgets."""
    if not states:
        raise ValueError("static_figure needs at least one state")
    sizes = [figure_size(data, state) for state in states]
    fig = new_figure((max(w for w, _ in sizes), sum(h for _, h in sizes)))
    parts = fig.subfigures(len(states), 1, height_ratios=[h for _, h in sizes], squeeze=False)
    for part, state in zip(parts[:, 0], states, strict=True):
        draw_state(part, data, state)
    return fig


def png(fig: Figure, dpi: float | None = None) -> bytes:
    """A figure as PNG bytes (what the widget displays), at ``dpi`` (default: the figure's)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or fig.dpi)
    return buffer.getvalue()


__all__ = [
    "AFFINITY_LABEL",
    "ASSIGNMENT_LABEL",
    "DIM",
    "layers",
    "legend_classes",
    "png",
    "render",
    "static_figure",
]
