"""An interactive inspector of a trained model's predictions, errors and graphs.

Three layers, so that the drawing is testable without a browser:

- :func:`compute` runs the model once over a set of images and keeps everything the views need
  as plain arrays (:class:`InspectorData`): the images, ground truth, predictions, the error
  mask, every image's coordinate graph ``A_S`` (node by node) and feature-space projection
  ``H_F``, and which node / feature position holds each pixel.
- :func:`render` draws one :class:`InspectorState` (which image, which layers, the overlay
  opacity, a highlighted class, a picked pixel) as a ``Figure``; it reads only the arrays.
  :func:`describe` gives the numbers it reports; :func:`static_figure` stacks a few states
  in one figure (what a static page shows).
- :func:`inspector` wires ipywidgets controls to :func:`render`; without ipywidgets it returns
  the static figure instead.

Used by notebooks/07_evaluation.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dgcn.datasets.labels import CLASS_NAMES, IGNORE_INDEX
from dgcn.evaluation.metrics import ConfusionMatrix
from dgcn.models.coordinate_gcn import CoordinateGCN
from dgcn.models.feature_gcn import FeatureGCN, OfficialFeatureGCN
from dgcn.viz.graphs import feature_pixel, node_of_pixel
from dgcn.viz.palette import CORRECT_COLOR, WRONG_COLOR, _numpy, colorize, denormalize, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

#: the layers a state can show, in the order they are drawn
LAYERS = ("image", "ground truth", "prediction", "errors")
#: the brightness kept by a pixel that is not of the highlighted class
DIM = 0.25
_PANEL_WIDTH = 2.3  # inches per image panel


@dataclass
class InspectorData:
    """What :func:`compute` measured, as arrays; everything :func:`render` needs.

    Attributes:
        images: 8-bit RGB images ``[N, H, W, 3]``.
        targets: ground-truth train ids ``[N, H, W]``, 255 = not scored.
        preds: predicted train ids ``[N, H, W]``.
        errors: ``(preds != targets) & (targets != 255)``, ``[N, H, W]`` bool.
        affinity: the coordinate graph ``A_S = delta(V_S) Psi(V_S)^T`` of every image,
            ``[N, N', N']`` (row i: how node i weighs every node j), or None when the model has
            no paper-form coordinate graph.
        node_grid: the coordinate graph's node grid ``(h', w')``, ``N' = h' w'``.
        pixel_node: the flat index of the node that holds each image pixel, ``[H, W]``.
        assignment: the feature-space projection ``H_F`` of every image, ``[N, D2, h, w]``
            (signed: how strongly each feature position projects onto each node), or None.
        pixel_feature: the flat feature-map position of each image pixel, ``[H, W]``.
        class_names: the names of the train ids.
        source: what made the predictions (shown in titles).
    """

    images: np.ndarray
    targets: np.ndarray
    preds: np.ndarray
    errors: np.ndarray
    affinity: np.ndarray | None = None
    node_grid: tuple[int, int] | None = None
    pixel_node: np.ndarray | None = None
    assignment: np.ndarray | None = None
    pixel_feature: np.ndarray | None = None
    class_names: Sequence[str] = field(default_factory=lambda: list(CLASS_NAMES))
    source: str = ""

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.targets.shape[1:3])


@dataclass(frozen=True)
class InspectorState:
    """One view of the inspector.

    Attributes:
        image: which image (index into the data).
        show: the layers drawn, a subset of :data:`LAYERS`.
        opacity: how opaque the class colours and the error colours are over the image
            (1: colours only).
        highlight: a train id whose pixels stay bright in the ground truth and the prediction
            (every other pixel is dimmed), and whose IoU on this image is reported; None: off.
        pixel: ``(y, x)``: draw what the graphs do for this pixel (the row of ``A_S`` of the
            node that holds it, and its feature-space projection); None: off.
    """

    image: int = 0
    show: tuple[str, ...] = LAYERS
    opacity: float = 0.6
    highlight: int | None = None
    pixel: tuple[int, int] | None = None


def _pixel_maps(
    coordinate: CoordinateGCN | None,
    image_size: tuple[int, int],
    feature_size: tuple[int, int],
    node_grid: tuple[int, int] | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per image pixel: its flat feature position and (when there is a graph) its node."""
    height, width = image_size
    # feature_pixel maps each axis on its own: one row and one column of it give the grid
    rows = np.array([feature_pixel((y, 0), image_size, feature_size)[0] for y in range(height)])
    cols = np.array([feature_pixel((0, x), image_size, feature_size)[1] for x in range(width)])
    feature_index = rows[:, None] * feature_size[1] + cols[None, :]
    if coordinate is None:
        return feature_index, None
    nodes = np.array(
        [
            node_of_pixel(coordinate, divmod(position, feature_size[1]), node_grid)
            for position in range(feature_size[0] * feature_size[1])
        ]
    )
    return feature_index, nodes[feature_index]


