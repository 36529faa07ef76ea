"""Joint image + mask augmentations on torchvision v2 ``tv_tensors`` (``Image`` / ``Mask``).

Every transform is called as ``image, mask = t(image, mask)``. Geometric transforms go through
``torchvision.transforms.v2.functional``, which resizes a ``Mask`` with nearest neighbours, so
image and mask stay aligned. Random choices use torch's global generator (seeded per
DataLoader worker, saved in checkpoints), so runs are reproducible.

The training pipeline crops before it resizes (:class:`RandomScaleCrop`): the cost stays that
of the output crop whatever the scale, instead of resizing a whole 2048x1024 frame by up to
2.1x and throwing most of it away.

The recipes (crop size, scales, flip) are not named here: they are the ``data:`` section of the
config presets in ``experiments/configs/``, turned into transforms by
:func:`dgcn.datasets.build.data_transforms`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from dgcn.datasets.labels import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Compose:
    """Apply joint transforms in order."""

    def __init__(self, transforms: Sequence) -> None:
        self.transforms = list(transforms)

    def __call__(self, image, mask):
        for t in self.transforms:
            image, mask = t(image, mask)
        return image, mask

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


def _size(t: torch.Tensor) -> tuple[int, int]:
    return int(t.shape[-2]), int(t.shape[-1])


class RandomScaleCrop:
    """Random scale, then a random crop of ``crop_size``, computed crop-first.

    Equivalent (up to sub-pixel rounding of the crop box) to resizing the whole image by a
    scale drawn from ``scales`` and taking a random ``crop_size`` window; where the scaled
    image is smaller than the crop, the window is anchored top-left and :class:`PadTo` pads
    bottom/right later. Only the source region under the window is resized.

    Args:
        crop_size: (height, width) of the output window.
        scales: the scales to draw from uniformly (the authors: 0.7, 0.8, ..., 2.1).
        interpolation: of the image (the mask is always nearest); bilinear as the authors.
        base_size: 0: a scale multiplies the image's size; > 0: a scale ``s`` resizes the
            image (aspect kept) so that its long side is ``s * base_size``, as the PASCAL
            Context recipes do with base size 520 and scales 0.5 to 2.0.
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        scales: Sequence[float],
        interpolation: InterpolationMode = InterpolationMode.BILINEAR,
        base_size: int = 0,
    ) -> None:
        self.crop_size = tuple(crop_size)
        self.scales = tuple(float(s) for s in scales)
        self.interpolation = interpolation
        self.base_size = int(base_size)

    def __call__(self, image, mask):
        scale = self.scales[int(torch.randint(len(self.scales), ()))]
        height, width = _size(image)
        if self.base_size > 0:
            scale = scale * self.base_size / max(height, width)
        scaled_h, scaled_w = round(height * scale), round(width * scale)
        crop_h, crop_w = self.crop_size
        out_h, out_w = min(crop_h, scaled_h), min(crop_w, scaled_w)
        top = int(torch.randint(scaled_h - out_h + 1, ()))
        left = int(torch.randint(scaled_w - out_w + 1, ()))
        # the window in source pixels (the scaled image's pixel edges / scale)
        y0, x0 = math.floor(top / scale), math.floor(left / scale)
        y1 = min(height, max(y0 + 1, round((top + out_h) / scale)))
        x1 = min(width, max(x0 + 1, round((left + out_w) / scale)))
        box = (y0, x0, y1 - y0, x1 - x0)
        image = F.resized_crop(
            image, *box, size=[out_h, out_w], interpolation=self.interpolation, antialias=False
        )
        mask = F.resized_crop(mask, *box, size=[out_h, out_w])
        return image, mask

    def __repr__(self) -> str:
        base = f", base_size={self.base_size}" if self.base_size else ""
        return f"RandomScaleCrop(crop_size={self.crop_size}, scales={self.scales}{base})"


class RandomHorizontalFlip:
    """Flip image and mask together with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, image, mask):
        if float(torch.rand(())) < self.p:
            return F.horizontal_flip(image), F.horizontal_flip(mask)
        return image, mask

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize:
    """uint8 -> float32 in [0, 1], then ImageNet mean/std; the mask is untouched."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        self.mean, self.std = list(mean), list(std)

    def __call__(self, image, mask):
        image = F.to_dtype(image, torch.float32, scale=True)
        return F.normalize(image, self.mean, self.std), mask

    def __repr__(self) -> str:
        return "Normalize(ImageNet)"


class PadTo:
    """Pad bottom/right up to ``size``: the (normalised) image with 0, the mask with 255."""

    def __init__(self, size: tuple[int, int], fill: float = 0.0, mask_fill: int = IGNORE_INDEX):
        self.size, self.fill, self.mask_fill = tuple(size), fill, mask_fill

    def __call__(self, image, mask):
        height, width = _size(image)
        pad_h, pad_w = max(0, self.size[0] - height), max(0, self.size[1] - width)
        if pad_h or pad_w:
            padding = [0, 0, pad_w, pad_h]  # left, top, right, bottom
            image = F.pad(image, padding, fill=self.fill)
            mask = F.pad(mask, padding, fill=self.mask_fill)
        return image, mask

    def __repr__(self) -> str:
        return f"PadTo({self.size})"


def train_transforms(
    crop_size: tuple[int, int], scales: Sequence[float], flip: bool, base_size: int = 0
) -> Compose:
    """Scale + crop (crop first), flip, normalise, pad to the crop size.

    The recipes (crop, scales, flip, base size) live in the YAML presets' ``data`` sections; a
    config's transforms are :func:`dgcn.datasets.build.data_transforms`. ``base_size`` > 0 makes
    the scales relative to a long side of ``base_size`` (:class:`RandomScaleCrop`).
    """
    steps: list = [RandomScaleCrop(crop_size, scales, base_size=base_size)]
    if flip:
        steps.append(RandomHorizontalFlip())
    steps += [Normalize(), PadTo(crop_size)]
    return Compose(steps)


def eval_transforms() -> Compose:
    """Normalisation only: evaluation runs on the full image."""
    return Compose([Normalize()])


def as_tv(image: torch.Tensor, mask: torch.Tensor) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """Wrap plain tensors so the v2 functionals treat them as image and mask."""
    return tv_tensors.Image(image), tv_tensors.Mask(mask)
