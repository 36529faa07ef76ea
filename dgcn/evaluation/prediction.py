"""Prediction as the authors evaluate: whole image, sliding window, multi-scale with flipping.

Every predictor takes a model in eval mode that returns ``{"out": logits}`` (torchvision's
segmentation convention) and returns softmax probabilities at the input size. Where several
views of a pixel are combined (overlapping windows, scales, the flipped image) the predictors
average what the authors' evaluation averages (``docs/reference/official_dgcnet.md``,
"Test-time averaging"): the logits, each view's resized to the image size, with the
softmax taken once at the end (``average="logits"``, the default of
:class:`dgcn.config.EvalConfig`); ``average="probs"`` averages each view's softmax instead.
The sliding window places its tiles as the authors do (overlapping by a fraction of a tile;
a tile larger than the image zero-padded to its size); the multi-scale test resizes the image
to each scale, predicts it whole with the logits resized once to the image size, and
averages, with the horizontally flipped image counted as one more view.
:mod:`dgcn.evaluation.authors` re-computes the authors' script step by step; the tests hold
the three modes to it.

A model whose ``forward`` takes ``size`` (a :class:`~dgcn.models.network.DGCNet`) is asked
for its logits at the size a view needs, so they are resized once from the network's stride;
any other model's output is resized to that size afterwards.

:func:`predict` is the entry point: it takes a :class:`dgcn.config.EvalConfig`, where the
defaults of every option live (the authors' Cityscapes protocol), or its fields as keyword
arguments, and runs the model under the config's autocast precision (``eval.precision``:
``auto`` is bf16 on CUDA compute capability >= 8, fp16 below, fp32 on a CPU). The functions
below it take every option as a keyword argument without a default and run in the caller's
precision.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dgcn.config import EvalConfig
from dgcn.models.common import resize
from dgcn.precision import autocast_dtype, precision_name

MODES = ("whole", "slide", "multiscale")
#: what is averaged over the views of a pixel: the authors' logits, or probabilities
AVERAGES = ("logits", "probs")
#: the choices of ``eval.precision``
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: the default test scales of :class:`dgcn.config.EvalConfig` (the authors' multi-scale row)
DEFAULT_SCALES: tuple[float, ...] = tuple(EvalConfig().scales)


def eval_options(config: EvalConfig | None = None, **options: Any) -> EvalConfig:
    """``config`` (default: a fresh :class:`EvalConfig`) with ``options`` replacing its fields.

    ``tile=None`` is allowed (whole-image modes need none; ``"slide"`` then fails in
    :func:`predict`); ``scale_tile=None`` (the default) predicts every scale of the multi-scale
    mode whole.

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


def _check_average(average: str) -> None:
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")


def _takes_size(model: nn.Module) -> bool:
    """Whether ``model``'s forward takes ``size``, the size to return its logits at; a model
    inside ``torch.compile`` or (Distributed)DataParallel, which pass keyword arguments on
    but show only ``*args, **kwargs``, is asked through the module it wraps."""
    inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
    if isinstance(inner, nn.Module):
        return _takes_size(inner)
    try:
        return "size" in inspect.signature(getattr(model, "forward", model)).parameters
    except (TypeError, ValueError):  # no signature to read
        return False


def _view(
    model: nn.Module, images: torch.Tensor, average: str, size: Sequence[int] | None = None
) -> torch.Tensor:
    """One forward pass -> float32 logits (``average="logits"``) or probabilities
    (``"probs"``) at ``size`` (default: the input's), resized once from the network's stride
    when the model takes ``size``."""
    size = tuple(images.shape[-2:]) if size is None else tuple(size)
    out = model(images, size=size) if _takes_size(model) else model(images)
    logits = resize((out["out"] if isinstance(out, Mapping) else out).float(), size)
    return logits.softmax(dim=1) if average == "probs" else logits


def _probabilities(mean: torch.Tensor, average: str) -> torch.Tensor:
    """The probabilities of views averaged as ``average``: the softmax of the mean logits, or
    the mean probabilities themselves."""
    return mean.softmax(dim=1) if average == "logits" else mean


