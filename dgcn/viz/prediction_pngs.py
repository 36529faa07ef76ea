"""``dgcn predict``: a model's predictions on photos or on a split, as colourised PNGs.

For every image :func:`predict_images` writes ``<name>_pred.png`` (the prediction in the
palette of the config's dataset: Cityscapes, or PASCAL Context's 59 or 60 colours) and
``<name>_overlay.png`` (blended over the photo); for images of a split, whose ground truth is
known, also ``grid.png`` (image | truth | prediction | errors).
"""

from __future__ import annotations

import os
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
from dgcn.errors import ConfigError
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
        samples.append(Sample(Path(path).stem, tensor.as_subclass(torch.Tensor)))
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
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    preds = []
    palette = dataset_palette(cfg.data.dataset)
    for sample in samples:
        pred = predict(model, sample.image[None], cfg.eval).argmax(1)[0]
        preds.append(pred)
        for suffix, array in (
            ("pred", colorize(pred, palette)),
            ("overlay", overlay(denormalize(sample.image), pred, palette=palette)),
        ):
            with atomic_path(out / f"{sample.name}_{suffix}.png") as tmp:
                Image.fromarray(array).save(tmp, format="PNG")
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
