"""Marks on a scene: boxes and outlines with a tag, drawn over an image and over its label.

Notebook 00 uses them to point at what MiniCity's three deliberate ambiguities are about: the
road and the sidewalk, the building and the wall (outlines of their regions), and every truck,
bus and train (a box around its whole side, tagged with its length against its height, the
only thing that tells the three apart).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from dgcn.datasets.minicity.traffic import BIG_HEIGHT, BigVehicle
from dgcn.evaluation.objects import label_components
from dgcn.viz.palette import _numpy, colorize, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: colours of the big vehicles' boxes: the Cityscapes bus and train are two close blue-greens
VEHICLE_COLOURS = {"truck": (230, 120, 0), "bus": (30, 160, 60), "train": (150, 70, 210)}
#: the width of a figure of this module (inches): the book's page, at 100 dpi about 960 px
BOOK_WIDTH = 9.6
LABEL_TITLE = "label (train ids), the same boxes and outlines"


@dataclass(frozen=True)
class Mark:
    """A region to point at: a box or the outline of a mask, with a tag.

    Attributes:
        text: the tag (a newline starts a second line).
        colour: RGB 0-255 of the line and of the tag's frame.
        box: ``(left, top, right, bottom)`` in pixels from the image's top-left corner (a
            pixel's centre at +0.5), or None.
        mask: [H, W] bool, outlined where it is True, or None.
        at: ``(x, y)`` in the same pixels: where the tag goes.
        side: where the tag stands from ``at``: "above", "below" or "on" (centred).
    """

    text: str
    colour: tuple[int, int, int]
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None
    at: tuple[float, float] = (0.0, 0.0)
    side: str = "on"


def vehicle_marks(
    vehicles: Sequence[BigVehicle],
    width: int,
    colours: Mapping[str, tuple[int, int, int]] = VEHICLE_COLOURS,
) -> list[Mark]:
    """A box around each big vehicle's whole side, tagged with its class, its lane and its
    length: in pixels and in multiples of its height (the same in metres,
    ``length / BIG_HEIGHT``), or "cut by the border" where the image shows part of it.

    Where the vehicles stand at two depths (the cross street's two lanes) the tag names the
    lane, near or far; the near lane's tag goes below its box, the far lane's above.

    Args:
        vehicles: the records of one scene (``generate_scene(..., vehicles=[])``).
        width: the image's width in pixels.
        colours: the box colour of each class name.
    """
    depths = sorted({v.depth for v in vehicles})
    marks = []
    for vehicle in vehicles:
        name = vehicle.name
        left, top, right, bottom = vehicle.box
        near = len(depths) > 1 and vehicle.depth == depths[0]
        lane = "" if len(depths) < 2 else (" (near lane)" if near else " (far lane)")
        if left < 0 or right > width:
            size = "cut by the border"
        else:
            size = f"{right - left:.0f} px = {vehicle.length / BIG_HEIGHT:.1f} heights"
        x = min(max(left, 0.0), width - 1.0)
        marks.append(
            Mark(
                f"{name}{lane}\n{size}",
                tuple(colours[name]),
                box=vehicle.box,
                at=(x, bottom if near else top),
                side="below" if near else "above",
            )
        )
    return marks


def class_outlines(
    target: np.ndarray | torch.Tensor,
    tags: Mapping[int, str],
    colours: Mapping[int, tuple[int, int, int]],
    min_pixels: int = 40,
) -> list[Mark]:
    """The outline of each class's regions (4-connected components of at least
    ``min_pixels``), tagged once, at the pixel of its largest region nearest that region's
    centre.

    Args:
        target: train ids.
        tags: the tag of each train id to outline.
        colours: the outline colour of each of those train ids.
        min_pixels: smaller regions are not outlined.

    Shape:
        target: [H, W]
    """
    target = torch.as_tensor(_numpy(target)).long()
    marks = []
    for class_id, text in tags.items():
        components = label_components(target[None], [class_id])[0].numpy()
        sizes = np.bincount(components[components >= 0], minlength=1)
        kept = np.flatnonzero(sizes >= min_pixels)
        if len(kept) == 0:
            continue
        largest = np.argwhere(components == kept[np.argmax(sizes[kept])])
        centre = largest.mean(0)
        row, col = largest[np.argmin(((largest - centre) ** 2).sum(1))]
        mask = np.isin(components, kept)
        marks.append(Mark(text, tuple(colours[class_id]), mask=mask, at=(col + 0.5, row + 0.5)))
    return marks


def _tag_spots(
    marks: Sequence[Mark], size: tuple[int, int], fontsize: float, points_per_pixel: float
) -> list[tuple[float, float]]:
    """The top-left corner (pixels) of every tag: the first place inside the image and off
    the tags placed before it, trying its mark's side of its box first, then inside the box at
    its top, then the box's far side, then each side a tag's height further away in turn; at
    each height the tag's left end at the box's left, then its right end at the box's right.

    A tag's size is estimated from its characters: no renderer needed, the same in a test
    and in a notebook.
    """
    height, width = size
    scale = fontsize / points_per_pixel  # the font size in image pixels
    placed: list[tuple[float, float, float, float]] = []
    for mark in marks:
        lines = mark.text.split("\n")
        w = 0.55 * scale * max(len(line) for line in lines) + 0.5 * scale
        h = 1.25 * scale * len(lines) + 0.5 * scale
        x, y = mark.at
        left, top, right, bottom = mark.box or (x, y, x, y)
        if mark.side == "on":
            starts, rows = [x - w / 2], [y - h / 2 + k * h for k in range(len(marks) + 1)]
        else:
            starts = [left, right - w]
            up = mark.side == "above"
            near, far = (top - h, bottom) if up else (bottom, top - h)
            rows = [near, top, far]
            for k in range(1, len(marks) + 1):
                rows += [near - k * h, far + k * h] if up else [near + k * h, far - k * h]
        starts = [min(max(x0, 0.0), max(width - w, 0.0)) for x0 in starts]
        spots = [(x0, y0) for y0 in rows for x0 in starts if 0 <= y0 <= height - h]
        free = [
            (x0, y0)
            for x0, y0 in spots
            if not any(x0 < b[2] and b[0] < x0 + w and y0 < b[3] and b[1] < y0 + h for b in placed)
        ]
        x0, y0 = (free or spots or [(starts[0], min(max(rows[0], 0.0), height - h))])[0]
        placed.append((x0, y0, x0 + w, y0 + h))
    return [(b[0], b[1]) for b in placed]


def draw_marks(
    ax: Axes,
    marks: Sequence[Mark],
    fontsize: float = 9.0,
    points_per_pixel: float | None = None,
) -> None:
    """Draw marks on an axes that shows the image (``imshow``: pixel centres at integers).

    Args:
        ax: the axes.
        marks: what to draw.
        fontsize: the size of the tags; 0 draws the boxes and outlines without them.
        points_per_pixel: the size of an image pixel on the page, in points, to keep tags from
            overlapping (by default from the axes' width).
    """
    from matplotlib.patches import Rectangle

    limits = ax.get_xlim(), ax.get_ylim()
    size = round(abs(limits[1][0] - limits[1][1])), round(abs(limits[0][1] - limits[0][0]))
    if points_per_pixel is None:
        points_per_pixel = ax.figure.get_figwidth() * 72 * ax.get_position().width / size[1]
    spots = _tag_spots(marks, size, fontsize, points_per_pixel) if fontsize else []
    for mark in marks:
        colour = np.asarray(mark.colour) / 255
        if mark.box is not None:
            left, top, right, bottom = mark.box
            corner = (left - 0.5, top - 0.5)
            ax.add_patch(Rectangle(corner, right - left, bottom - top, fill=False, ec=colour, lw=2))
        if mark.mask is not None:
            ax.contour(mark.mask.astype(np.float32), levels=[0.5], colors=[colour], linewidths=1.6)
    for mark, (x, y) in zip(marks, spots, strict=False):
        colour = np.asarray(mark.colour) / 255
        dark = colour @ np.array([0.3, 0.59, 0.11]) < 0.6
        ax.text(
            x - 0.5,
            y - 0.5,
            mark.text,
            fontsize=fontsize,
            color="white" if dark else "black",
            va="top",
            ha="left",
            linespacing=1.1,
            bbox={"facecolor": colour, "edgecolor": "none", "alpha": 0.85, "pad": 1.5},
            clip_on=True,
        )
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])


def marked_scenes(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray | torch.Tensor, Sequence[Mark]]],
    width: float = BOOK_WIDTH,
    fontsize: float = 9.0,
) -> Figure:
    """Image | colour label, one row per ``(title, RGB, train ids, marks)``: the marks on the
    image, their boxes and outlines (no tags) on the label.

    Args:
        rows: the title over the image, the 8-bit RGB image, its train ids and its marks.
        width: the figure's width in inches (the two panels share it).
        fontsize: the size of the tags; titles are one point larger.

    Shape:
        RGB: [H, W, 3] uint8, train ids: [H, W]
    """
    if not rows:
        raise ValueError("marked_scenes needs at least one row")
    height, image_width = _numpy(rows[0][2]).shape[-2:]
    panel_height = width / 2 * height / image_width
    fig = new_figure((width, len(rows) * (panel_height + 0.35)))
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for (title, picture, target, marks), pair in zip(rows, axes, strict=True):
        panels = ((title, picture, fontsize), (LABEL_TITLE, colorize(target), 0))
        for ax, (text, shown, size) in zip(pair, panels, strict=True):
            ax.imshow(shown, interpolation="nearest")
            draw_marks(ax, marks, size, points_per_pixel=width / 2 * 72 / image_width)
            ax.set_title(text, fontsize=fontsize + 1)
            ax.set_axis_off()
    return fig


__all__ = [
    "BOOK_WIDTH",
    "VEHICLE_COLOURS",
    "Mark",
    "class_outlines",
    "draw_marks",
    "marked_scenes",
    "vehicle_marks",
]