def compute(
    model: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    batch_size: int = 4,
    source: str = "",
    **predict_options: Any,
) -> InspectorData:
    """Predict every image once and record what the inspector shows, as plain arrays.

    The predictions are ``evaluation.predict`` (default: one forward pass on the whole image;
    ``predict_options`` such as ``mode="slide", tile=128`` choose another test mode). The
    graphs are read from a whole-image forward pass (the input of ``model.head.graph``, caught
    by a forward pre-hook as :func:`~dgcn.viz.graphs.capture_graph_input` does):
    ``A_S`` when the model's coordinate graph is the paper's :class:`~dgcn.models.CoordinateGCN`
    (the authors' branch forms no node-by-node matrix), ``H_F`` when it has a feature graph.
    The model runs in eval mode and is left in its previous mode.

    Args:
        model: a trained DGCNet (the FCN baseline works too, without graph views).
        images: normalised images.
        masks: ground-truth train ids, 255 = not scored.
        batch_size: images per forward pass.
        source: a short description of the model for the titles.
        **predict_options: fields of :class:`~dgcn.config.EvalConfig` for the predictions.

    Shape:
        images: [N, 3, H, W], masks: [N, H, W]
    """
    # lazy: evaluation pulls in the data and distributed modules, which drawing never needs
    from dgcn.evaluation.prediction import predict

    if images.shape[0] != masks.shape[0] or images.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"images {tuple(images.shape)} and masks {tuple(masks.shape)} differ")
    options = {"mode": "whole", **predict_options}
    graph = getattr(getattr(model, "head", None), "graph", None)
    caught: list[torch.Tensor] = []
    hook = None
    if graph is not None:  # catch the graph's input X during the predictions' forward pass
        hook = graph.register_forward_pre_hook(lambda _m, args: caught.append(args[0].detach()))
    was_training = model.training
    model.eval()
    preds, affinities, assignments = [], [], []
    coordinate, feature_size, node_grid = None, None, None
    try:
        for batch in images.split(batch_size):
            caught.clear()
            preds.append(predict(model, batch, **options).argmax(1).cpu())
            if graph is None:
                continue  # no graph (the FCN baseline): predictions only
            if options["mode"] != "whole" or len(caught) != 1:  # windows or views: run again
                caught.clear()
                with torch.inference_mode():
                    model(batch)
            features = caught[0].float()  # fp32 even when the predictions ran under autocast
            feature_size = tuple(features.shape[-2:])
            with torch.inference_mode():
                if isinstance(graph.coordinate, CoordinateGCN):
                    coordinate = graph.coordinate
                    node_grid = tuple(coordinate.nodes(features[:1]).shape[-2:])
                    affinities.append(coordinate.adjacency(features).float().cpu())
                if isinstance(graph.feature, (FeatureGCN, OfficialFeatureGCN)):
                    assignments.append(graph.feature.to_nodes(features).float().cpu())
    finally:
        if hook is not None:
            hook.remove()
        model.train(was_training)
    targets = _numpy(masks).astype(np.int64)
    predicted = torch.cat(preds).numpy().astype(np.int64)
    pixel_feature = pixel_node = None
    if feature_size is not None:
        pixel_feature, pixel_node = _pixel_maps(
            coordinate, targets.shape[1:], feature_size, node_grid
        )
    return InspectorData(
        images=np.stack([denormalize(image) for image in images]),
        targets=targets,
        preds=predicted,
        errors=(predicted != targets) & (targets != IGNORE_INDEX),
        affinity=torch.cat(affinities).numpy() if affinities else None,
        node_grid=node_grid,
        pixel_node=pixel_node,
        assignment=torch.cat(assignments).numpy() if assignments else None,
        pixel_feature=pixel_feature,
        source=source,
    )


def image_miou(data: InspectorData, index: int) -> float:
    """The mIoU of one image: the mean IoU over the classes in its ground truth or prediction.

    Only scored pixels (ground truth != 255) count, as in the confusion matrix.
    """
    matrix = ConfusionMatrix(len(data.class_names))
    return matrix.update(
        torch.from_numpy(data.preds[index]), torch.from_numpy(data.targets[index])
    ).miou()


