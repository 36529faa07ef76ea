"""``dgcn predict``: a model's predictions on photos or on a split, as colourised PNGs.

For every image :func:`predict_images` writes ``<name>_pred.png`` (the prediction in the
palette of the config's dataset: Cityscapes, or PASCAL Context's 59 or 60 colours) and
``<name>_overlay.png`` (blended over the photo); for images of a split, whose ground truth is
known, also ``grid.png`` (image | truth | prediction | errors).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision import tv_tensors

from dgcn.config import Config
from dgcn.datasets.build import build_dataset, image_paths, prepare_data
from dgcn.datasets.cityscapes import read_photo
from dgcn.datasets.transforms import eval_transforms
from dgcn.errors import ConfigError, ResourceError, allocation_failure
from dgcn.evaluation.prediction import predict
from dgcn.fileio import atomic_path
from dgcn.optional import available, note_skipped
from dgcn.viz.palette import colorize, dataset_palette, denormalize, overlay
from dgcn.viz.predictions import prediction_grid, save_figure


@dataclass
class Sample:
    """One image to predict: its name in the output files, the normalised image and, for an
    image of a split, its ground truth.

    Shape:
        image: [3, H, W] float32, target: [H, W] int64
    """

    name: str
    image: torch.Tensor
    target: torch.Tensor | None = None
    source: Path | None = None  #: the photo's file (None for an image of a split)


def photo_samples(paths: list[str | os.PathLike]) -> list[Sample]:
    """The user's own photos (PNG, JPEG, ...) normalised as for evaluation; no ground truth.

    Each photo's outputs are named by its file name without the suffix (``<name>_pred.png``),
    so two photos of one name (``a/x.png`` and ``b/x.jpg``, or one file given twice) are
    refused before any is read: the second would replace the first's files.

    Raises:
        ConfigError: two paths of one name, naming both.
    """
    first: dict[str, Path] = {}
    for path in map(Path, paths):
        other = first.setdefault(path.stem, path)
        if other is not path:
            raise ConfigError(
                f"--images {other} and {path} have one name, {path.stem!r}, and would write "
                f"the same {path.stem}_pred.png: give each image once, renaming one of them, "
                "or predict them in two runs with different --out"
            )
    samples = []
    for path in paths:
        image = read_photo(Path(path))
        tensor, _ = eval_transforms()(tv_tensors.Image(image), tv_tensors.Mask(image[0]))
        samples.append(Sample(Path(path).stem, tensor.as_subclass(torch.Tensor), source=Path(path)))
    return samples


def split_samples(cfg: Config, split: str | None, count: int) -> list[Sample]:
    """The first ``count`` images of a split of ``cfg.data`` (default: its val split) with
    their ground truth; MiniCity is generated when absent."""
    prepare_data(cfg.data)  # MiniCity: generated when absent
    dataset = build_dataset(cfg.data, split or cfg.data.val_split, train=False)
    paths = image_paths(dataset)
    samples = []
    for i in range(min(count, len(dataset))):
        image, mask = dataset[i]
        samples.append(Sample(paths[i].stem.replace("_leftImg8bit", ""), image, mask))
    return samples


def _predict_and_write(model: nn.Module, cfg: Config, samples: list[Sample], out: Path):
    """The predictions of :func:`predict_images`, each written as soon as it is made."""
    out.mkdir(parents=True, exist_ok=True)
    preds = []
    palette = dataset_palette(cfg.data.dataset)
    for sample in samples:
        try:
            pred = predict(model, sample.image[None], cfg.eval).argmax(1)[0]
        except (MemoryError, RuntimeError) as err:
            size = allocation_failure(err)
            if size is None:
                raise
            height, width = sample.image.shape[-2:]
            raise ResourceError(
                f"out of memory predicting {sample.source or sample.name} ({width}x{height}, "
                f"{width * height / 1e6:.1f} megapixels: {size} more could not be allocated); "
                "downscale it (e.g. to 2048 pixels on its longer side), or use a machine with "
                "more memory"
            ) from err
        preds.append(pred)
        for suffix, array in (
            ("pred", colorize(pred, palette)),
            ("overlay", overlay(denormalize(sample.image), pred, palette=palette)),
        ):
            with atomic_path(out / f"{sample.name}_{suffix}.png") as tmp:
                Image.fromarray(array).save(tmp, format="PNG")
    return preds


def predict_images(model: nn.Module, cfg: Config, samples: list[Sample], out: str | os.PathLike):
    """Predict every sample with ``cfg.eval``'s test mode and write its PNGs under ``out``.

    Args:
        model: a segmentation model in eval mode.
        cfg: its config (``eval``: the test mode).
        samples: from :func:`photo_samples` or :func:`split_samples`.
        out: the output folder (created).

    Returns:
        The path of ``grid.png``, or None when no sample has a ground truth or matplotlib is
        not installed (then one note says so).

    Raises:
        ResourceError: an image too large for this machine's memory, naming it and its size;
            a folder this call created is removed again.
    """
    out = Path(out)
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        preds = _predict_and_write(model, cfg, samples, out)
    except BaseException:  # a failure or a signal: the folders created here go again
        if created:
            shutil.rmtree(out, ignore_errors=True)
            for folder in created[1:]:
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise
    palette = dataset_palette(cfg.data.dataset)
    known = [(s, p) for s, p in zip(samples, preds, strict=True) if s.target is not None]
    if not known:
        return None
    if not available("matplotlib"):
        note_skipped("grid.png", instead="each prediction is in its own _pred.png")
        return None
    grid = prediction_grid(
        [s.image for s, _ in known],
        [s.target for s, _ in known],
        [p for _, p in known],
        titles=[s.name for s, _ in known],
        palette=palette,
    )
    return save_figure(grid, out / "grid.png")
