"""Colours: train ids to the Cityscapes palette, images back to pixels, overlays, error maps.

The array helpers need only numpy; matplotlib is imported by the functions that draw figures,
so ``colorize`` works where matplotlib is not installed. Figures are built on
``matplotlib.figure.Figure`` directly (no pyplot state), so they render headless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from dgcn.datasets.labels import CLASS_NAMES, IGNORE_INDEX, PALETTE
from dgcn.datasets.pascal_context.labels import palette as context_palette
from dgcn.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: the largest dpi of a figure written by dgcn.viz (small PNGs in notebooks and tests)
MAX_DPI = 100

#: colours of :func:`error_map`
CORRECT_COLOR = (80, 80, 80)
WRONG_COLOR = (230, 25, 25)
IGNORE_COLOR = (0, 0, 0)

# 256 entries: the 19 train ids, then black for 255 and anything else
_LUT = np.zeros((256, 3), dtype=np.uint8)
_LUT[: len(PALETTE)] = PALETTE


_DISPLAY_READY = False


def _register_notebook_display() -> None:
    """Let a bare ``Figure`` render as PNG when it ends a notebook cell (no pyplot needed)."""
    global _DISPLAY_READY
    if _DISPLAY_READY:
        return
    _DISPLAY_READY = True
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:  # not in IPython: nothing to register
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "display_formatter"):
        select_figure_formats(shell, {"png"})


def new_figure(figsize: tuple[float, float], dpi: int = MAX_DPI) -> Figure:
    """A matplotlib ``Figure`` outside pyplot (no global state, any backend), dpi <= 100.

    In a notebook, such figures display as PNG when they end a cell.
    """
    from matplotlib.figure import Figure

    _register_notebook_display()
    return Figure(figsize=figsize, dpi=min(dpi, MAX_DPI), layout="constrained")


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def dataset_palette(dataset: str) -> np.ndarray:
    """The [K, 3] uint8 colours of a dataset's K train ids (``Config.data.dataset``)."""
    if dataset.startswith("pascal-context"):
        return context_palette(60 if dataset == "pascal-context-60" else 59)
    return np.asarray(PALETTE, dtype=np.uint8)


def _lookup(palette: np.ndarray | None) -> np.ndarray:
    if palette is None:
        return _LUT
    palette = np.asarray(palette, dtype=np.uint8)
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) > IGNORE_INDEX:
        raise ValueError(f"a palette is [K, 3] colours with K < 255, got {palette.shape}")
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = palette
    return lut


def colorize(train_ids: np.ndarray | torch.Tensor, palette: np.ndarray | None = None) -> np.ndarray:
    """The colour of every pixel's train id; 255 (ignore) and ids beyond the palette are black.

    Args:
        train_ids: a mask or a prediction of train ids.
        palette: [K, 3] uint8 colours of ids 0..K-1 (:func:`dataset_palette`); default the 19
            Cityscapes colours.

    Shape:
        train_ids: [H, W] -> [H, W, 3] uint8
    """
    lut = _lookup(palette)
    size = len(PALETTE) if palette is None else len(palette)
    ids = _numpy(train_ids)
    if not np.issubdtype(ids.dtype, np.integer):
        ids = ids.astype(np.int64)
    ids = np.where((ids >= 0) & (ids < size), ids, IGNORE_INDEX)
    return lut[ids]


def denormalize(
    image: np.ndarray | torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Undo the ImageNet normalisation of a loader's image: back to 8-bit RGB.

    Args:
        image: a normalised image, channels first.
        mean, std: the normalisation's per-channel mean and standard deviation.

    Shape:
        image: [3, H, W] -> [H, W, 3] uint8
    """
    x = _numpy(image).astype(np.float32)
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"image must be [3, H, W], got shape {x.shape}")
    x = x * np.asarray(std, np.float32)[:, None, None] + np.asarray(mean, np.float32)[:, None, None]
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def overlay(
    image: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor,
    alpha: float = 0.5,
    palette: np.ndarray | None = None,
) -> np.ndarray:
    """Blend the colours of a mask over an image; ignored pixels keep the image.

    Args:
        image: 8-bit RGB (from :func:`denormalize`).
        mask: train ids [H, W], or colours [H, W, 3] (then every pixel is blended).
        alpha: the weight of the mask's colour.
        palette: the colours of the train ids (:func:`colorize`); default Cityscapes.

    Shape:
        image: [H, W, 3] uint8, mask: [H, W] -> [H, W, 3] uint8
    """
    image = _numpy(image)
    mask = _numpy(mask)
    if mask.ndim == 3:
        colors, keep = mask, np.zeros(mask.shape[:2], dtype=bool)
    else:
        colors = colorize(mask, palette)
        keep = (mask < 0) | (mask >= (len(PALETTE) if palette is None else len(palette)))
    if colors.shape != image.shape:
        raise ValueError(f"image {image.shape} and mask {mask.shape} differ in size")
    blend = (1 - alpha) * image.astype(np.float32) + alpha * colors.astype(np.float32)
    blend = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    return np.where(keep[..., None], image, blend).astype(np.uint8)


def error_map(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Where a prediction is wrong: grey = correct, red = wrong, black = ignored.

    Args:
        pred: predicted train ids.
        target: ground-truth train ids, ``ignore_index`` = ignore.
        ignore_index: the target value of unevaluated pixels.

    Shape:
        pred: [H, W], target: [H, W] -> [H, W, 3] uint8
    """
    pred, target = _numpy(pred), _numpy(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    out = np.empty((*target.shape, 3), dtype=np.uint8)
    out[...] = WRONG_COLOR
    out[pred == target] = CORRECT_COLOR
    out[target == ignore_index] = IGNORE_COLOR
    return out


def legend(
    class_names: Sequence[str] = CLASS_NAMES, palette: np.ndarray | None = None, columns: int = 4
) -> Figure:
    """A figure of colour swatches, one per class.

    Args:
        class_names: the names, in train-id order.
        palette: [len(class_names), 3] uint8 colours; None uses the Cityscapes palette.
        columns: swatches per row.
    """
    from matplotlib.patches import Patch

    colors = PALETTE if palette is None else np.asarray(palette)
    if len(colors) < len(class_names):
        raise ValueError(f"{len(class_names)} names but only {len(colors)} colours")
    rows = -(-len(class_names) // columns)
    fig = new_figure((1.5 * columns, 0.22 * rows + 0.2))
    handles = [
        Patch(facecolor=np.asarray(c) / 255, edgecolor="black", linewidth=0.5, label=name)
        for name, c in zip(class_names, colors, strict=False)
    ]
    ax = fig.add_subplot()  # an axes (hidden) so notebooks' inline display draws the figure
    ax.set_axis_off()
    ax.legend(handles=handles, loc="center", ncols=columns, frameon=False, fontsize=9)
    return fig


__all__ = [
    "MAX_DPI",
    "colorize",
    "denormalize",
    "error_map",
    "legend",
    "new_figure",
    "overlay",
]
