"""Cityscapes on its official layout, with checks that name the file and say how to fix it.

The layout is the one ``torchvision.datasets.Cityscapes`` reads::

    root/leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    root/gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

Items are ``(image float32 [3, H, W] normalised, mask int64 [H, W])`` with the 19 train ids and
255 = ignore. MiniCity (``dgcn.datasets.minicity``) is written in the same layout and read by
the same class.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

try:  # libpng through torchvision decodes about 1.6x faster than PIL; deprecated in 0.29
    from torchvision.io import ImageReadMode, decode_image, decode_png, read_file
except ImportError:  # a torchvision without the decoders: PIL does the same job
    decode_png = decode_image = None

from dgcn.datasets.labels import VALID_IDS, id_to_train_id_lut
from dgcn.datasets.pairs import LabelledImages
from dgcn.datasets.png_check import SIGNATURE, DamagedPng, require_sound_png
from dgcn.errors import DatasetError
from dgcn.progress import progress_bar

SPLITS = ("train", "val", "test", "train_extra")
IMAGE_SUFFIX = "_leftImg8bit.png"
#: label folder and file suffix per annotation mode
MODES = {
    "fine": ("gtFine", "_gtFine_labelIds.png"),
    "coarse": ("gtCoarse", "_gtCoarse_labelIds.png"),
}
ZIPS = {
    "leftImg8bit": "leftImg8bit_trainvaltest.zip",
    "gtFine": "gtFine_trainvaltest.zip",
    "gtCoarse": "gtCoarse.zip",
}

_TRAIN_ID_LUT = torch.from_numpy(id_to_train_id_lut())
_INVALID = torch.ones(256, dtype=torch.bool)
_INVALID[list(VALID_IDS)] = False


def _require_folder(root: Path, name: str) -> Path:
    folder = root / name
    if folder.is_dir():
        return folder
    archive = root / ZIPS.get(name, name + ".zip")
    if archive.exists():
        raise DatasetError(
            f"{root} holds {archive.name} but no {name}/ folder: extract it there "
            f"(unzip -q {archive} -d {root})"
        )
    raise DatasetError(
        f"{root} has no {name}/ folder; expected the Cityscapes layout "
        f"{root}/{name}/<split>/<city>/... (see data/README.md)"
    )


def scan_split(
    root: str | Path, split: str = "train", mode: str = "fine"
) -> list[tuple[Path, Path]]:
    """Pair every image of a split with its label file, in sorted, deterministic order.

    Args:
        root: the dataset root (holding ``leftImg8bit/`` and ``gtFine/``).
        split: ``train``, ``val``, ``test`` (or ``train_extra`` with ``mode="coarse"``).
        mode: ``"fine"`` (gtFine) or ``"coarse"`` (gtCoarse).

    Returns:
        [(image path, label path)], sorted by image path.

    Raises:
        DatasetError: missing root or folder, zips not extracted, an image without a label or a
            label without an image, or an empty split; the message names the path.
    """
    root = Path(root)
    if mode not in MODES:
        raise DatasetError(f"unknown annotation mode {mode!r}; use one of {sorted(MODES)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if not root.is_dir():
        raise DatasetError(
            f"dataset root {root} does not exist; download Cityscapes there (see data/README.md) "
            f"or generate MiniCity with `dgcn make-minicity --out {root}`"
        )
    label_folder, label_suffix = MODES[mode]
    image_dir = _require_folder(root, "leftImg8bit") / split
    label_dir = _require_folder(root, label_folder) / split
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise DatasetError(f"split folder {folder} is missing; is {split!r} the right split?")
    images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
    labels = {p.relative_to(label_dir): p for p in label_dir.glob(f"*/*{label_suffix}")}
    pairs = []
    for image in images:
        rel = image.relative_to(image_dir)
        key = rel.with_name(rel.name[: -len(IMAGE_SUFFIX)] + label_suffix)
        label = labels.pop(key, None)
        if label is None:
            raise DatasetError(
                f"image {image} has no label: expected {label_dir / key}; restore the label or "
                "remove the image"
            )
        pairs.append((image, label))
    if labels:
        orphan = sorted(labels.values())[0]
        raise DatasetError(
            f"label {orphan} has no image: expected {image_dir / orphan.relative_to(label_dir)}"
            f" (ending in {IMAGE_SUFFIX}); restore the image or remove the label"
        )
    if not pairs:
        raise DatasetError(f"split {split!r} of {root} is empty: no *{IMAGE_SUFFIX} in {image_dir}")
    return pairs


#: the start of the DeprecationWarning that torchvision >= 0.29 gives at each decode
DECODE_DEPRECATION = "The image decoding and encoding capabilities of TorchVision"


def _quiet_decode(decoder: Callable[..., torch.Tensor], path: Path, rgb: bool) -> torch.Tensor:
    """``decoder`` (torchvision's decode_png or decode_image) on the file at ``path``, its
    deprecation warning silenced for this call only: the filter is restored on return, so
    the user's own calls of torchvision's decoders still warn. A PNG is checked first
    (:func:`~dgcn.datasets.png_check.require_sound_png`): one libpng cannot read crashes
    torchvision's decoder."""
    mode = ImageReadMode.RGB if rgb else ImageReadMode.UNCHANGED
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", DECODE_DEPRECATION, DeprecationWarning)
        data = read_file(str(path))
        if bytes(data[:8].numpy()) == SIGNATURE:  # libpng's row errors crash torchvision
            require_sound_png(path, data.numpy())
        return decoder(data, mode=mode)


def _decode(path: Path, rgb: bool) -> torch.Tensor:
    if decode_png is not None:
        return _quiet_decode(decode_png, path, rgb)
    with Image.open(path) as pil:
        array = np.asarray(pil.convert("RGB") if rgb else pil)
    array = array[..., None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


#: the first bytes of the image formats the loaders read
SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}


def why_unreadable(path: Path, err: BaseException | None = None) -> str:
    """Why an image file failed to decode, in our words (the decoder's own message, which
    names its C++ source file, is kept in the exception chain that ``--debug`` prints);
    ``err``, the decoder's exception, gives the reason when it is a :class:`DamagedPng`."""
    if isinstance(err, DamagedPng):
        return f"is a damaged PNG ({err.reason})"
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if size == 0:
        return "is empty"
    kind = next((name for sig, name in SIGNATURES.items() if head.startswith(sig)), None)
    if kind is None:
        return "is not a PNG or JPEG file (its first bytes are neither signature)"
    return f"is a damaged {kind} (truncated or corrupt data, {size} bytes)"


def read_image(path: Path) -> torch.Tensor:
    """Decode an RGB PNG to uint8 [3, H, W]; a corrupt file raises DatasetError naming it."""
    try:
        return _decode(path, rgb=True)
    except Exception as err:
        raise DatasetError(
            f"cannot decode image {path}: it {why_unreadable(path, err)}; re-extract or "
            "re-download it"
        ) from err


#: the most pixels a photo may have: decoded and normalised, it takes 15 bytes a pixel before
#: the model's own memory (PIL warns from 89 megapixels on, for the same reason)
PHOTO_PIXELS_MAX = 100_000_000


def _check_photo_size(path: Path) -> None:
    """Refuse a photo whose header declares more than :data:`PHOTO_PIXELS_MAX` pixels, before
    anything is decoded (a file PIL cannot read is left to the decoder's own check)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as pil:  # reads the header only
                width, height = pil.size
    except Image.DecompressionBombError:  # PIL's own limit, twice its warning's
        width = height = None
    except Exception:
        return
    if width is None or width * height > PHOTO_PIXELS_MAX:
        size = f"is {width}x{height} ({width * height / 1e6:.0f} megapixels)," if width else "has"
        raise DatasetError(
            f"image {path} {size} more than the {PHOTO_PIXELS_MAX / 1e6:.0f} megapixels a "
            "photo may have; downscale it (e.g. to 2048 pixels on its longer side)"
        )


def read_photo(path: Path, fix: str | None = None) -> torch.Tensor:
    """Decode any image torchvision reads (PNG, JPEG, ...) to RGB uint8 [3, H, W] (the user's
    own photos, PASCAL Context's JPEGs); a missing or unreadable file raises DatasetError,
    which ends with ``fix`` (by default: save a damaged PNG again, or use a PNG or JPEG)."""
    if not path.is_file():
        raise DatasetError(f"image {path} not found; check the path")
    _check_photo_size(path)
    try:
        if decode_image is None:
            return _decode(path, rgb=True)  # PIL: any format it reads
        return _quiet_decode(decode_image, path, rgb=True)
    except Exception as err:
        if fix is None:
            damaged = isinstance(err, DamagedPng)
            fix = "save or download it again" if damaged else "is it a PNG or JPEG?"
        why = why_unreadable(path, err)
        raise DatasetError(f"cannot decode image {path}: it {why}; {fix}") from err


def read_label(path: Path) -> torch.Tensor:
    """Decode a single-channel labelIds PNG to uint8 [H, W]; checks channels and decoding."""
    try:
        label = _decode(path, rgb=False)
    except Exception as err:
        raise DatasetError(
            f"cannot decode label {path}: it {why_unreadable(path, err)}; re-extract or "
            "re-download it"
        ) from err
    if label.shape[0] != 1 or label.dtype != torch.uint8:
        raise DatasetError(
            f"label {path} has {label.shape[0]} channels of {label.dtype}; expected the 8-bit "
            "single-channel *_labelIds.png (not the *_color.png)"
        )
    return label[0]


def load_pair(image_path: Path, label_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read and check one sample: uint8 image [3, H, W], uint8 label ids [H, W].

    Raises:
        DatasetError: corrupt file, size mismatch, or label ids outside the Cityscapes table.
    """
    image, label = read_image(image_path), read_label(label_path)
    if image.shape[-2:] != label.shape:
        raise DatasetError(
            f"image {image_path} is {image.shape[2]}x{image.shape[1]} but its label {label_path} "
            f"is {label.shape[1]}x{label.shape[0]}; they must have the same size"
        )
    counts = torch.bincount(label.flatten(), minlength=256)
    if bool(counts[_INVALID].any()):
        bad = torch.nonzero((counts > 0) & _INVALID).flatten().tolist()
        raise DatasetError(
            f"label {label_path} holds ids {bad[:5]} outside the Cityscapes table (0..33); is it "
            "a trainIds or colour file? Use the *_labelIds.png files"
        )
    return image, label


class Cityscapes(LabelledImages):
    """Cityscapes (or MiniCity) on the official layout.

    Args:
        root: the dataset root.
        split: ``train``, ``val`` or ``test`` (``train_extra`` with ``mode="coarse"``).
        transforms: a joint transform ``(image, mask) -> (image, mask)`` from
            :mod:`dgcn.datasets.transforms`; it receives a uint8 ``tv_tensors.Image`` [3, H, W]
            and a uint8 ``tv_tensors.Mask`` [H, W] of train ids (255 = ignore), and must return a
            float image. None applies the evaluation transform (ImageNet normalisation only).
        mode: ``"fine"`` or ``"coarse"`` annotations.

    Shape:
        item: (image float32 [3, H, W] normalised, mask int64 [H, W], 19 train ids, 255 ignore)
    """

    _load = staticmethod(load_pair)

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transforms: Callable | None = None,
        mode: str = "fine",
    ) -> None:
        self.root, self.split, self.mode = Path(root), split, mode
        self.samples = scan_split(root, split, mode)
        self._use_transforms(transforms)
        self._lut = _TRAIN_ID_LUT


def check_tree(root: str | Path, progress: bool = True) -> dict[str, int]:
    """Validate every sample of every split present under ``root``; returns counts per split.

    Decodes every image and label and checks sizes and ids.

    Raises:
        DatasetError: at the first problem, naming the file.
    """
    root = Path(root)
    if not root.is_dir():
        scan_split(root)  # raises the missing-root message
    image_root = _require_folder(root, "leftImg8bit")
    splits = [s for s in SPLITS if (image_root / s).is_dir()]
    if not splits:
        raise DatasetError(f"{image_root} holds no split folder ({', '.join(SPLITS[:3])})")
    counts = {}
    for split in splits:
        mode = "coarse" if split == "train_extra" else "fine"
        pairs = scan_split(root, split, mode)
        for image, label in progress_bar(
            pairs, desc=f"check {split}", disable=not progress, leave=False
        ):
            load_pair(image, label)
        counts[split] = len(pairs)
    return counts


def label_ids_to_train_ids(label: np.ndarray) -> np.ndarray:
    """Map a uint8 label-id array to train ids (255 = ignore)."""
    return id_to_train_id_lut()[label]