def predict_whole(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities of one forward pass on the whole images.

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32
    """
    with torch.inference_mode():
        return _view(model, images, "logits").softmax(dim=1)


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
    multiples of the stride and the last one is shifted back so that it ends at the border. A
    window never leaves the image: where the tile is larger than the image in a dimension the
    one window there spans the image, and :func:`predict_slide` zero-pads it at the bottom or
    the right up to the tile, as the authors' script does. For a square tile these are the
    script's windows (:func:`dgcn.evaluation.authors.authors_windows`); for a (height, width)
    tile the stride here is each side's own, where the script, which only slides squares,
    would take the height's for both axes.

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


def _window(images: torch.Tensor, y1: int, y2: int, x1: int, x2: int, tile: tuple[int, int]):
    """A copy of one window in the images' memory format (channels_last stays so), zero-padded
    at the bottom and the right up to ``tile`` where it is smaller."""
    window = images[..., y1:y2, x1:x2]
    if (y2 - y1, x2 - x1) == tile:
        return window.clone(memory_format=torch.preserve_format)
    padded = F.pad(window, (0, tile[1] - (x2 - x1), 0, tile[0] - (y2 - y1)))
    if images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
        padded = padded.contiguous(memory_format=torch.channels_last)
    return padded


def _slide_mean(
    model: nn.Module, images: torch.Tensor, tile: int | Sequence[int], overlap: float, average: str
) -> torch.Tensor:
    """The windows' logits or probabilities (``average``), averaged where they overlap."""
    height, width = images.shape[-2:]
    th, tw = _pair(tile)
    windows = sliding_windows((height, width), tile=(th, tw), overlap=overlap)
    if (th, tw) == (height, width):  # one window, the image itself
        return _view(model, images, average)
    total: torch.Tensor | None = None
    count = torch.zeros(1, 1, height, width, dtype=torch.float32, device=images.device)
    for y1, y2, x1, x2 in windows:
        window = _window(images, y1, y2, x1, x2, (th, tw))
        scores = _view(model, window, average)[..., : y2 - y1, : x2 - x1]
        if total is None:
            total = scores.new_zeros(images.shape[0], scores.shape[1], height, width)
        total[..., y1:y2, x1:x2] += scores
        count[..., y1:y2, x1:x2] += 1
    return total / count


def predict_slide(
    model: nn.Module,
    images: torch.Tensor,
    *,
    tile: int | Sequence[int],
    overlap: float,
    average: str,
) -> torch.Tensor:
    """Sliding-window probabilities: every window's logits (``average="logits"``, as the
    authors) or probabilities (``"probs"``), averaged where windows overlap; then the softmax
    of the mean logits.

    The windows are those of :func:`sliding_windows`. Where the tile is larger than the image
    in a dimension, the window is zero-padded at the bottom or the right up to the tile (zero:
    the normalised images' mean colour), predicted at the tile's size and its prediction
    cropped back, as the authors' script does: not the whole-image prediction, since the
    network sees the padding. A tile of exactly the image's size is one forward pass on the
    whole image, i.e. :func:`predict_whole`.

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.
        tile: the window's side, or (height, width).
        overlap: the fraction of a tile shared by neighbours.
        average: ``"logits"`` or ``"probs"``.

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32
    """
    _check_average(average)
    with torch.inference_mode():
        return _probabilities(_slide_mean(model, images, tile, overlap, average), average)


def predict_multiscale(
    model: nn.Module,
    images: torch.Tensor,
    *,
    scales: Sequence[float],
    flip: bool,
    tile: int | Sequence[int] | None,
    overlap: float,
    average: str,
) -> torch.Tensor:
    """Multi-scale (and flipped) probabilities, every view averaged at the input size.

    For each scale the images are resized bilinearly (``align_corners=True``) to
    ``round(scale * H) x round(scale * W)`` (Python's ``round``, halves to even, as the
    authors' ``scipy.ndimage.zoom``) and predicted; with ``flip`` the mirrored images are
    predicted too and mirrored back. With ``tile=None`` (the authors') each view is predicted
    whole and its logits come out at H x W directly, resized once from the network's stride
    (for a model whose forward takes ``size``; another model's output is resized from its own
    size). With a tile each scaled image is slid and the windows' mean, at the scaled size, is
    resized to H x W. Every view weighs the same; the result is the softmax of the mean
    logits (``average="logits"``, as the authors), or the mean of the views' probabilities at
    H x W (``"probs"``).

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.
        scales: the test scales.
        flip: also predict the horizontally flipped images.
        tile: None for whole-image inference at every scale (the authors'), else the sliding
            window's tile at every scale (``eval.scale_tile``).
        overlap: the sliding window's overlap (unused without a tile).
        average: ``"logits"`` or ``"probs"``.

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32
    """
    if len(scales) == 0:
        raise ValueError("scales must hold at least one scale")
    _check_average(average)
    height, width = images.shape[-2:]

    def one_view(x: torch.Tensor) -> torch.Tensor:
        if tile is None:
            return _view(model, x, average, size=(height, width))
        return resize(_slide_mean(model, x, tile, overlap, average), (height, width))

    total: torch.Tensor | None = None
    views = 0
    with torch.inference_mode():
        for scale in scales:
            if scale <= 0:
                raise ValueError(f"scales must be positive, got {scale}")
            scaled = resize(images, scaled_size((height, width), scale))
            scores = [one_view(scaled)]
            if flip:
                scores.append(one_view(scaled.flip(-1)).flip(-1))
            for view in scores:
                total = view if total is None else total + view
                views += 1
        return _probabilities(total / views, average)


def scaled_size(size: Sequence[int], scale: float) -> tuple[int, int]:
    """The size of an image of ``size`` (H, W) at a test scale: each side times the scale,
    rounded by Python's ``round`` (halves to even) as ``scipy.ndimage.zoom`` in the authors'
    evaluation, at least 1."""
    return max(1, round(int(size[0]) * scale)), max(1, round(int(size[1]) * scale))


def forward_pixels(size: Sequence[int], config: EvalConfig | None = None, **options: Any) -> int:
    """The pixels the network is run on for one image of ``size`` (H, W) under a test mode:
    a measure of its cost (the graphs' and the non-local block's costs grow faster).

    Whole: H x W. Sliding window: a full tile per window, padding included. Multi-scale: every
    scale's resized image (``scale_tile=None``) or its windows of ``scale_tile``. Twice that
    with ``flip``.

    Args:
        size: the image's (H, W).
        config, options: the test mode, as :func:`predict`.
    """
    cfg = eval_options(config, **options)
    check_mode(cfg.mode)

    def pixels(side: tuple[int, int], tile: int | None) -> int:
        if tile is None:
            return side[0] * side[1]
        windows = sliding_windows(side, tile=tile, overlap=cfg.overlap)
        return len(windows) * _pair(tile)[0] * _pair(tile)[1]

    height, width = (int(s) for s in size)
    if cfg.mode == "multiscale":
        total = sum(pixels(scaled_size(size, s), cfg.scale_tile) for s in cfg.scales)
    else:
        total = pixels((height, width), None if cfg.mode == "whole" else cfg.tile)
    return total * (2 if cfg.flip else 1)


def check_mode(mode: str) -> None:
    """Raises ValueError naming the modes when ``mode`` is not one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"unknown inference mode {mode!r}; choose one of {', '.join(MODES)}")


def predict(
    model: nn.Module, images: torch.Tensor, config: EvalConfig | None = None, **options: Any
) -> torch.Tensor:
    """Probabilities by one of the three test modes, under the config's autocast precision.

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.
        config: the test mode; None: the defaults of :class:`dgcn.config.EvalConfig`.
        **options: keyword-only fields of :class:`~dgcn.config.EvalConfig` that replace the
            config's: ``mode`` (``"whole"``: one forward pass, ``"slide"``: windows of
            ``tile``, ``"multiscale"``: every scale of ``scales``, whole as the authors, or by
            sliding window of ``scale_tile`` when it is not None), ``tile``, ``overlap``,
            ``scales``, ``scale_tile``, ``flip`` (also
            average the horizontally flipped images, any mode), ``average`` (``"logits"``, the
            authors', or ``"probs"``: what is averaged over windows, scales and flips),
            ``precision`` (the forward passes' autocast, see :func:`autocast_dtype`).

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32

    Raises:
        ValueError: an unknown mode or average, or ``"slide"`` without a tile.
        TypeError: an unknown option.
        ConfigError: a precision this device cannot run (fp16 on a CPU).
    """
    cfg = eval_options(config, **options)
    check_mode(cfg.mode)
    _check_average(cfg.average)
    if cfg.mode == "slide" and cfg.tile is None:
        raise ValueError('mode "slide" needs a tile size')
    dtype = autocast_dtype(cfg.precision, images.device)
    autocast = (
        torch.autocast(images.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    )
    with autocast:
        if cfg.mode == "multiscale":
            return predict_multiscale(
                model,
                images,
                scales=cfg.scales,
                flip=cfg.flip,
                tile=cfg.scale_tile,
                overlap=cfg.overlap,
                average=cfg.average,
            )
        tile = None if cfg.mode == "whole" else cfg.tile
        if cfg.flip:  # one scale, two views
            return predict_multiscale(
                model,
                images,
                scales=(1.0,),
                flip=True,
                tile=tile,
                overlap=cfg.overlap,
                average=cfg.average,
            )
        if tile is None:
            return predict_whole(model, images)
        return predict_slide(model, images, tile=tile, overlap=cfg.overlap, average=cfg.average)


__all__ = [
    "AVERAGES",
    "DEFAULT_SCALES",
    "MODES",
    "PRECISIONS",
    "autocast_dtype",
    "eval_options",
    "forward_pixels",
    "precision_name",
    "predict",
    "predict_multiscale",
    "predict_slide",
    "predict_whole",
    "scaled_size",
    "sliding_windows",
]