def _iou(target: np.ndarray, pred: np.ndarray, k: int) -> tuple[float, int, int]:
    """IoU of class k over the scored pixels, with its intersection and union in pixels."""
    scored = target != IGNORE_INDEX
    is_target, is_pred = (target == k) & scored, (pred == k) & scored
    intersection = int((is_target & is_pred).sum())
    union = int((is_target | is_pred).sum())
    return (intersection / union if union else float("nan")), intersection, union


def describe(data: InspectorData, state: InspectorState) -> dict[str, Any]:
    """The numbers :func:`render` reports for a state.

    Returns:
        ``accuracy`` (fraction of scored pixels predicted right), ``errors`` (wrong scored
        pixels), and with a highlighted class ``class``, ``iou`` (nan when the class is in
        neither the ground truth nor the prediction), ``intersection``, ``union`` (pixels);
        with a pixel ``node`` (the coordinate node that holds it), ``feature_node`` (the
        feature-space node it projects onto most strongly, by ``|H_F|``), ``target`` and
        ``pred`` at the pixel.
    """
    i = _check(data, state)
    target, pred = data.targets[i], data.preds[i]
    scored = int((target != IGNORE_INDEX).sum())
    errors = int(data.errors[i].sum())
    info: dict[str, Any] = {
        "accuracy": (scored - errors) / scored if scored else float("nan"),
        "errors": errors,
    }
    if state.highlight is not None:
        iou, intersection, union = _iou(target, pred, state.highlight)
        info.update(
            {
                "class": data.class_names[state.highlight],
                "iou": iou,
                "intersection": intersection,
                "union": union,
            }
        )
    if state.pixel is not None:
        y, x = state.pixel
        info.update({"target": int(target[y, x]), "pred": int(pred[y, x])})
        if data.affinity is not None:
            info["node"] = int(data.pixel_node[y, x])
        if data.assignment is not None:
            column = data.assignment[i].reshape(data.assignment.shape[1], -1)
            info["feature_node"] = int(np.argmax(np.abs(column[:, data.pixel_feature[y, x]])))
    return info


def _check(data: InspectorData, state: InspectorState) -> int:
    if not 0 <= state.image < len(data):
        raise ValueError(f"image {state.image} is not in 0..{len(data) - 1}")
    unknown = set(state.show) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown layers {sorted(unknown)}; the layers are {LAYERS}")
    if not 0 <= state.opacity <= 1:
        raise ValueError(f"opacity {state.opacity} is not in [0, 1]")
    if state.highlight is not None and not 0 <= state.highlight < len(data.class_names):
        raise ValueError(f"highlight {state.highlight} is not a train id")
    if state.pixel is not None:
        height, width = data.image_size
        y, x = state.pixel
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f"pixel {state.pixel} is outside the {height} x {width} image")
    return state.image


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
    i = _check(data, state)
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


def _title(data: InspectorData, state: InspectorState, info: dict[str, Any]) -> str:
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


def _draw(target: Figure | SubFigure, data: InspectorData, state: InspectorState) -> None:
    """Draw one state into a figure or subfigure: the layers, then (with a pixel) the graphs."""
    info = describe(data, state)
    pictures = layers(data, state)
    graphs_shown = state.pixel is not None and (
        data.affinity is not None or data.assignment is not None
    )
    if graphs_shown:
        parts = target.subfigures(2, 1, height_ratios=_row_heights(data))
    else:
        parts = [target]
    top = parts[0]
    axes = top.subplots(1, max(len(pictures), 1), squeeze=False)[0]
    for ax, (name, picture) in zip(axes, pictures.items(), strict=False):
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    for ax in axes[len(pictures) :]:
        ax.set_axis_off()
    if state.pixel is not None:
        for ax in axes[: len(pictures)]:
            ax.plot([state.pixel[1]], [state.pixel[0]], "x", color="cyan", ms=7, mew=2)
    target.suptitle(_title(data, state, info), fontsize=9)
    if graphs_shown:
        _draw_graphs(parts[1], data, state, info)


