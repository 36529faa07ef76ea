"""Prediction as the authors evaluate: whole image, sliding window, multi-scale with flipping.

Every predictor takes a model in eval mode that returns ``{"out": logits}`` (torchvision's
segmentation convention) and returns softmax probabilities at the input size. The sliding
window follows the authors' ``predict_sliding`` (tiles overlapping by a fraction of a tile);
the multi-scale test resizes the image to each scale, predicts, resizes the probabilities back
and averages them, with the horizontally flipped image counted as one more view.

:func:`predict` is the entry point: it takes a :class:`dgcn.config.EvalConfig`, where the
defaults of every option live (the authors' Cityscapes protocol), or its fields as keyword
arguments. The functions below it take every option as a keyword argument without a default.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from dgcn.config import EvalConfig
from dgcn.models.common import resize

MODES = ("whole", "slide", "multiscale")
#: the default test scales of :class:`dgcn.config.EvalConfig` (the authors' multi-scale row)
DEFAULT_SCALES: tuple[float, ...] = tuple(EvalConfig().scales)


def eval_options(config: EvalConfig | None = None, **options: Any) -> EvalConfig:
    """``config`` (default: a fresh :class:`EvalConfig`) with ``options`` replacing its fields.

    ``tile=None`` is allowed: the multi-scale mode then predicts each scale whole.

    Raises:
        TypeError: an option that is not a field of :class:`EvalConfig`.
    """
    names = [f.name for f in dataclasses.fields(EvalConfig)]
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise TypeError(f"unknown inference option {unknown[0]!r}; options: {', '.join(names)}")
    return dataclasses.replace(config or EvalConfig(), **options)


def _pair(tile: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(tile, int):
        tile = (tile, tile)
    th, tw = (int(t) for t in tile)
    if th < 1 or tw < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    return th, tw


def _softmax(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """One forward pass -> float32 probabilities at the input size."""
    out = model(images)
    logits = out["out"] if isinstance(out, Mapping) else out
    return resize(logits.float(), images.shape[-2:]).softmax(dim=1)


def predict_whole(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities of one forward pass on the whole images.

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32
    """
    with torch.inference_mode():
        return _softmax(model, images)


def _spans(length: int, tile: int, overlap: float) -> list[tuple[int, int]]:
    if tile >= length:
        return [(0, length)]
    stride = math.ceil(tile * (1 - overlap))  # as the authors, float arithmetic included
    count = math.ceil((length - tile) / stride) + 1
    spans = []
    for i in range(count):
        end = min(i * stride + tile, length)  # the last window is shifted back inside
        spans.append((end - tile, end))
    return spans


