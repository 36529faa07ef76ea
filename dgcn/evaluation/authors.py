"""The authors' released evaluation (``eval.py`` of lxtGH/GALD-DGCNet), re-computed step by step.

A reference for :mod:`dgcn.evaluation.prediction`, written from the script's steps in plain
torch and numpy (``docs/reference/official_dgcnet.md``, "Test-time averaging"), for the tests
and notebook 07; nothing in the package predicts through it. Every function takes ``net``, a
callable from a normalised image ``[1, 3, h, w]`` to the network's logits at its own output
stride (8 for DGCNet: the head's output, never resized; :func:`stride_logits` makes one from a
:class:`~dgcn.models.network.DGCNet`), and returns what the script accumulates: the mean
logits, float64, ``[K, H, W]`` (the script's ``full_probs`` is the same array as
``[H, W, K]``; its prediction is their argmax, no softmax is taken).

- Whole image (their ``predict_whole``): one pass; the logits upsampled once, bilinearly with
  ``align_corners=True``, straight to the requested size.
- Sliding window (their ``predict_sliding``): overlap 1/3, stride ``ceil(t_h (1 - 1/3))`` from
  the tile's height for both axes, ``ceil((H - t_h) / stride) + 1`` rows (columns alike); each
  window ``x1 = col * stride``, ``x2 = min(x1 + t_w, W)``, ``x1 = max(x2 - t_w, 0)`` (rows
  alike), zero-padded at the bottom and the right up to the tile where it is smaller (a tile
  larger than the image), predicted, upsampled to the tile, cropped back to the window, added
  into a float64 sum and counted; the sum divided by the count. Logits, no flip.
- Multi-scale (their ``predict_multiscale``): each scale's image resized bilinearly to
  ``round(s H) x round(s W)`` (``scipy.ndimage.zoom(order=1, prefilter=False)``, which maps
  the corners onto the corners: ``align_corners=True``; Python's ``round``, halves to even),
  predicted whole with the logits upsampled once to the full size; with flip also the mirrored
  image, ``0.5 (view + mirrored view)`` per scale; the scales' sum divided by their number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: the overlap of the script's sliding window, fixed there
OVERLAP = 1 / 3

Net = Callable[[torch.Tensor], torch.Tensor]


def stride_logits(model: nn.Module) -> Net:
    """A DGCNet's logits at its output stride, as the authors' network returns them: the head
    on the backbone's last feature, nothing resized (``model`` in eval mode)."""

    def net(image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.head(model.backbone(image)["out"])

    return net


def upsample(logits: torch.Tensor, size: Sequence[int]) -> np.ndarray:
    """The script's ``nn.Upsample(size, mode="bilinear", align_corners=True)`` on one image's
    logits, in float32 as there, returned as float64 ``[K, *size]``."""
    with torch.no_grad():
        up = F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=True)
    return up[0].double().numpy()


def _check(image: torch.Tensor) -> tuple[int, int]:
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"one image [1, 3, H, W] at a time, as the script; got {image.shape}")
    return int(image.shape[-2]), int(image.shape[-1])


def authors_whole(net: Net, image: torch.Tensor, size: Sequence[int] | None = None) -> np.ndarray:
    """Their ``predict_whole``: one pass, the logits upsampled once to ``size`` (default: the
    image's own).

    Shape:
        image: [1, 3, h, w] -> mean logits [K, *size] float64
    """
    h, w = _check(image)
    return upsample(net(image), (h, w) if size is None else size)


def authors_windows(
    size: Sequence[int], tile: int | Sequence[int]
) -> list[tuple[int, int, int, int]]:
    """The script's windows ``(y1, y2, x1, x2)`` on an image of ``size`` (H, W), row by row.

    Raises:
        ValueError: where the script's count of rows or columns is 0 (a side at most
            ``tile - stride``): it would divide by a zero count.
    """
    height, width = (int(s) for s in size)
    th, tw = (tile, tile) if isinstance(tile, int) else (int(t) for t in tile)
    stride = math.ceil(th * (1 - OVERLAP))  # the tile's height, for both axes
    rows = int(math.ceil((height - th) / stride) + 1)
    cols = int(math.ceil((width - tw) / stride) + 1)
    if rows < 1 or cols < 1:
        raise ValueError(f"the script predicts no window on {height} x {width} with tile {tile}")
    windows = []
    for row in range(rows):
        for col in range(cols):
            x1, y1 = col * stride, row * stride
            x2, y2 = min(x1 + tw, width), min(y1 + th, height)
            x1, y1 = max(x2 - tw, 0), max(y2 - th, 0)
            windows.append((y1, y2, x1, x2))
    return windows


def authors_sliding(net: Net, image: torch.Tensor, tile: int | Sequence[int]) -> np.ndarray:
    """Their ``predict_sliding``: every window zero-padded to the tile, predicted, upsampled
    to the tile, cropped back; the float64 sum divided by the count of windows per pixel.

    Shape:
        image: [1, 3, H, W] -> mean logits [K, H, W] float64
    """
    height, width = _check(image)
    th, tw = (tile, tile) if isinstance(tile, int) else (int(t) for t in tile)
    total: np.ndarray | None = None
    count = np.zeros((height, width))
    for y1, y2, x1, x2 in authors_windows((height, width), tile):
        window = image[..., y1:y2, x1:x2]
        h, w = window.shape[-2:]
        padded = F.pad(window, (0, tw - w, 0, th - h))  # zeros at the right and the bottom
        logits = upsample(net(padded), (th, tw))[:, :h, :w]
        if total is None:
            total = np.zeros((logits.shape[0], height, width))
        total[:, y1:y2, x1:x2] += logits
        count[y1:y2, x1:x2] += 1
    return total / count


def zoom_size(size: Sequence[int], scale: float) -> tuple[int, int]:
    """The size ``scipy.ndimage.zoom`` gives an image of ``size`` at ``scale``: each side
    times the scale, rounded by Python's ``round`` (halves to even)."""
    return round(int(size[0]) * scale), round(int(size[1]) * scale)


def authors_multiscale(
    net: Net, image: torch.Tensor, scales: Sequence[float], flip: bool
) -> np.ndarray:
    """Their ``predict_multiscale``: every scale predicted whole, the logits upsampled once to
    the full size; with ``flip`` each scale is ``0.5 (view + mirrored view)``; the mean over
    the scales.

    Shape:
        image: [1, 3, H, W] -> mean logits [K, H, W] float64
    """
    height, width = _check(image)
    total: np.ndarray | None = None
    for scale in scales:
        scaled = F.interpolate(
            image, size=zoom_size((height, width), scale), mode="bilinear", align_corners=True
        )
        view = authors_whole(net, scaled, (height, width))
        if flip:
            mirrored = authors_whole(net, scaled.flip(-1), (height, width))[:, :, ::-1]
            view = 0.5 * (view + mirrored)
        total = view if total is None else total + view
    return total / len(scales)


def softmax(mean_logits: np.ndarray) -> np.ndarray:
    """The softmax over the classes of ``[K, H, W]`` logits, float64: what
    :mod:`dgcn.evaluation.prediction` returns of the same mean."""
    shifted = np.exp(mean_logits - mean_logits.max(axis=0, keepdims=True))
    return shifted / shifted.sum(axis=0, keepdims=True)


__all__ = [
    "OVERLAP",
    "authors_multiscale",
    "authors_sliding",
    "authors_whole",
    "authors_windows",
    "softmax",
    "stride_logits",
    "upsample",
    "zoom_size",
]
