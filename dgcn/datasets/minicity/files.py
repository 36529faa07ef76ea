"""MiniCity on disk: the Cityscapes layout, the marker file, reuse and refusal of a folder.

Every file is written atomically and ``minicity.json`` (the parameters) last, as the marker of a
finished generation: a folder whose marker matches the parameters asked for is reused, one that
holds another MiniCity or other files is refused unless ``overwrite`` is given, and only the
MiniCity city folders are ever deleted.

Generate from one process at a time (e.g. rank 0 under ``torchrun``, the others waiting): two
processes writing the same folder at once may delete each other's files.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dgcn.config_check import SEED_MAX, SIDE_MAX
from dgcn.datasets.cityscapes import scan_split
from dgcn.datasets.labels import LABELS
from dgcn.datasets.minicity.scene import GENERATOR_VERSION, VERSIONS, generate_scene
from dgcn.errors import DatasetError
from dgcn.fileio import atomic_path, write_text_atomic
from dgcn.progress import progress_bar

DEFAULT_ROOT = "data/minicity"
SPLITS = ("train", "val", "test")
#: invented city names, different for every split
CITIES: dict[str, tuple[str, ...]] = {
    "train": ("tarnholm", "velbrook", "quillmont"),
    "val": ("marrowby",),
    "test": ("lindqvale",),
}
FRAME = 19
MARKER = "minicity.json"

#: [256, 3] uint8: the Cityscapes colour of every label id (black for unused ids)
ID_COLORS = np.zeros((256, 3), dtype=np.uint8)
for _label in LABELS:
    if _label.id >= 0:
        ID_COLORS[_label.id] = _label.color


def _stem(split: str, index: int) -> tuple[str, str]:
    """The city of image ``index`` of a split and its Cityscapes file stem."""
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index:06d}_{FRAME:06d}"


def _save_png(array: np.ndarray, path: Path) -> None:
    """Write a PNG atomically, with zlib's default level (as the Cityscapes PNGs are written)."""
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def _write_json(data: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_sample(out: Path, split: str, index: int, image: np.ndarray, label: np.ndarray) -> None:
    """Write one image with its labelIds and colour PNGs in the Cityscapes layout.

    Args:
        out: the dataset root.
        split: ``train``, ``val`` or ``test``.
        index: the image index (the ``seq`` field of the file names).
        image: uint8 [H, W, 3].
        label: uint8 [H, W] label ids.
    """
    city, stem = _stem(split, index)
    image_dir = out / "leftImg8bit" / split / city
    label_dir = out / "gtFine" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    _save_png(image, image_dir / f"{stem}_leftImg8bit.png")
    _save_png(label, label_dir / f"{stem}_gtFine_labelIds.png")
    _save_png(ID_COLORS[label], label_dir / f"{stem}_gtFine_color.png")


def _parameters(
    seed: int, height: int, width: int, counts: dict[str, int], version: int = GENERATOR_VERSION
) -> dict[str, Any]:
    return {
        "generator": "minicity",
        "version": version,
        "seed": seed,
        "height": height,
        "width": width,
        "counts": dict(counts),
    }


def _read_marker(out: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_complete(out: Path, counts: dict[str, int]) -> bool:
    """Whether every split folder holds the expected number of images and labels."""
    for split, n in counts.items():
        found_images = found_labels = 0
        for city in CITIES[split]:
            image_dir = out / "leftImg8bit" / split / city
            label_dir = out / "gtFine" / split / city
            if image_dir.is_dir():
                found_images += sum(1 for _ in image_dir.glob("*_leftImg8bit.png"))
            if label_dir.is_dir():
                found_labels += sum(1 for _ in label_dir.glob("*_gtFine_labelIds.png"))
        if found_images != n or found_labels != n:
            return False
    return True


def _foreign_entries(out: Path) -> list[Path]:
    """What lies in ``out`` that a MiniCity run did not write (the marker aside)."""
    foreign = []
    for entry in out.iterdir():
        if entry.name == MARKER:
            continue
        if entry.name not in ("leftImg8bit", "gtFine") or not entry.is_dir():
            foreign.append(entry)
            continue
        for split_dir in entry.iterdir():
            if split_dir.name not in CITIES or not split_dir.is_dir():
                foreign.append(split_dir)
                continue
            foreign.extend(c for c in split_dir.iterdir() if c.name not in CITIES[split_dir.name])
    return foreign


def _remove_minicity(out: Path) -> None:
    """Delete the files of an earlier MiniCity: the marker and the MiniCity city folders only."""
    (out / MARKER).unlink(missing_ok=True)
    for top in ("leftImg8bit", "gtFine"):
        for split, cities in CITIES.items():
            for city in cities:
                folder = out / top / split / city
                if folder.is_dir():
                    shutil.rmtree(folder)


def make_minicity(
    out: str | os.PathLike[str],
    train: int = 200,
    val: int = 50,
    test: int = 0,
    seed: int = 0,
    height: int = 128,
    width: int = 256,
    progress: bool = True,
    overwrite: bool = False,
    version: int = GENERATOR_VERSION,
) -> dict[str, int]:
    """Generate MiniCity under ``out`` in the Cityscapes layout (:mod:`dgcn.datasets.minicity`).

    Image ``i`` of split ``s`` is drawn from ``np.random.default_rng([seed, s, i])`` (s = 0, 1, 2
    for train, val, test), so files are byte-identical for the same seed and size whatever the
    counts. Every file is written atomically and ``out/minicity.json`` is written last, as the
    marker of a finished generation.

    Args:
        out: the dataset root to write.
        train: number of training images.
        val: number of validation images.
        test: number of test images (labelled too, unlike Cityscapes).
        seed: the random seed.
        height: image height in pixels.
        width: image width in pixels.
        progress: show a tqdm progress bar.
        overwrite: replace a MiniCity generated with other parameters, or write into a folder
            holding other files (only the MiniCity city folders are ever deleted).
        version: the generator's rules (:data:`~dgcn.datasets.minicity.scene.VERSIONS`; 1
            rebuilds the first edition's data byte for byte).

    Returns:
        The number of images per split, ``{"train": .., "val": .., "test": ..}``.

    Raises:
        DatasetError: on a negative count or a size below 16, when ``out`` holds a MiniCity with
            other parameters or other files and ``overwrite`` is False, or when ``out`` is a file.
    """
    out = Path(out)
    counts = {"train": int(train), "val": int(val), "test": int(test)}
    for split, n in counts.items():
        if n < 0:
            raise DatasetError(f"MiniCity: the number of {split} images must be >= 0, got {n}")
    if not 16 <= height <= SIDE_MAX or not 16 <= width <= SIDE_MAX:
        raise DatasetError(
            f"MiniCity: each side of the size must be from 16 to {SIDE_MAX} pixels, got "
            f"{height}x{width}"
        )
    if (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or not 0 <= seed <= SEED_MAX
    ):
        raise DatasetError(
            f"MiniCity: the seed must be an integer from 0 to {SEED_MAX}, got {seed}"
        )
    if version not in VERSIONS:
        raise DatasetError(
            f"MiniCity: the generator version must be one of {VERSIONS}, got {version!r}"
        )
    params = _parameters(int(seed), int(height), int(width), counts, int(version))
    if out.exists() and not out.is_dir():
        raise DatasetError(f"MiniCity output {out} is a file; choose another --out")
    if out.is_dir():
        marker = _read_marker(out)
        if marker == params and _is_complete(out, counts):
            return counts
        if marker is not None and marker.get("generator") == "minicity" and marker != params:
            if not overwrite:
                differs = sorted(
                    key for key in params if key != "generator" and marker.get(key) != params[key]
                )
                if differs == ["version"]:
                    raise DatasetError(
                        f"{out} holds MiniCity of generator version {marker.get('version')}, "
                        f"version {params['version']} is asked for: remove {out} (it is "
                        "generated again on first use), pass overwrite=True (make-minicity "
                        f"--overwrite), or set data.minicity_version: {marker.get('version')}"
                    )
                raise DatasetError(
                    f"{out} already holds a MiniCity generated with other parameters "
                    f"(differing: {', '.join(differs)}; see {out / MARKER}); pass overwrite=True "
                    "(--overwrite) to replace it, or choose another --out"
                )
        elif marker is None and not overwrite:
            foreign = _foreign_entries(out)
            if foreign:
                raise DatasetError(
                    f"{out} is not empty and holds no {MARKER} (e.g. {foreign[0]}); it is not a "
                    "MiniCity: choose another --out, or pass overwrite=True (--overwrite) to "
                    "write MiniCity next to these files"
                )
        _remove_minicity(out)
    created = _new_folders(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _generate(out, counts, seed, height, width, version, progress)
        _write_json(params, out / MARKER)
    except BaseException:  # a failure or a signal: the folders this call created go
        _remove_new(created, out)
        raise
    return counts


def _new_folders(out: Path) -> list[Path]:
    """The folders a generation into ``out`` may create that do not exist yet, innermost
    first: ``out``'s own split and city folders, ``out`` and its missing parents."""
    inner = [
        out / top / split / city
        for top in ("leftImg8bit", "gtFine")
        for split, cities in CITIES.items()
        for city in cities
    ]
    inner += [out / top / split for top in ("leftImg8bit", "gtFine") for split in CITIES]
    inner += [out / "leftImg8bit", out / "gtFine"]
    return [p for p in (*inner, out, *out.parents) if not p.exists()]


def _remove_new(created: list[Path], out: Path) -> None:
    """Remove the folders of :func:`_new_folders` (``out`` and what lies in it with all their
    content; its parents only when empty)."""
    for folder in created:
        if folder == out or out in folder.parents:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            try:
                folder.rmdir()
            except OSError:
                break


def _generate(
    out: Path, counts: dict[str, int], seed: int, height: int, width: int, version: int, progress
) -> None:
    total = sum(counts.values())
    with progress_bar(total=total, desc=f"MiniCity {out}", unit="img", disable=not progress) as bar:
        for split_index, split in enumerate(SPLITS):
            for index in range(counts[split]):
                rng = np.random.default_rng([int(seed), split_index, index])
                image, label = generate_scene(rng, height, width, version)
                write_sample(out, split, index, image, label)
                bar.update(1)


def ensure_minicity(root: str | os.PathLike[str] = DEFAULT_ROOT, **kwargs: Any) -> Path:
    """Return a MiniCity root, generating it on first use (then it is cached on disk).

    Without keyword arguments any finished MiniCity already in ``root`` is used as it is;
    otherwise one is generated with the defaults of :func:`make_minicity`. Keyword arguments are
    passed to :func:`make_minicity`, which returns at once when ``root`` already holds a MiniCity
    with those parameters.

    Args:
        root: the dataset root (default ``data/minicity``, relative to the working directory).
        **kwargs: parameters of :func:`make_minicity` (train, val, test, seed, height, width,
            progress, overwrite).

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    marker = _read_marker(root) if root.is_dir() else None
    if not kwargs and marker is not None and isinstance(marker.get("counts"), dict):
        counts = {split: int(marker["counts"].get(split, 0)) for split in SPLITS}
        if marker.get("version") == GENERATOR_VERSION and _is_complete(root, counts):
            return root
    make_minicity(root, **kwargs)
    return root


def write_preview(
    root: str | os.PathLike[str], path: str | os.PathLike[str], count: int = 6, split: str = "train"
) -> Path:
    """Save a grid of the first ``count`` images of a split, each beside its colour label.

    Works on any tree in the Cityscapes layout that has ``*_gtFine_color.png`` files.

    Args:
        root: the dataset root.
        path: the PNG to write.
        count: how many images (rows).
        split: which split.

    Returns:
        the written path.
    """
    rows = []
    for image_path, label_path in scan_split(root, split)[:count]:
        color_path = label_path.with_name(label_path.name.replace("_labelIds", "_color"))
        image = np.asarray(Image.open(image_path).convert("RGB"))
        color = np.asarray(Image.open(color_path).convert("RGB"))
        gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([image, gap, color], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_png(np.concatenate(rows[:-1], axis=0), path)
    return path
