"""What every labelled dataset of the package shares: (image file, label file) pairs read,
mapped to train ids through a lookup table and passed through a joint transform."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from dgcn.datasets.transforms import eval_transforms


class LabelledImages(Dataset):
    """Items ``(image, mask)`` of ``self.samples``, a list of (image path, label path).

    A subclass sets ``samples``, ``_lut`` (a tensor from the label file's ids to train ids,
    255 = ignore), the class attribute ``_load`` (``staticmethod`` of a function of the two
    paths returning a uint8 image [3, H, W] and the label ids [H, W]) and calls
    :meth:`_use_transforms`.

    Shape:
        item: (image float32 [3, H, W] normalised, mask int64 [H, W] train ids, 255 ignore)
    """

    samples: list[tuple[Path, Path]]
    _lut: torch.Tensor
    _load: Callable[[Path, Path], tuple[torch.Tensor, torch.Tensor]]

    def _use_transforms(self, transforms: Callable | None) -> None:
        self.transforms = transforms if transforms is not None else eval_transforms()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self._load(*self.samples[index])
        train_ids = self._lut[label.long()]
        image, mask = self.transforms(tv_tensors.Image(image), tv_tensors.Mask(train_ids))
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()

    def image_path(self, index: int) -> Path:
        """The image file of item ``index``."""
        return self.samples[index][0]
