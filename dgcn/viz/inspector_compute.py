"""The inspector's measurements: one pass of the model over the images, kept as arrays.

:func:`compute` runs the model once over a set of images and keeps everything the views need
as plain arrays (:class:`InspectorData`): the images, ground truth, predictions, the error mask,
every image's coordinate graph ``A_S`` (node by node) and feature-space projection ``H_F``, and
which node / feature position holds each pixel. :class:`InspectorState` is one view of them;
:func:`describe` gives the numbers the inspector reports for a state (class names, not train
ids). Drawing: :mod:`dgcn.viz.inspector_draw`; the widget: :mod:`dgcn.viz.inspector`.

Used by notebooks/07_evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from dgcn.datasets.labels import CLASS_NAMES, IGNORE_INDEX
from dgcn.evaluation.metrics import ConfusionMatrix
from dgcn.models.coordinate_gcn import CoordinateGCN
from dgcn.models.feature_gcn import FeatureGCN, OfficialFeatureGCN
from dgcn.viz.graphs_compute import feature_pixel, node_of_pixel
from dgcn.viz.palette import _numpy, denormalize

#: the layers a state can show, in the order they are drawn
LAYERS = ("image", "ground truth", "prediction", "errors")
#: the name shown for a pixel that is not scored (train id 255)
NOT_SCORED = "not scored"


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
        class_names: the names of the train ids, in train-id order (default: the Cityscapes
            label table's, :data:`dgcn.datasets.labels.CLASS_NAMES`); every control, legend
            and readout shows these names, never the ids.
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
    class_names: Sequence[str] | None = None,
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
        class_names: the names of the train ids (default: the Cityscapes label table's).
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
        class_names=list(CLASS_NAMES if class_names is None else class_names),
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


def class_name(data: InspectorData, train_id: int) -> str:
    """The name of a train id in the data's label table; :data:`NOT_SCORED` for 255."""
    if train_id == IGNORE_INDEX:
        return NOT_SCORED
    return data.class_names[train_id]


def describe(data: InspectorData, state: InspectorState) -> dict[str, Any]:
    """The numbers :func:`render` reports for a state.

    Returns:
        ``accuracy`` (fraction of scored pixels predicted right), ``errors`` (wrong scored
        pixels), and with a highlighted class ``class``, ``iou`` (nan when the class is in
        neither the ground truth nor the prediction), ``intersection``, ``union`` (pixels);
        with a pixel ``target`` and ``pred`` at the pixel as class names (``"not scored"`` for
        train id 255), their train ids ``target_id`` and ``pred_id``, ``node`` (the coordinate
        node that holds it) and ``feature_node`` (the feature-space node it projects onto most
        strongly, by ``|H_F|``).
    """
    i = check_state(data, state)
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
        truth, guess = int(target[y, x]), int(pred[y, x])
        info.update(
            {
                "target": class_name(data, truth),
                "pred": class_name(data, guess),
                "target_id": truth,
                "pred_id": guess,
            }
        )
        if data.affinity is not None:
            info["node"] = int(data.pixel_node[y, x])
        if data.assignment is not None:
            column = data.assignment[i].reshape(data.assignment.shape[1], -1)
            info["feature_node"] = int(np.argmax(np.abs(column[:, data.pixel_feature[y, x]])))
    return info


def check_state(data: InspectorData, state: InspectorState) -> int:
    """The state's image index, after checking the state against the data.

    Raises:
        ValueError: an image, layer, opacity, class or pixel the data does not have.
    """
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


__all__ = [
    "LAYERS",
    "NOT_SCORED",
    "InspectorData",
    "InspectorState",
    "check_state",
    "class_name",
    "compute",
    "describe",
    "image_miou",
]
