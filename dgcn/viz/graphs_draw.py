"""The figures of looking inside the graphs: affinities, node grids, assignments, matrices.

Each helper returns a ``matplotlib.figure.Figure`` built without pyplot (matplotlib is
imported only when a figure is drawn); the arrays they draw come from
:mod:`dgcn.viz.graphs_compute`, and :mod:`dgcn.viz.graphs` gives both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from dgcn.models.common import resize
from dgcn.training.weight_change import split_change
from dgcn.viz.palette import _numpy, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_PANEL_WIDTH = 2.6  # inches per image panel (260 px at 100 dpi, about a MiniCity image)


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

    The affinity (from :func:`~dgcn.viz.graphs.coordinate_affinity`) is upsampled bilinearly
    to the image and drawn half-transparent over a grey copy of it, with a colour bar; a cross
    marks the pixel.

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
        assignment: the projection of every pixel onto the nodes
            (:func:`~dgcn.viz.graphs.feature_assignment`).
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
    "plot_affinity",
    "plot_assignment",
    "plot_matrix_change",
    "plot_node_grid",
]
