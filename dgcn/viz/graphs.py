"""Looking inside the graphs: coordinate affinities, feature-space assignments, adjacencies.

Array helpers (:func:`coordinate_affinity`, :func:`feature_assignment`,
:func:`class_projections`, :func:`capture_graph_input`) return tensors (and
:func:`closest_class_pairs` a list); :func:`reprojection_norms` and :func:`reprojection_inputs`
find and watch the BatchNorm that closes each graph's reprojection (forward pre-hooks); the
plotting helpers return a ``matplotlib.figure.Figure`` built without pyplot (matplotlib is
imported only when a figure is drawn). Used by notebooks/02_coordinate_gcn, 03_feature_gcn,
07_evaluation and 09_image_size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from dgcn.datasets.labels import IGNORE_INDEX
from dgcn.models.common import resize
from dgcn.models.coordinate_gcn import CoordinateGCN, OfficialCoordinateGCN
from dgcn.models.dual_gcn import DualGCN
from dgcn.models.feature_gcn import FeatureGCN, OfficialFeatureGCN
from dgcn.training.weight_change import split_change
from dgcn.viz.palette import _numpy, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_PANEL_WIDTH = 2.6  # inches per image panel (260 px at 100 dpi, about a MiniCity image)


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients for the duration; the previous mode is restored after.

    Eval mode keeps BatchNorm layers from using (and updating) batch statistics.
    """
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def feature_pixel(
    pixel: tuple[int, int], image_size: tuple[int, int], feature_size: tuple[int, int]
) -> tuple[int, int]:
    """The feature-map position of an image pixel, as the network's upsampling aligns them.

    The logits are upsampled with ``align_corners=True``, which puts feature position ``u`` at
    image pixel ``u (H_img - 1) / (h - 1)``; the inverse, rounded, is ``y (h - 1) / (H_img - 1)``.

    Args:
        pixel: ``(y, x)`` in the image.
        image_size: ``(H_img, W_img)``.
        feature_size: ``(h, w)`` of the feature map.
    """
    return tuple(
        round(p * (n - 1) / max(size - 1, 1))
        for p, n, size in zip(pixel, feature_size, image_size, strict=True)
    )


