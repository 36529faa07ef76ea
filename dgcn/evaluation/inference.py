"""Inference as the authors evaluate: whole image, sliding window, multi-scale with flipping.

Every predictor takes a model in eval mode that returns ``{"out": logits}`` (torchvision's
segmentation convention) and returns softmax probabilities at the input size. The sliding
window follows the authors' ``predict_sliding`` (tiles of 832 px overlapping by a third on
Cityscapes); the multi-scale test resizes the image to each scale, predicts, resizes the
probabilities back and averages them, with the horizontally flipped image counted as one more
view. :func:`evaluate` runs a predictor over a loader into a :class:`ConfusionMatrix` and can
write the predictions as Cityscapes ``labelIds`` PNGs for the official evaluation script.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dgcn.datasets.labels import IGNORE_INDEX, NUM_CLASSES, train_id_to_id_lut
from dgcn.evaluation.metrics import ConfusionMatrix
from dgcn.fileio import atomic_path
from dgcn.models.common import resize

#: the authors' test scales (Cityscapes, multi-scale + flip row of their table)
DEFAULT_SCALES: tuple[float, ...] = (0.75, 1.0, 1.25, 1.5, 1.75)
MODES = ("whole", "slide", "multiscale")

_TRAIN_ID_TO_ID = train_id_to_id_lut()


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
    size: tuple[int, int], tile: int | Sequence[int] = 832, overlap: float = 1 / 3
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
    model: nn.Module,
    images: torch.Tensor,
    tile: int | Sequence[int] = 832,
    overlap: float = 1 / 3,
) -> torch.Tensor:
    """Sliding-window probabilities: the softmax of every window, averaged where they overlap.

    The windows are those of :func:`sliding_windows`. When the tile covers the image this is
    exactly one forward pass on the whole image, i.e. :func:`predict_whole`.

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.
        tile: the window's side, or (height, width); 832 as the authors on Cityscapes.
        overlap: the fraction of a tile shared by neighbours (the authors: 1/3).

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32
    """
    height, width = images.shape[-2:]
    windows = sliding_windows((height, width), tile, overlap)
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
    scales: Sequence[float] = DEFAULT_SCALES,
    flip: bool = True,
    tile: int | Sequence[int] | None = None,
    overlap: float = 1 / 3,
) -> torch.Tensor:
    """Multi-scale (and flipped) probabilities, averaged at the input size.

    For each scale the images are resized bilinearly (``align_corners=True``) to
    ``round(scale * H) x round(scale * W)``, predicted whole (``tile=None``) or by sliding
    window, and the probabilities are resized back to H x W; with ``flip`` the mirrored images
    are predicted too and mirrored back. Every view weighs the same.

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.
        scales: the test scales (the authors: 0.75, 1.0, 1.25, 1.5, 1.75).
        flip: also predict the horizontally flipped images.
        tile: None for whole-image inference at every scale, else the sliding window's tile.
        overlap: the sliding window's overlap.

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32
    """
    if len(scales) == 0:
        raise ValueError("scales must hold at least one scale")
    height, width = images.shape[-2:]

    def one_view(x: torch.Tensor) -> torch.Tensor:
        if tile is None:
            return predict_whole(model, x)
        return predict_slide(model, x, tile, overlap)

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


def predict(
    model: nn.Module,
    images: torch.Tensor,
    mode: str = "whole",
    tile: int | Sequence[int] | None = 832,
    overlap: float = 1 / 3,
    scales: Sequence[float] = DEFAULT_SCALES,
    flip: bool = False,
) -> torch.Tensor:
    """Probabilities by one of the three test modes.

    Args:
        model: a segmentation model in eval mode returning ``{"out": logits}``.
        images: normalised images.
        mode: ``"whole"`` (one forward pass), ``"slide"`` (windows of ``tile``) or
            ``"multiscale"`` (every scale of ``scales``, by sliding window of ``tile`` when
            given, else whole).
        tile: the sliding window's tile; ``"slide"`` needs one.
        overlap: the sliding window's overlap.
        scales: the test scales of ``"multiscale"``.
        flip: also average the horizontally flipped images (any mode).

    Shape:
        images: [B, 3, H, W] -> probs: [B, K, H, W] float32

    Raises:
        ValueError: an unknown mode, or ``"slide"`` without a tile.
    """
    if mode == "whole":
        if flip:
            return predict_multiscale(model, images, scales=(1.0,), flip=True)
        return predict_whole(model, images)
    if mode == "slide":
        if tile is None:
            raise ValueError('mode "slide" needs a tile size')
        if flip:
            return predict_multiscale(model, images, (1.0,), True, tile, overlap)
        return predict_slide(model, images, tile, overlap)
    if mode == "multiscale":
        return predict_multiscale(model, images, scales, flip, tile, overlap)
    raise ValueError(f"unknown inference mode {mode!r}; choose one of {', '.join(MODES)}")


def save_label_png(train_ids: np.ndarray | torch.Tensor, path: str | os.PathLike) -> None:
    """Write train ids as a Cityscapes ``labelIds`` PNG (8-bit grey), atomically.

    Train ids map to label ids (road 0 -> 7, ..., bicycle 18 -> 33); 255 and any value that is
    not a train id map to 0 (unlabeled). Missing folders are created.

    Args:
        train_ids: a prediction of train ids.
        path: the PNG to write.

    Shape:
        train_ids: [H, W]
    """
    if isinstance(train_ids, torch.Tensor):
        train_ids = train_ids.detach().cpu().numpy()
    train_ids = np.asarray(train_ids)
    if train_ids.ndim != 2:
        raise ValueError(f"train_ids must be [H, W], got shape {train_ids.shape}")
    from PIL import Image

    in_range = (train_ids >= 0) & (train_ids < 256)
    label_ids = _TRAIN_ID_TO_ID[np.where(in_range, train_ids, IGNORE_INDEX).astype(np.uint8)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(label_ids).save(tmp, format="PNG")


def export_path(image_path: str | os.PathLike, export_dir: str | os.PathLike) -> Path:
    """Where :func:`evaluate` writes the prediction of one image.

    ``leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png`` becomes
    ``<export_dir>/frankfurt/frankfurt_000000_000294_leftImg8bit.png``: the city's folder and
    the image's stem, which the official script finds by ``<city>_<seq>_<frame>*.png``.
    """
    image_path = Path(image_path)
    return Path(export_dir) / image_path.parent.name / f"{image_path.stem}.png"


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _image_paths(loader: Iterable, image_paths: Sequence | None) -> list[Path]:
    if image_paths is not None:
        return [Path(p) for p in image_paths]
    dataset = getattr(loader, "dataset", None)
    sampler = getattr(loader, "sampler", None)
    if hasattr(dataset, "image_path") and isinstance(sampler, torch.utils.data.SequentialSampler):
        return [Path(dataset.image_path(i)) for i in range(len(dataset))]
    raise ValueError(
        "export_dir needs image_paths (the image files in the loader's order), or a "
        "non-shuffled DataLoader over a dataset with an image_path(index) method"
    )


def _is_main_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def evaluate(
    model: nn.Module,
    loader: Iterable,
    num_classes: int = NUM_CLASSES,
    mode: str = "whole",
    tile: int | Sequence[int] | None = 832,
    overlap: float = 1 / 3,
    scales: Sequence[float] = DEFAULT_SCALES,
    flip: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    export_dir: str | os.PathLike | None = None,
    image_paths: Sequence[str | os.PathLike] | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> ConfusionMatrix:
    """Predict every batch of ``loader`` and count the pixels in a confusion matrix.

    The model is put in eval mode for the run and restored to its mode afterwards. Under
    ``torch.distributed`` each process evaluates its own share and the matrix is summed over
    all processes at the end; only rank 0 shows a progress bar. Probabilities are resized to
    the masks' size when they differ.

    Args:
        model: a segmentation model returning ``{"out": logits}``.
        loader: yields ``(images, masks)`` batches.
        num_classes: K.
        mode, tile, overlap, scales, flip: the test mode, as :func:`predict`.
        device: where to run; None uses the model's device.
        progress: show a tqdm bar.
        export_dir: also write every prediction as a ``labelIds`` PNG under
            ``<export_dir>/<city>/`` (see :func:`export_path`).
        image_paths: the image file of every sample in the loader's order, for the export;
            None reads them from ``loader.dataset.image_path(i)`` when the loader is not
            shuffled.
        ignore_index: the mask value of pixels that are not evaluated.

    Shape:
        batches: images [B, 3, H, W], masks [B, H, W] (int64, ``ignore_index`` = ignore)

    Returns:
        The (all-reduced) :class:`ConfusionMatrix`.
    """
    from tqdm.auto import tqdm

    if mode not in MODES:
        raise ValueError(f"unknown inference mode {mode!r}; choose one of {', '.join(MODES)}")
    device = torch.device(device) if device is not None else _model_device(model)
    matrix = ConfusionMatrix(num_classes, ignore_index, device=device)
    paths = None if export_dir is None else _image_paths(loader, image_paths)
    done = 0
    was_training = model.training
    model.eval()
    try:
        show = progress and _is_main_process()
        bar = tqdm(loader, desc="evaluate", unit="batch", disable=not show)
        for images, masks in bar:
            images = images.to(device, non_blocking=True)
            masks = masks.to(device, non_blocking=True)
            probs = predict(model, images, mode, tile, overlap, scales, flip)
            with torch.inference_mode():
                probs = resize(probs, masks.shape[-2:])
                preds = probs.argmax(dim=1)
            matrix.update(preds, masks)
            if paths is not None:
                if done + len(preds) > len(paths):
                    raise ValueError(
                        f"image_paths has {len(paths)} entries but the loader yields more images"
                    )
                for pred, image_path in zip(preds, paths[done : done + len(preds)], strict=True):
                    save_label_png(pred, export_path(image_path, export_dir))
            done += len(preds)
            if show:
                bar.set_postfix(miou=f"{matrix.miou():.3f}", refresh=False)
    finally:
        model.train(was_training)
    return matrix.all_reduce()


__all__ = [
    "DEFAULT_SCALES",
    "MODES",
    "evaluate",
    "export_path",
    "predict",
    "predict_multiscale",
    "predict_slide",
    "predict_whole",
    "save_label_png",
    "sliding_windows",
]