def _draw_graphs(
    target: Figure | SubFigure, data: InspectorData, state: InspectorState, info: dict
) -> None:
    """The picked pixel's node's row of A_S | its strongest feature node's map | its H_F column."""
    i, (y, x) = state.image, state.pixel
    grey = data.images[i].mean(axis=2)
    names = data.class_names
    label = f"pixel (y={y}, x={x}): {names[info['pred']]}"
    if info["target"] != IGNORE_INDEX:
        label += f" (truth: {names[info['target']]})"
    target.suptitle(label, fontsize=8)
    panels = (data.affinity is not None) + 2 * (data.assignment is not None)
    axes = list(target.subplots(1, panels, squeeze=False)[0])
    if data.affinity is not None:
        ax = axes.pop(0)
        row = data.affinity[i, info["node"]]
        heat = row[data.pixel_node]  # each pixel shows the weight of the node that holds it
        ax.imshow(grey, cmap="gray", interpolation="nearest")
        shown = ax.imshow(heat, cmap="magma", alpha=0.75, interpolation="nearest")
        h, w = data.node_grid
        node = divmod(info["node"], w)
        ax.set_title(f"A_S row of node {node} ({h} x {w} grid)", fontsize=8)
        ax.plot([x], [y], "x", color="cyan", ms=7, mew=2)
        ax.set_axis_off()
        target.colorbar(shown, ax=ax, shrink=0.8).ax.tick_params(labelsize=7)
    if data.assignment is not None:
        maps = data.assignment[i]
        k = info["feature_node"]
        column = maps.reshape(maps.shape[0], -1)[:, data.pixel_feature[y, x]]
        heat = maps[k].reshape(-1)[data.pixel_feature]
        limit = float(np.abs(heat).max()) or 1.0
        ax = axes.pop(0)
        ax.imshow(grey, cmap="gray", interpolation="nearest")
        shown = ax.imshow(
            heat, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.75, interpolation="nearest"
        )
        ax.set_title(f"H_F of feature node {k} (its strongest)", fontsize=8)
        ax.plot([x], [y], "x", color="cyan", ms=7, mew=2)
        ax.set_axis_off()
        target.colorbar(shown, ax=ax, shrink=0.8).ax.tick_params(labelsize=7)
        ax = axes.pop(0)
        colors = np.where(np.arange(len(column)) == k, "tab:red", "tab:gray")
        ax.bar(np.arange(len(column)), column, color=colors, width=0.8)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_title("its projection on the feature nodes", fontsize=8)
        ax.set_xlabel("feature node", fontsize=7)
        ax.tick_params(labelsize=6)


def _row_heights(data: InspectorData) -> tuple[float, float]:
    """Inches of the layers' row and of the graphs' row (larger panels, two titles)."""
    height, width = data.image_size
    panel_height = _PANEL_WIDTH * height / width
    return panel_height + 0.5, 1.35 * panel_height + 0.8


def _figure_size(data: InspectorData, state: InspectorState) -> tuple[float, float]:
    columns = max(len([n for n in LAYERS if n in state.show]), 1)
    layers_row, graphs_row = _row_heights(data)
    if state.pixel is not None and (data.affinity is not None or data.assignment is not None):
        return 4 * _PANEL_WIDTH, layers_row + graphs_row  # three graph panels need the width
    return columns * _PANEL_WIDTH, layers_row


def render(data: InspectorData, state: InspectorState) -> Figure:
    """One state of the inspector as a figure (pure: reads only ``data`` and ``state``).

    Top row: the layers of ``state.show``; its title gives the fraction of scored pixels
    predicted right and, with a highlighted class, its IoU on this image with the pixel counts
    (:func:`describe`). With a picked pixel, a second row: the row of ``A_S`` of the node that
    holds the pixel (each pixel coloured by the weight of its own node, so the node grid shows),
    the map of the feature-space node the pixel projects onto most strongly, and the pixel's
    whole projection onto the feature nodes (signed).
    """
    fig = new_figure(_figure_size(data, state))
    _draw(fig, data, state)
    return fig


def static_figure(data: InspectorData, states: Sequence[InspectorState]) -> Figure:
    """Several states of the inspector stacked in one figure, for pages without widgets."""
    if not states:
        raise ValueError("static_figure needs at least one state")
    sizes = [_figure_size(data, state) for state in states]
    fig = new_figure((max(w for w, _ in sizes), sum(h for _, h in sizes)))
    parts = fig.subfigures(len(states), 1, height_ratios=[h for _, h in sizes], squeeze=False)
    for part, state in zip(parts[:, 0], states, strict=True):
        _draw(part, data, state)
    return fig


