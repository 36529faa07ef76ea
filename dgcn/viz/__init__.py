"""Figures and colours: the Cityscapes palette, overlays, prediction grids, IoU bars, curves.

matplotlib is imported only when a figure is drawn, so the array helpers (``colorize``,
``denormalize``, ``overlay``, ``error_map``) work without it.
"""

from dgcn.viz import graphs, inspector
from dgcn.viz.architecture import architecture_diagram
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
    "dataset_palette",
    "denormalize",
    "error_map",
    "graphs",
    "inspector",
    "iou_bars",
    "legend",
    "new_figure",
    "overlay",
    "prediction_grid",
    "save_figure",
    "training_curves",
]
