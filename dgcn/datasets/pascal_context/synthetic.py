"""A small synthetic PASCAL Context tree in the official layout, for tests and smoke runs.

What it writes under ``root/VOCdevkit/VOC2010/``: ``JPEGImages/<id>.jpg``; ``trainval/<id>.mat``
with a uint16 ``LabelMap`` in the 459-class id space (0 = unlabeled, ids of the 59 benchmark
classes, and ids outside them that the benchmark calls background); ``labels.txt`` with 459
lines ``id: name``, the real names for the 59 benchmark ids and ``class<id>`` placeholders for
the other 400; and the split lists (``ImageSets/SegmentationContext/`` and/or
``ImageSets/Main/``). Each image is a few rectangles and discs of one class each, painted in a
colour of that class with noise, so a model can learn something from it. Writing ``.mat`` files
needs scipy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dgcn.datasets.pascal_context.dataset import LIST_FOLDERS, MAT_FOLDER
from dgcn.datasets.pascal_context.labels import CLASSES_59, NUM_FULL_CLASSES, ORIGINAL_IDS
from dgcn.errors import DatasetError

#: ids outside the 59 (background in the benchmark) that the synthetic labels use
OTHER_IDS = (1, 100, 300, NUM_FULL_CLASSES)


def _colour(label_id: int) -> np.ndarray:
    rng = np.random.default_rng(label_id)
    return rng.integers(30, 226, size=3).astype(np.float32)


def _scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    label = np.full((height, width), rng.choice(OTHER_IDS + (0,)), dtype=np.uint16)
    yy, xx = np.mgrid[:height, :width]
    for _ in range(int(rng.integers(3, 7))):
        label_id = int(rng.choice(ORIGINAL_IDS if rng.random() < 0.8 else OTHER_IDS + (0,)))
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        ry, rx = rng.integers(height // 8, height // 2), rng.integers(width // 8, width // 2)
        if rng.random() < 0.5:
            inside = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        else:
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        label[inside] = label_id
    return label


def _labels_txt() -> str:
    names = dict(CLASSES_59)
    return "".join(f"{i}: {names.get(i, f'class{i}')}\n" for i in range(1, NUM_FULL_CLASSES + 1))


def make_synthetic_pascal_context(
    root: str | Path,
    train: int = 6,
    val: int = 3,
    seed: int = 0,
    size: tuple[int, int] = (96, 128),
    lists: tuple[str, ...] = ("SegmentationContext",),
) -> dict[str, int]:
    """Write a synthetic tree; returns the images per split.

    Args:
        root: the folder that receives ``VOCdevkit/`` (must not hold one already).
        train, val: images per split (ids ``2008_000000`` onwards, train first).
        seed: the random seed; the same arguments write the same tree.
        size: (height, width) of every image.
        lists: which list folders under ``ImageSets/`` to write: ``SegmentationContext``
            and/or ``Main``.

    Raises:
        DatasetError: scipy missing, ``root`` already holding ``VOCdevkit/``, or an unknown
            list folder.
    """
    try:
        from scipy.io import savemat
    except ImportError as err:
        raise DatasetError(
            "the synthetic PASCAL Context writes .mat labels, which needs scipy: "
            "pip install 'dgcn[pascal]'"
        ) from err
    unknown = [name for name in lists if name not in LIST_FOLDERS]
    if unknown:
        raise DatasetError(f"unknown list folder {unknown[0]!r}; use {' or '.join(LIST_FOLDERS)}")
    voc = Path(root) / "VOCdevkit" / "VOC2010"
    if voc.parent.exists():
        raise DatasetError(f"{voc.parent} already exists; give an empty root")
    for folder in ("JPEGImages", MAT_FOLDER, *(f"ImageSets/{name}" for name in lists)):
        (voc / folder).mkdir(parents=True)
    (voc / "labels.txt").write_text(_labels_txt())
    rng = np.random.default_rng(seed)
    height, width = size
    ids: dict[str, list[str]] = {"train": [], "val": []}
    colours = np.stack([_colour(i) for i in range(NUM_FULL_CLASSES + 1)])
    for index in range(train + val):
        image_id = f"2008_{index:06d}"
        ids["train" if index < train else "val"].append(image_id)
        label = _scene(rng, height, width)
        image = colours[label] + rng.normal(0, 12, size=(height, width, 3))
        image = np.clip(image, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=90)
        savemat(str(voc / MAT_FOLDER / f"{image_id}.mat"), {"LabelMap": label})
    for name in lists:
        for split, names in ids.items():
            (voc / "ImageSets" / name / f"{split}.txt").write_text("".join(n + "\n" for n in names))
    return {split: len(names) for split, names in ids.items()}
