"""PASCAL Context on the official release as users unpack it, with one-line errors.

The layout (``root`` is the ``VOC2010`` folder, as the README writes it; the folder holding
``VOCdevkit/``, or ``VOCdevkit/`` itself, is accepted too)::

    root/VOCdevkit/VOC2010/JPEGImages/<id>.jpg                 VOCtrainval_03-May-2010.tar
    root/VOCdevkit/VOC2010/trainval/<id>.mat                   trainval.tar.gz (key LabelMap)
    root/VOCdevkit/VOC2010/ImageSets/SegmentationContext/{train,val}.txt   (if present)
    root/VOCdevkit/VOC2010/ImageSets/Main/{train,val}.txt                  (otherwise)
    root/VOCdevkit/VOC2010/SegmentationClassContext/<id>.png   (dgcn convert-pascal-context)

Labels: when ``SegmentationClassContext/`` exists, its 8-bit PNGs (values 0..59: background,
then the 59 classes in ascending-id order) are read; otherwise the ``.mat`` files (uint16 ids
of the 459-class ``labels.txt``, 0 = unlabeled), which need scipy (``pip install
'dgcn[pascal]'``). Both give the same train ids (:mod:`dgcn.datasets.pascal_context.labels`).

Splits: the lists in ``ImageSets/SegmentationContext/`` (the 4,996 / 5,104 split of the
PASCAL-in-Detail release, which most codebases train and evaluate on) when present, else the
VOC2010 ``ImageSets/Main`` lists (4,998 / 5,105 images, the count the early papers state), or
any list file given as ``split_file``. docs/reference/pascal_context.md has the sources.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dgcn.datasets.cityscapes import read_photo, why_unreadable
from dgcn.datasets.pairs import LabelledImages
from dgcn.datasets.pascal_context.labels import (
    CLASSES_59,
    NUM_FULL_CLASSES,
    check_setting,
    class_names,
    context_to_train_lut,
    full_to_context_lut,
)
from dgcn.errors import DatasetError
from dgcn.progress import progress_bar

IMAGES_TAR = "VOCtrainval_03-May-2010.tar"
LABELS_TAR = "trainval.tar.gz"
PNG_FOLDER = "SegmentationClassContext"
MAT_FOLDER = "trainval"
#: list folders under ImageSets/, in order of preference
LIST_FOLDERS = ("SegmentationContext", "Main")
DOCS = "docs/reference/pascal_context.md"

_FULL_TO_CONTEXT = torch.from_numpy(full_to_context_lut())
_MAX_CONTEXT = len(CLASSES_59)


def voc_folder(root: str | Path) -> Path:
    """The ``VOC2010`` folder under ``root`` (``root/VOCdevkit/VOC2010``, ``root/VOC2010`` or
    ``root`` itself, whichever holds ``JPEGImages/``).

    Raises:
        DatasetError: missing root, the images' tar not extracted, or no ``JPEGImages/``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"dataset root {root} does not exist; download PASCAL Context there ({IMAGES_TAR} "
            f"and {LABELS_TAR}, see {DOCS}), then run "
            f"`dgcn check-data --dataset pascal-context --root {root}`"
        )
    for folder in (root / "VOCdevkit" / "VOC2010", root / "VOC2010", root):
        if (folder / "JPEGImages").is_dir():
            return folder
    for archive in (root / IMAGES_TAR, root.parent / IMAGES_TAR):
        if archive.is_file():
            raise DatasetError(
                f"{archive} is not extracted: no VOCdevkit/ folder in {root}; extract it there "
                f"(tar -xf {archive} -C {root})"
            )
    raise DatasetError(
        f"{root} has no VOCdevkit/VOC2010/JPEGImages/ folder; expected the VOC2010 release "
        f"unpacked there ({IMAGES_TAR}, see {DOCS})"
    )


def label_layout(voc: Path) -> tuple[str, Path]:
    """Which labels a ``VOC2010`` folder holds: ``("png", SegmentationClassContext/)`` when the
    converted PNGs exist, else ``("mat", trainval/)``.

    Raises:
        DatasetError: neither folder, naming ``trainval.tar.gz`` when it lies there unextracted.
    """
    if (voc / PNG_FOLDER).is_dir():
        return "png", voc / PNG_FOLDER
    if (voc / MAT_FOLDER).is_dir():
        return "mat", voc / MAT_FOLDER
    for archive in (voc / LABELS_TAR, voc.parent / LABELS_TAR, voc.parent.parent / LABELS_TAR):
        if archive.is_file():
            raise DatasetError(
                f"{archive} is not extracted: no {MAT_FOLDER}/ folder in {voc}; extract it there "
                f"(tar -xzf {archive} -C {voc})"
            )
    raise DatasetError(
        f"{voc} has no PASCAL Context labels: neither {MAT_FOLDER}/ (from {LABELS_TAR}, "
        f"extracted into {voc}) nor {PNG_FOLDER}/ (from dgcn convert-pascal-context); see {DOCS}"
    )