def png(fig: Figure, dpi: float | None = None) -> bytes:
    """A figure as PNG bytes (what the widget displays), at ``dpi`` (default: the figure's)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or fig.dpi)
    return buffer.getvalue()


def inspector(
    data: InspectorData,
    state: InspectorState | None = None,
    static_states: Sequence[InspectorState] | None = None,
    dpi: float = 90,
) -> Any:
    """The interactive inspector: ipywidgets controls around :func:`render`.

    Controls: the image (with its mIoU), a toggle per layer, the overlay opacity, the
    highlighted class, and a pixel (y and x sliders; the "graphs" box shows what the graphs do
    for it). Every change re-renders the state to a PNG shown in an ``ipywidgets.Image``; the
    numbers of :func:`describe` appear under it.

    Args:
        data: from :func:`compute`.
        state: the first state shown; default: image 0, all layers, no class, no pixel.
        static_states: what to return when ipywidgets is not installed (default: ``[state]``).
        dpi: the resolution of the rendered PNG.

    Returns:
        an ``ipywidgets.VBox`` (its ``controls`` attribute: the widgets by name, the layer
        toggles as ``"show errors"`` etc.; ``current_state()`` gives the current
        :class:`InspectorState`), or, without ipywidgets, the :func:`static_figure` of
        ``static_states``.
    """
    state = state or InspectorState()
    try:
        import ipywidgets as widgets
    except ImportError:
        return static_figure(data, list(static_states or [state]))

    height, width = data.image_size
    pixel = state.pixel or (height // 2, width // 2)
    layout = widgets.Layout(width="360px")
    style = {"description_width": "70px"}
    images = [(f"{i}: mIoU {image_miou(data, i):.1%}", i) for i in range(len(data))]
    # -1 stands for "no class" (a Dropdown's value None means "nothing selected")
    classes = [("none", -1)] + [(name, k) for k, name in enumerate(data.class_names)]
    controls = {
        "image": widgets.Dropdown(
            options=images, value=state.image, description="image", layout=layout, style=style
        ),
        **{
            f"show {name}": widgets.ToggleButton(value=name in state.show, description=name)
            for name in LAYERS
        },
        "opacity": widgets.FloatSlider(
            value=state.opacity,
            min=0.0,
            max=1.0,
            step=0.05,
            description="opacity",
            layout=layout,
            style=style,
        ),
        "highlight": widgets.Dropdown(
            options=classes,
            value=-1 if state.highlight is None else state.highlight,
            description="class",
            layout=layout,
            style=style,
        ),
        "graphs": widgets.Checkbox(value=state.pixel is not None, description="graphs at pixel"),
        "y": widgets.IntSlider(
            value=pixel[0], min=0, max=height - 1, description="y", layout=layout, style=style
        ),
        "x": widgets.IntSlider(
            value=pixel[1], min=0, max=width - 1, description="x", layout=layout, style=style
        ),
    }
    picture = widgets.Image(format="png")
    numbers = widgets.HTML()

    def current() -> InspectorState:
        return InspectorState(
            image=controls["image"].value,
            show=tuple(name for name in LAYERS if controls[f"show {name}"].value),
            opacity=controls["opacity"].value,
            highlight=None if controls["highlight"].value < 0 else controls["highlight"].value,
            pixel=(controls["y"].value, controls["x"].value) if controls["graphs"].value else None,
        )

    def update(_change: Any = None) -> None:
        shown = current()
        fig = render(data, shown)
        picture.value = png(fig, dpi=dpi)
        picture.width = str(round(fig.get_size_inches()[0] * dpi))  # shown at its own size
        info = describe(data, shown)
        numbers.value = "<br>".join(
            f"<code>{key}</code>: {value:.4f}"
            if isinstance(value, float)
            else f"<code>{key}</code>: {value}"
            for key, value in info.items()
        )

    for control in controls.values():
        control.observe(update, names="value")
    update()
    box = widgets.VBox(
        [
            widgets.HBox([controls["image"], controls["opacity"], controls["highlight"]]),
            widgets.HBox([controls[f"show {name}"] for name in LAYERS]),
            widgets.HBox([controls["graphs"], controls["y"], controls["x"]]),
            picture,
            numbers,
        ]
    )
    box.controls = controls
    box.current_state = current
    return box


__all__ = [
    "DIM",
    "LAYERS",
    "InspectorData",
    "InspectorState",
    "compute",
    "describe",
    "image_miou",
    "inspector",
    "layers",
    "png",
    "render",
    "static_figure",
]
