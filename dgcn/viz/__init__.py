"""Figures and colours: the Cityscapes palette, overlays, prediction grids, IoU bars, curves,
an ablation's gains and a benchmark's numbers, the cost of context modules, marks (boxes and
outlines) on a scene.

matplotlib is imported only when a figure is drawn, so the array helpers (``colorize``,
``denormalize``, ``overlay``, ``error_map``) work without it.
"""

from dgcn.viz import cost, graphs, inspector, regions
from dgcn.viz.ablation import gain_bars, range_bars
from dgcn.viz.architecture import architecture_diagram
from dgcn.viz.cost import context_cost_figure
from dgcn.viz.palette import (
    MAX_DPI,
    colorize,
    dataset_palette,
    denormalize,
    error_map,
    legend,
    new_figure,
    overlay,
)
from dgcn.viz.predictions import (
    confusion_heatmap,
    iou_bars,
    prediction_grid,
    save_figure,
    training_curves,
)

__all__ = [
    "MAX_DPI",
    "architecture_diagram",
    "colorize",
    "confusion_heatmap",
    "context_cost_figure",
    "cost",
    "dataset_palette",
    "denormalize",
    "error_map",
    "gain_bars",
    "graphs",
    "inspector",
    "iou_bars",
    "legend",
    "new_figure",
    "overlay",
    "prediction_grid",
    "range_bars",
    "regions",
    "save_figure",
    "training_curves",
]