def node_of_pixel(module: CoordinateGCN, pixel: tuple[int, int], grid: tuple[int, int]) -> int:
    """The flat index of the graph node that holds feature pixel ``(y, x)``.

    With average pooling node ``(i, j)`` averages the pixels ``d i .. d i + d - 1`` (rows) and
    ``d j .. d j + d - 1`` (columns), so the node is ``(y // d, x // d)``. With ``log2(d)``
    stride-2 3x3 convs (padding 1) node ``i`` is centred on pixel ``d i``, so the node is the
    nearest centre, ``round(y / d)``. Both are clipped to the node grid.

    Args:
        module: the coordinate GCN (its ``downsample_rate`` and ``pooling``).
        pixel: ``(y, x)`` in the coordinates of the feature map the module receives.
        grid: the node grid ``(h', w')``.
    """
    d = module.downsample_rate
    y, x = (int(p) for p in pixel)
    if module.pooling == "conv":
        i, j = (y + d // 2) // d, (x + d // 2) // d
    else:
        i, j = y // d, x // d
    i, j = min(max(i, 0), grid[0] - 1), min(max(j, 0), grid[1] - 1)
    return i * grid[1] + j


def coordinate_affinity(
    module: CoordinateGCN,
    features: torch.Tensor,
    pixel: tuple[int, int],
    image_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """One row of the coordinate graph ``A_S = delta(V_S) Psi(V_S)^T``, on the node grid.

    The row of the node that holds ``pixel`` (see :func:`node_of_pixel`): entry ``(i, j)`` is
    the (unnormalised) weight with which that node gathers node ``(i, j)``'s message in
    ``M_S = A_S nu(V_S) W_S``. The module runs in eval mode without gradients and is left in
    its previous mode.

    Args:
        module: the paper's :class:`~dgcn.models.CoordinateGCN` (the official branch forms no
            node-by-node matrix).
        features: the feature map that enters the module (e.g. from
            :func:`capture_graph_input`).
        pixel: ``(y, x)``, in feature-map coordinates, or in image coordinates when
            ``image_size`` is given.
        image_size: ``(H_img, W_img)`` of the image that produced ``features``; the pixel is then
            mapped to the feature grid by :func:`feature_pixel` (the ``align_corners=True``
            convention of the network's upsampling).

    Shape:
        features: [1, D, H, W] -> [h', w'] (the node grid, ``h' = ceil(H / d)`` for avg pooling)
    """
    if not isinstance(module, CoordinateGCN):
        raise TypeError(
            f"coordinate_affinity needs the paper's CoordinateGCN, got {type(module).__name__} "
            "(the official branch's softmax matrix is channel by channel, not node by node)"
        )
    if features.dim() != 4 or features.shape[0] != 1:
        raise ValueError(f"features must be [1, D, H, W], got {tuple(features.shape)}")
    height, width = features.shape[-2:]
    if image_size is not None:
        pixel = feature_pixel(pixel, image_size, (height, width))
    with _evaluating(module):
        grid = tuple(module.nodes(features).shape[-2:])
        matrix = module.adjacency(features)[0]  # [N', N']
    row = matrix[node_of_pixel(module, pixel, grid)]
    return row.view(grid).detach()


def feature_assignment(
    module: FeatureGCN | OfficialFeatureGCN, features: torch.Tensor
) -> torch.Tensor:
    """How strongly every pixel projects onto each feature-space node.

    For the paper's :class:`~dgcn.models.FeatureGCN` this is ``H_F = phi(X)`` (its ``to_nodes``
    1x1 conv); for :class:`~dgcn.models.OfficialFeatureGCN` the authors' assignment
    ``H_F = BN(phi(X))`` (``to_nodes``: 1x1 conv + BN). The module runs in eval mode without
    gradients.

    Args:
        module: a feature-space GCN.
        features: the feature map that enters it.

    Shape:
        features: [1, D, H, W] -> [D2, H, W] (``D2 = D / 4`` nodes)
    """
    if not isinstance(module, (FeatureGCN, OfficialFeatureGCN)):
        raise TypeError(f"feature_assignment needs a feature GCN, got {type(module).__name__}")
    if features.dim() != 4 or features.shape[0] != 1:
        raise ValueError(f"features must be [1, D, H, W], got {tuple(features.shape)}")
    with _evaluating(module):
        return module.to_nodes(features)[0].detach()


def capture_graph_input(model: nn.Module, images: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """Run a DGCNet once and catch the feature map that enters its graph module.

    The graph module is the :class:`~dgcn.models.DualGCN` ``model.head.graph``: in the
    official head its input is the 512-channel reduction ``conva``, in the paper head the
    backbone's layer4 feature X. The model runs in eval
    mode without gradients (a forward pre-hook records the input) and is left in its previous
    mode.

    Args:
        model: a :class:`~dgcn.models.DGCNet` with a graph.
        images: normalised images.

    Returns:
        ``(graph module, its input)``.

    Raises:
        ValueError: the model has no graph module (the FCN baseline).

    Shape:
        images: [B, 3, H, W] -> features [B, D, H / s, W / s] (s = the output stride)
    """
    head = getattr(model, "head", None)
    graph = getattr(head, "graph", None)
    if graph is None:
        raise ValueError(
            f"{type(model).__name__} has no graph module (head.graph): "
            "the FCN baseline has nothing to capture"
        )
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple) -> None:
        captured.append(args[0].detach())

    handle = graph.register_forward_pre_hook(hook)
    try:
        with _evaluating(model):
            model(images)
    finally:
        handle.remove()
    return graph, captured[0]


def reprojection_norms(module: nn.Module) -> dict[str, nn.BatchNorm2d]:
    """The BatchNorm that closes each graph's reprojection, by graph.

    The paper variant's BN after ``X~_S``'s and ``X~_F``'s 1x1 convolutions, and the BN of the
    authors' ``out`` and ``conv3`` in the official variant: the layers that in eval mode apply
    statistics frozen in training to the graphs' un-normalised sums.

    Args:
        module: a :class:`~dgcn.models.DGCNet` (its ``head.graph``), a
            :class:`~dgcn.models.DualGCN`, or one coordinate or feature GCN.

    Returns:
        ``{"coordinate": bn, "feature": bn}`` for the graphs present; empty for a model without
        a graph (the FCN baseline, or a head with another context module).
    """
    graph = getattr(getattr(module, "head", None), "graph", module)
    if isinstance(graph, DualGCN):
        branches = {"coordinate": graph.coordinate, "feature": graph.feature}
    elif isinstance(graph, (CoordinateGCN, OfficialCoordinateGCN)):
        branches = {"coordinate": graph}
    elif isinstance(graph, (FeatureGCN, OfficialFeatureGCN)):
        branches = {"feature": graph}
    else:
        branches = {}
    return {name: branch.reproject[1] for name, branch in branches.items() if branch is not None}


@contextlib.contextmanager
def reprojection_inputs(
    module: nn.Module, divide_by: float = 1.0
) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Keep what every reprojection BatchNorm receives while the block runs (and rescale it).

    A forward pre-hook on each BN of :func:`reprojection_norms` appends a detached copy of its
    input, one tensor per forward pass, to the list of its graph; the hooks are removed when
    the block ends, also on an error. With ``divide_by`` the hooks also divide the input by
    that factor before the BN sees it (what is kept is the divided input): everything between
    a graph's sum and its BN is linear, so this replaces the sums by means scaled to
    ``1 / divide_by`` of the image, without retraining.

    Args:
        module: as for :func:`reprojection_norms`.
        divide_by: the factor the BN inputs are divided by (1: only watch).

    Yields:
        ``{graph: [input of each forward pass]}``, filled while the block runs; a graph's list
        stays empty until a pass reaches it.
    """
    if divide_by <= 0:
        raise ValueError(f"divide_by must be > 0, got {divide_by}")
    norms = reprojection_norms(module)
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in norms}

    def hook_for(name: str):
        def hook(_module: nn.Module, args: tuple):
            value = args[0] if divide_by == 1 else args[0] / divide_by
            seen[name].append(value.detach().clone())
            return None if divide_by == 1 else (value, *args[1:])

        return hook

    handles = [bn.register_forward_pre_hook(hook_for(name)) for name, bn in norms.items()]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _image_panel(ax, image: np.ndarray, title: str) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def _upsampled(maps: torch.Tensor | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (align_corners=True, as the network) of [C, h, w] maps to ``size``."""
    tensor = torch.as_tensor(_numpy(maps), dtype=torch.float32)
    return resize(tensor[None], size)[0].numpy()


def plot_affinity(
    image_uint8: np.ndarray | torch.Tensor,
    affinity: np.ndarray | torch.Tensor,
    pixel: tuple[int, int],
    title: str = "",
    limit: float | None = None,
) -> Figure:
    """The image with a pixel marked | that pixel's node's row of ``A_S`` over the image.

    The affinity (from :func:`coordinate_affinity`) is upsampled bilinearly to the image and
    drawn half-transparent over a grey copy of it, with a colour bar; a cross marks the pixel.

    Args:
        image_uint8: the RGB image.
        affinity: one row of the coordinate graph on the node grid.
        pixel: ``(y, x)`` in image coordinates.
        title: the right panel's title (default "affinity of the node").
        limit: draw with a diverging scale centred on 0, from ``-limit`` (blue) to ``limit``
            (red), e.g. one limit shared by several maps; None: magma over the map's range.

    Shape:
        image_uint8: [H, W, 3], affinity: [h', w']
    """
    image = _numpy(image_uint8)
    height, width = image.shape[:2]
    heat = _upsampled(_numpy(affinity)[None], (height, width))[0]
    grey = image.mean(axis=2)
    fig = new_figure((2 * _PANEL_WIDTH + 0.8, _PANEL_WIDTH * height / width + 0.5))
    left, right = fig.subplots(1, 2)
    y, x = pixel
    _image_panel(left, image, f"pixel (y={y}, x={x})")
    right.imshow(grey, cmap="gray", interpolation="nearest")
    scale = {"cmap": "magma"}
    if limit is not None:  # signed weights: white is 0, red adds, blue subtracts
        scale = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
    shown = right.imshow(heat, alpha=0.7, interpolation="nearest", **scale)
    right.set_title(title or "affinity of its node", fontsize=9)
    right.set_axis_off()
    for ax in (left, right):
        ax.plot([x], [y], marker="x", color="cyan", markersize=9, mew=2)
    fig.colorbar(shown, ax=right, shrink=0.8)
    return fig


def plot_node_grid(
    image_uint8: np.ndarray | torch.Tensor,
    grid: tuple[int, int],
    patch: int,
    pixel: tuple[int, int],
    node: int | None = None,
) -> Figure:
    """The image with the coordinate graph's node grid drawn over it, one node highlighted.

    Each cell is the ``patch x patch`` image patch under one node (stride times ``d`` pixels
    for average pooling); the highlighted cell is ``node`` and a cross marks ``pixel``.

    Args:
        image_uint8: the RGB image.
        grid: the node grid ``(h', w')``.
        patch: image pixels per node side.
        pixel: ``(y, x)`` in image coordinates.
        node: the flat index of the node to highlight (default: the cell that holds ``pixel``).

    Shape:
        image_uint8: [H, W, 3]
    """
    from matplotlib.patches import Rectangle

    image = _numpy(image_uint8)
    y, x = pixel
    if node is None:
        node = min(y // patch, grid[0] - 1) * grid[1] + min(x // patch, grid[1] - 1)
    i, j = divmod(int(node), grid[1])
    fig = new_figure((2 * _PANEL_WIDTH, 2 * _PANEL_WIDTH * image.shape[0] / image.shape[1] + 0.3))
    ax = fig.add_subplot()
    ax.imshow(image, interpolation="nearest")
    for k in range(1, grid[0]):
        ax.axhline(k * patch - 0.5, color="white", lw=0.5, alpha=0.7)
    for k in range(1, grid[1]):
        ax.axvline(k * patch - 0.5, color="white", lw=0.5, alpha=0.7)
    corner = (j * patch - 0.5, i * patch - 0.5)
    ax.add_patch(Rectangle(corner, patch, patch, fill=False, edgecolor="cyan", linewidth=2))
    ax.plot([x], [y], "x", color="cyan", ms=8, mew=2)
    ax.set_title(f"{grid[0]} x {grid[1]} nodes; node ({i}, {j}) holds pixel {y, x}", fontsize=9)
    ax.set_axis_off()
    return fig


def plot_assignment(
    image_uint8: np.ndarray | torch.Tensor,
    assignment: np.ndarray | torch.Tensor,
    nodes: int = 6,
) -> Figure:
    """The ``nodes`` feature-space nodes with the largest total response, one panel each.

    The total response of node ``k`` is ``sum over pixels |H_F[k]|`` (the assignment is
    signed). Each panel shows the node's map upsampled to the image, with a diverging colour
    scale centred on zero and its own colour bar, half-transparent over a grey copy of the
    image.

    Args:
        image_uint8: the RGB image.
        assignment: the projection of every pixel onto the nodes (:func:`feature_assignment`).
        nodes: how many nodes to draw.

    Shape:
        image_uint8: [H_img, W_img, 3], assignment: [D2, H, W]
    """
    image = _numpy(image_uint8)
    maps = _numpy(assignment).astype(np.float32)
    if maps.ndim != 3:
        raise ValueError(f"assignment must be [D2, H, W], got shape {maps.shape}")
    count = max(1, min(nodes, maps.shape[0]))
    order = np.argsort(-np.abs(maps).sum(axis=(1, 2)), kind="stable")[:count]
    height, width = image.shape[:2]
    upsampled = _upsampled(maps[order], (height, width))
    grey = image.mean(axis=2)
    columns = min(count, 3)
    rows = -(-count // columns)
    panel_height = _PANEL_WIDTH * height / width
    fig = new_figure((columns * (_PANEL_WIDTH + 0.6), rows * (panel_height + 0.4)))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, node, heat in zip(axes, order, upsampled, strict=False):
        limit = float(np.abs(heat).max()) or 1.0
        ax.imshow(grey, cmap="gray", interpolation="nearest")
        shown = ax.imshow(
            heat, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.7, interpolation="nearest"
        )
        ax.set_title(f"node {int(node)}", fontsize=9)
        ax.set_axis_off()
        fig.colorbar(shown, ax=ax, shrink=0.8).ax.tick_params(labelsize=7)
    for ax in axes[count:]:
        ax.set_axis_off()
    return fig


def adjacency_heatmap(matrix: np.ndarray | torch.Tensor, title: str = "") -> Figure:
    """A square matrix (an adjacency ``A``) as a heat map with a colour bar.

    A diverging colour scale centred on zero when the matrix has both signs, else viridis;
    every row and column is numbered when there are at most 16, else integer ticks.

    Args:
        matrix: the matrix.
        title: the axes' title.

    Shape:
        matrix: [n, n]
    """
    from matplotlib.ticker import MaxNLocator

    values = _numpy(matrix).astype(np.float64)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"matrix must be square [n, n], got shape {values.shape}")
    n = values.shape[0]
    fig = new_figure((4.2, 3.6))
    ax = fig.add_subplot()
    if values.size and values.min() < 0 < values.max():
        limit = float(np.abs(values).max())
        shown = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    else:
        shown = ax.imshow(values, cmap="viridis", interpolation="nearest")
    if n <= 16:
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
    else:  # node indices are integers
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("node j")
    ax.set_ylabel("node i")
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(shown, ax=ax, shrink=0.85)
    return fig


def class_projections(
    assignment: torch.Tensor, mask: torch.Tensor
) -> tuple[list[int], torch.Tensor]:
    """The mean assignment of each class's pixels onto every node.

    The label ``mask`` is downsampled to the assignment's grid by nearest neighbour; the
    ignored label is left out.

    Args:
        assignment: the assignment of every pixel to the nodes (:func:`feature_assignment`).
        mask: the label image, train ids.

    Returns:
        ``(class ids present, in increasing order; their mean assignments)``.

    Shape:
        assignment: [D2, H, W], mask: [H_img, W_img] -> means [classes, D2]
    """
    if assignment.dim() != 3 or mask.dim() != 2:
        raise ValueError(
            f"assignment must be [D2, H, W] and mask [H, W], got {tuple(assignment.shape)} "
            f"and {tuple(mask.shape)}"
        )
    grid = torch.nn.functional.interpolate(
        mask[None, None].float(), size=tuple(assignment.shape[-2:]), mode="nearest"
    )[0, 0].long()
    ids = [c for c in grid.unique().tolist() if c != IGNORE_INDEX]
    if not ids:
        return [], assignment.new_zeros(0, assignment.shape[0])
    return ids, torch.stack([assignment[:, grid == c].mean(1) for c in ids])


def closest_class_pairs(
    assignment: torch.Tensor, mask: torch.Tensor, pairs: int = 3
) -> list[tuple[float, int, int]]:
    """The pairs of classes whose mean assignments (:func:`class_projections`) are closest.

    Args:
        assignment: the assignment of every pixel to the nodes.
        mask: the label image, train ids.
        pairs: how many pairs to return.

    Returns:
        ``(Euclidean distance over all nodes, class id, class id)``, closest first (ties by the
        ids), each pair once with the smaller id first.

    Shape:
        assignment: [D2, H, W], mask: [H_img, W_img]
    """
    ids, means = class_projections(assignment, mask)
    distance = torch.cdist(means, means)
    found = sorted(
        (float(distance[a, b]), ids[a], ids[b])
        for a in range(len(ids))
        for b in range(a + 1, len(ids))
    )
    return found[:pairs]


def plot_matrix_change(
    trained: np.ndarray | torch.Tensor, initial: np.ndarray | torch.Tensor, label: str = "A"
) -> Figure:
    """A trained matrix | its change from initialisation | the change beyond a uniform shrink.

    The third panel is ``R = trained - c * initial`` with ``c`` the least-squares factor of
    :func:`~dgcn.training.weight_change.split_change`; the titles give the two changes relative
    to ``|initial|``. Each panel has its own diverging colour scale, centred on zero, and its
    own colour bar.

    Args:
        trained: the matrix after training (an adjacency: rows and columns are nodes).
        initial: the same matrix at initialisation.
        label: the matrix's name in the titles.

    Shape:
        trained, initial: [n, n]
    """
    after = torch.as_tensor(_numpy(trained)).double()
    before = torch.as_tensor(_numpy(initial)).double()
    if after.dim() != 2 or after.shape != before.shape:
        raise ValueError(
            f"trained and initial must be matrices of one shape, got {tuple(after.shape)} "
            f"and {tuple(before.shape)}"
        )
    change = split_change(after, before)
    panels = [
        (after, f"{label} after training"),
        (after - before, f"{label} - {label}(init): {100 * change.moved:.1f} % of |{label}(init)|"),
        (
            after - change.c * before,
            f"{label} - c {label}(init), c = {change.c:.4f}: {100 * change.beyond_shrink:.2f} %",
        ),
    ]
    fig = new_figure((12.0, 3.3), dpi=80)
    step = max(1, len(after) // 8)
    for ax, (matrix, title) in zip(fig.subplots(1, 3), panels, strict=True):
        limit = float(matrix.abs().max()) or 1.0
        shown = ax.imshow(
            matrix.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest"
        )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("node j", fontsize=8)
        ax.set_ylabel("node i", fontsize=8)
        ax.set_xticks(range(0, len(matrix), step))
        ax.set_yticks(range(0, len(matrix), step))
        ax.tick_params(labelsize=7)
        fig.colorbar(shown, ax=ax, shrink=0.85).ax.tick_params(labelsize=7)
    return fig


__all__ = [
    "adjacency_heatmap",
    "class_projections",
    "closest_class_pairs",
    "capture_graph_input",
    "coordinate_affinity",
    "feature_assignment",
    "feature_pixel",
    "node_of_pixel",
    "plot_affinity",
    "plot_assignment",
    "plot_matrix_change",
    "plot_node_grid",
    "reprojection_inputs",
    "reprojection_norms",
]