def split_list(voc: Path, split: str, split_file: str | Path | None = None) -> Path:
    """The list file of a split: ``split_file`` if given, else
    ``ImageSets/SegmentationContext/<split>.txt``, else ``ImageSets/Main/<split>.txt``.

    Raises:
        DatasetError: the given file is missing, or no list of that split exists.
    """
    if split_file is not None:
        path = Path(split_file)
        if not path.is_file():
            raise DatasetError(f"split list {path} not found; pass a file of image ids, one a line")
        return path
    for folder in LIST_FOLDERS:
        path = voc / "ImageSets" / folder / f"{split}.txt"
        if path.is_file():
            return path
    tried = " or ".join(str(voc / "ImageSets" / f / f"{split}.txt") for f in LIST_FOLDERS)
    raise DatasetError(
        f"no list of split {split!r}: neither {tried} exists; is {split!r} the right split "
        "(train or val)? A list of image ids can also be given as split_file"
    )


def read_ids(path: Path) -> list[str]:
    """The image ids of a list file (the first word of each non-empty line)."""
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def scan_split(
    root: str | Path, split: str = "train", split_file: str | Path | None = None
) -> tuple[list[tuple[Path, Path]], str, Path]:
    """Pair every image of a split with its label file, in the list's order.

    Returns:
        ([(image path, label path)], label format ``"png"`` or ``"mat"``, the list file).

    Raises:
        DatasetError: see :func:`voc_folder`, :func:`label_layout`, :func:`split_list`; an empty
            list, a listed image that is missing, or an image without a label.
    """
    voc = voc_folder(root)
    layout, label_dir = label_layout(voc)
    list_file = split_list(voc, split, split_file)
    ids = read_ids(list_file)
    if not ids:
        raise DatasetError(f"split {split!r} is empty: {list_file} lists no image ids")
    suffix = ".png" if layout == "png" else ".mat"
    pairs = []
    for image_id in ids:
        image = voc / "JPEGImages" / f"{image_id}.jpg"
        label = label_dir / f"{image_id}{suffix}"
        if not image.is_file():
            raise DatasetError(
                f"{list_file} lists {image_id} but {image} is missing; restore the image or use "
                "the list that belongs to this release"
            )
        if not label.is_file():
            fix = (
                "rerun dgcn convert-pascal-context with --overwrite"
                if layout == "png"
                else f"re-extract {LABELS_TAR}"
            )
            raise DatasetError(f"image {image} has no label: expected {label}; {fix}")
        pairs.append((image, label))
    return pairs, layout, list_file


def loadmat_label(path: Path) -> np.ndarray:
    """The ``LabelMap`` of an official ``.mat`` file: uint16 [H, W] of ids 0..459.

    Raises:
        DatasetError: scipy missing, an unreadable file, no ``LabelMap``, or ids above 459.
    """
    try:
        from scipy.io import loadmat
    except ImportError as err:
        raise DatasetError(
            "reading the PASCAL Context .mat labels needs scipy: pip install 'dgcn[pascal]' "
            "(or pip install scipy)"
        ) from err
    try:
        data = loadmat(str(path))
    except Exception as err:
        raise DatasetError(f"cannot read label {path} ({err}); re-extract {LABELS_TAR}") from err
    if "LabelMap" not in data:
        raise DatasetError(
            f"label {path} has no LabelMap (keys: {sorted(k for k in data if k[0] != '_')}); "
            f"use the per-image files of {LABELS_TAR}"
        )
    label = np.asarray(data["LabelMap"])
    if label.ndim != 2 or not np.issubdtype(label.dtype, np.integer):
        raise DatasetError(f"label {path}: LabelMap is {label.dtype} {label.shape}, not 2-D ids")
    if label.size and (int(label.max()) > NUM_FULL_CLASSES or int(label.min()) < 0):
        bad = sorted(set(np.unique(label[(label > NUM_FULL_CLASSES) | (label < 0)]).tolist()))
        raise DatasetError(
            f"label {path} holds ids {bad[:5]} outside the table (0..{NUM_FULL_CLASSES} of "
            f"labels.txt); re-extract {LABELS_TAR}"
        )
    return label.astype(np.int64)