def sliding_windows(
    size: tuple[int, int], *, tile: int | Sequence[int], overlap: float
) -> list[tuple[int, int, int, int]]:
    """The windows of :func:`predict_slide`, row by row.

    Along each dimension the stride is ``ceil(tile * (1 - overlap))``; windows start at
    multiples of the stride, the last one is shifted back so that it ends at the border, and a
    tile at least as large as the image becomes the whole image in that dimension (no padding).

    Args:
        size: the image's (H, W).
        tile: the window's side, or (height, width).
        overlap: the fraction of a tile shared by neighbours, in [0, 1).

    Returns:
        ``(y1, y2, x1, x2)`` per window; ``images[..., y1:y2, x1:x2]`` is the window.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    th, tw = _pair(tile)
    height, width = (int(s) for s in size)
    return [
        (y1, y2, x1, x2)
        for y1, y2 in _spans(height, th, overlap)
        for x1, x2 in _spans(width, tw, overlap)
    ]


def predict_slide(
    model: nn.Module, images: torch.Tensor, *, tile: int | Sequence[int], overlap: float
) -> torch.Tensor:
    """Sliding-window probabilities: the softmax of every window, averaged where they overlap.

    The windows are those of :func:`sliding_windows`. When the tile covers the image this is
    exactly one forward pass on the whole image, i.e. :func:`predict_whole`.

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.
        tile: the window's side, or (height, width).
        overlap: the fraction of a tile shared by neighbours.

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32
    """
    height, width = images.shape[-2:]
    windows = sliding_windows((height, width), tile=tile, overlap=overlap)
    with torch.inference_mode():
        if len(windows) == 1:
            return _softmax(model, images)
        probs: torch.Tensor | None = None
        count = torch.zeros(1, 1, height, width, dtype=torch.float32, device=images.device)
        for y1, y2, x1, x2 in windows:
            window = _softmax(model, images[..., y1:y2, x1:x2].contiguous())
            if probs is None:
                probs = window.new_zeros(images.shape[0], window.shape[1], height, width)
            probs[..., y1:y2, x1:x2] += window
            count[..., y1:y2, x1:x2] += 1
        return probs / count


def predict_multiscale(
    model: nn.Module,
    images: torch.Tensor,
    *,
    scales: Sequence[float],
    flip: bool,
    tile: int | Sequence[int] | None,
    overlap: float,
) -> torch.Tensor:
    """Multi-scale (and flipped) probabilities, averaged at the input size.

    For each scale the images are resized bilinearly (``align_corners=True``) to
    ``round(scale * H) x round(scale * W)``, predicted whole (``tile=None``) or by sliding
    window, and the probabilities are resized back to H x W; with ``flip`` the mirrored images
    are predicted too and mirrored back. Every view weighs the same.

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.
        scales: the test scales.
        flip: also predict the horizontally flipped images.
        tile: None for whole-image inference at every scale, else the sliding window's tile.
        overlap: the sliding window's overlap (unused without a tile).

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32
    """
    if len(scales) == 0:
        raise ValueError("scales must hold at least one scale")
    height, width = images.shape[-2:]

    def one_view(x: torch.Tensor) -> torch.Tensor:
        if tile is None:
            return predict_whole(model, x)
        return predict_slide(model, x, tile=tile, overlap=overlap)

    total: torch.Tensor | None = None
    views = 0
    with torch.inference_mode():
        for scale in scales:
            if scale <= 0:
                raise ValueError(f"scales must be positive, got {scale}")
            size = (max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5)))
            scaled = resize(images, size)
            probs = [one_view(scaled)]
            if flip:
                probs.append(one_view(scaled.flip(-1)).flip(-1))
            for p in probs:
                p = resize(p, (height, width))
                total = p if total is None else total + p
                views += 1
        return total / views


def check_mode(mode: str) -> None:
    """Raises ValueError naming the modes when ``mode`` is not one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"unknown inference mode {mode!r}; choose one of {', '.join(MODES)}")


def predict(
    model: nn.Module, images: torch.Tensor, config: EvalConfig | None = None, **options: Any
) -> torch.Tensor:
    """Probabilities by one of the three test modes.

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.
        config: the test mode; None: the defaults of :class:`dgcn.config.EvalConfig`.
        **options: keyword-only fields of :class:`~dgcn.config.EvalConfig` that replace the
            config's: ``mode`` (``"whole"``: one forward pass, ``"slide"``: windows of
            ``tile``, ``"multiscale"``: every scale of ``scales``, by sliding window of ``tile``
            when it is not None, else whole), ``tile``, ``overlap``, ``scales``, ``flip`` (also
            average the horizontally flipped images, any mode).

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32

    Raises:
        ValueError: an unknown mode, or ``"slide"`` without a tile.
        TypeError: an unknown option.
    """
    cfg = eval_options(config, **options)
    check_mode(cfg.mode)
    if cfg.mode == "slide" and cfg.tile is None:
        raise ValueError('mode "slide" needs a tile size')
    if cfg.mode == "multiscale":
        return predict_multiscale(
            model, images, scales=cfg.scales, flip=cfg.flip, tile=cfg.tile, overlap=cfg.overlap
        )
    tile = None if cfg.mode == "whole" else cfg.tile
    if cfg.flip:  # one scale, two views
        return predict_multiscale(
            model, images, scales=(1.0,), flip=True, tile=tile, overlap=cfg.overlap
        )
    if tile is None:
        return predict_whole(model, images)
    return predict_slide(model, images, tile=tile, overlap=cfg.overlap)


__all__ = [
    "DEFAULT_SCALES",
    "MODES",
    "eval_options",
    "predict",
    "predict_multiscale",
    "predict_slide",
    "predict_whole",
    "sliding_windows",
]
