"""Write the PASCAL Context labels once as 8-bit PNGs (``dgcn convert-pascal-context``).

The PNGs follow the layout mmsegmentation's converter writes:
``VOC2010/SegmentationClassContext/<id>.png``, one channel, values 0..59 (0 = background: the
unlabeled pixels and the 400 classes outside the benchmark; k = the k-th of the 59 classes in
ascending original id, :mod:`dgcn.datasets.pascal_context.labels`). The 59-class setting
reduces them when loading (0 -> 255, k -> k - 1); the 60-class setting reads them as they are.

Reading PNGs is much faster than ``scipy.io.loadmat``, and after the conversion scipy is no
longer needed. The folder appears in one step: the PNGs are written to a hidden folder beside
it, which is renamed when every file is complete, so an interrupted run leaves the tree as it
was (apart from that hidden folder, removed on the next run).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from dgcn.datasets.pascal_context.dataset import (
    LABELS_TAR,
    MAT_FOLDER,
    PNG_FOLDER,
    label_layout,
    loadmat_label,
    voc_folder,
)
from dgcn.datasets.pascal_context.labels import full_to_context_lut
from dgcn.errors import DatasetError
from dgcn.progress import progress_bar


def convert_pascal_context(
    root: str | Path,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[Path, int]:
    """Convert every ``trainval/<id>.mat`` to ``<out>/SegmentationClassContext/<id>.png``.

    Args:
        root: the dataset root (as for :class:`dgcn.datasets.PascalContext`).
        out: the folder that receives ``SegmentationClassContext/``; default: the ``VOC2010``
            folder of ``root``, where the loader finds the PNGs and prefers them to the
            ``.mat`` files.
        overwrite: replace an existing ``SegmentationClassContext/`` (only once the new one is
            complete).
        progress: show a progress bar.

    Returns:
        (the PNG folder, the number of files).

    Raises:
        DatasetError: no ``trainval/`` (or not extracted), no ``.mat`` file, the output exists
            without ``overwrite``, scipy missing, or a label with ids outside the table.
    """
    voc = voc_folder(root)
    mat_dir = voc / MAT_FOLDER
    if not mat_dir.is_dir():
        label_layout(voc)  # names an unextracted trainval.tar.gz
        raise DatasetError(
            f"{voc} has no {MAT_FOLDER}/ folder to convert; extract {LABELS_TAR} into {voc}"
        )
    mats = sorted(mat_dir.glob("*.mat"))
    if not mats:
        raise DatasetError(f"{mat_dir} holds no .mat file; re-extract {LABELS_TAR} into {voc}")
    out = voc if out is None else Path(out)
    target = out / PNG_FOLDER
    if target.exists() and not overwrite:
        raise DatasetError(f"{target} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file; give a folder")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".{PNG_FOLDER}.{os.getpid()}.partial"
    old = out / f".{PNG_FOLDER}.{os.getpid()}.old"
    for stale in out.glob(f".{PNG_FOLDER}.*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
    lut = full_to_context_lut()
    try:
        staging.mkdir()
        for mat in progress_bar(mats, desc="convert", unit="label", disable=not progress):
            values = lut[loadmat_label(mat)]
            Image.fromarray(np.ascontiguousarray(values)).save(staging / f"{mat.stem}.png")
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old.exists() and not target.exists():
            os.replace(old, target)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target, len(mats)