def read_png_label(path: Path) -> torch.Tensor:
    """A converted ``SegmentationClassContext`` PNG: uint8 [H, W] of values 0..59."""
    try:
        with Image.open(path) as pil:
            mode, label = pil.mode, np.asarray(pil)
    except Exception as err:
        raise DatasetError(
            f"cannot decode label {path}: it {why_unreadable(path)}; rerun dgcn "
            "convert-pascal-context --overwrite"
        ) from err
    if label.ndim != 2 or label.dtype != np.uint8:
        raise DatasetError(
            f"label {path} is a {mode} image; expected the 8-bit single-channel PNGs that dgcn "
            "convert-pascal-context writes"
        )
    if label.size and int(label.max()) > _MAX_CONTEXT:
        bad = sorted(set(np.unique(label[label > _MAX_CONTEXT]).tolist()))
        raise DatasetError(
            f"label {path} holds values {bad[:5]} outside 0..{_MAX_CONTEXT} (background and the "
            "59 classes); rerun dgcn convert-pascal-context --overwrite"
        )
    return torch.from_numpy(label.copy())


def read_context_label(path: Path) -> torch.Tensor:
    """Either label format as uint8 [H, W] values 0..59 (0 = background, k = class k - 1 of the
    59 in ascending-id order)."""
    if path.suffix == ".mat":
        full = torch.from_numpy(loadmat_label(path))
        return _FULL_TO_CONTEXT[full]
    return read_png_label(path)


def load_pair(image_path: Path, label_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read and check one sample: uint8 image [3, H, W], uint8 values 0..59 [H, W].

    Raises:
        DatasetError: corrupt file, ids outside the table, or image and label of other sizes.
    """
    image = read_photo(image_path, fix=f"re-extract {IMAGES_TAR}")
    label = read_context_label(label_path)
    if image.shape[-2:] != label.shape:
        raise DatasetError(
            f"image {image_path} is {image.shape[2]}x{image.shape[1]} but its label {label_path} "
            f"is {label.shape[1]}x{label.shape[0]}; they must have the same size"
        )
    return image, label


class PascalContext(LabelledImages):
    """PASCAL Context (VOC2010 images, the 59-class benchmark) on the official release.

    Args:
        root: the ``VOC2010`` folder (or the folder holding ``VOCdevkit/``, or ``VOCdevkit/``).
        split: ``train`` or ``val``: the list ``ImageSets/SegmentationContext/<split>.txt``
            when present (the 4,996 / 5,104 Detail split), else ``ImageSets/Main/<split>.txt``
            (4,998 / 5,105).
        transforms: a joint transform ``(image, mask) -> (image, mask)`` as for
            :class:`dgcn.datasets.Cityscapes`; None applies the evaluation transform.
        classes: 59 (background ignored: train ids 0..58, 255 elsewhere) or 60 (0 =
            background, 1..59 the classes).
        split_file: a list of image ids, one a line, used instead of the split's list.

    Shape:
        item: (image float32 [3, H, W] normalised, mask int64 [H, W])

    Attributes:
        classes: 59 or 60.
        class_names: the names of the classes in train-id order (60: ``background`` first),
            which ``dgcn.evaluation.evaluate_run`` puts in its per-class table.
        label_format: ``"png"`` (``SegmentationClassContext/``) or ``"mat"`` (``trainval/``).
        list_file: the list the split was read from.
    """

    _load = staticmethod(load_pair)

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transforms: Callable | None = None,
        classes: int = 59,
        split_file: str | Path | None = None,
    ) -> None:
        try:
            self.classes = check_setting(classes)
        except ValueError as err:
            raise DatasetError(str(err)) from None
        self.class_names = class_names(classes)
        self.root, self.split = Path(root), split
        self.samples, self.label_format, self.list_file = scan_split(root, split, split_file)
        self._use_transforms(transforms)
        self._lut = torch.from_numpy(context_to_train_lut(classes))


def check_pascal_context(root: str | Path, progress: bool = True) -> dict[str, object]:
    """Validate every sample of the train and val lists under ``root``.

    Decodes every image and label and checks sizes and ids.

    Returns:
        ``{"splits": {split: images}, "labels": "png" or "mat" and its folder, "lists": the
        list files}``.

    Raises:
        DatasetError: at the first problem, naming the file and what to do.
    """
    counts: dict[str, int] = {}
    lists: list[str] = []
    layout = ""
    for split in ("train", "val"):
        pairs, layout, list_file = scan_split(root, split)
        for image, label in progress_bar(
            pairs, desc=f"check {split}", disable=not progress, leave=False
        ):
            load_pair(image, label)
        counts[split] = len(pairs)
        lists.append(str(list_file))
    label_dir = label_layout(voc_folder(root))[1]
    return {"splits": counts, "labels": f"{layout} ({label_dir})", "lists": lists}
