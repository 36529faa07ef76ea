"""The array side of looking inside the graphs: affinities, assignments, hooks.

:func:`coordinate_affinity`, :func:`feature_assignment`, :func:`class_projections` and
:func:`capture_graph_input` return tensors (:func:`closest_class_pairs` a list);
:func:`feature_pixel` and :func:`node_of_pixel` map an image pixel to the feature grid and to
a coordinate node; :func:`reprojection_norms` and :func:`reprojection_inputs` find and watch the
BatchNorm that closes each graph's reprojection (forward pre-hooks). No matplotlib here; the
figures are in :mod:`dgcn.viz.graphs_draw`, and :mod:`dgcn.viz.graphs` gives both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from dgcn.datasets.labels import IGNORE_INDEX
from dgcn.models.coordinate_gcn import CoordinateGCN, OfficialCoordinateGCN
from dgcn.models.dual_gcn import DualGCN
from dgcn.models.feature_gcn import FeatureGCN, OfficialFeatureGCN


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


__all__ = [
    "capture_graph_input",
    "class_projections",
    "closest_class_pairs",
    "coordinate_affinity",
    "feature_assignment",
    "feature_pixel",
    "node_of_pixel",
    "reprojection_inputs",
    "reprojection_norms",
]
