"""An object-level score: the share of ground-truth objects recognised as a whole.

The mIoU counts pixels, so a head can gain IoU on a bus by getting its image-level context
right (this picture has a bus somewhere) without telling which blob is the bus. The score here
counts objects instead: a ground-truth object is right when the class predicted for most of its
pixels is its own class. Image-level pooling cannot fake that for two vehicles of different
classes in one image; relating the pixels of one object to each other can.

MiniCity (and a train-id mask in general) has no instance maps, so an object here is a
4-connected component of one class in the ground-truth mask: two pixels belong to the same
object when they are neighbours (up, down, left, right) and have the same label. Two vehicles
of one class that touch are one object. Components smaller than ``min_pixels`` (16 by default,
:data:`MIN_PIXELS`) are not counted: slivers cut off by other objects or at the image border,
too small to have a "majority" worth the name. By default the classes are the big vehicles,
truck, bus and train (:data:`BIG_VEHICLES`, Cityscapes train ids 14, 15, 16): the ones whose
look is ambiguous without the whole object and its context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dgcn.datasets.labels import CLASS_NAMES, NUM_CLASSES

#: the classes :class:`ObjectScore` counts by default: the big vehicles
BIG_VEHICLES = ("truck", "bus", "train")
#: the smallest component (in pixels) that counts as an object
MIN_PIXELS = 16


def label_components(labels: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """The 4-connected components of the pixels whose label is one of ``classes``.

    Two pixels are joined when they are neighbours (up, down, left or right) in the same image
    and have the same label. Every pixel starts as its own component, named by its index in
    the flattened batch; each round gives a pixel and its component's current name the
    smallest name of its joined neighbours, then follows names to their end (pointer jumping),
    until nothing changes: each component is then named by its first pixel.

    Args:
        labels: label ids, any integer dtype.
        classes: the label ids that form components (other pixels belong to none).

    Returns:
        component ids ``0 .. n - 1`` per pixel (numbered in the order of each component's first
        pixel, image by image, row by row), -1 for pixels of other labels.

    Shape:
        labels: [B, H, W] -> [B, H, W] int64

    Raises:
        ValueError: ``labels`` is not [B, H, W].
    """
    if labels.dim() != 3:
        raise ValueError(f"labels must be [B, H, W], got shape {tuple(labels.shape)}")
    labels = labels.long()
    wanted = torch.tensor(list(classes), dtype=torch.int64, device=labels.device)
    inside = torch.isin(labels, wanted)
    # across / down: a pixel and its left / upper neighbour belong to one object
    across = inside[:, :, 1:] & (labels[:, :, 1:] == labels[:, :, :-1])
    down = inside[:, 1:] & (labels[:, 1:] == labels[:, :-1])
    names = torch.arange(labels.numel(), device=labels.device).view(labels.shape)
    apart = labels.numel()  # larger than every name: the name seen across a border
    while True:
        low = names.clone()
        low[:, :, 1:] = low[:, :, 1:].minimum(names[:, :, :-1].where(across, apart))
        low[:, :, :-1] = low[:, :, :-1].minimum(names[:, :, 1:].where(across, apart))
        low[:, 1:] = low[:, 1:].minimum(names[:, :-1].where(down, apart))
        low[:, :-1] = low[:, :-1].minimum(names[:, 1:].where(down, apart))
        # hook: the pixel a name points to takes the smallest name among those pointing to it
        flat = low.view(-1).scatter_reduce(0, names.view(-1), low.view(-1), reduce="amin")
        while True:  # every name in a component is a pixel of it: follow them to their end
            jumped = flat[flat]
            if torch.equal(jumped, flat):
                break
            flat = jumped
        flat = flat.view(labels.shape)
        if torch.equal(flat, names):
            break
        names = flat
    result = torch.full_like(names, -1)
    result[inside] = torch.unique(names[inside], return_inverse=True)[1]
    return result


class ObjectScore:
    """A running count of ground-truth objects and of those whose majority prediction is right.

    An object is a 4-connected component of one of ``classes`` in the ground-truth mask with at
    least ``min_pixels`` pixels (:func:`label_components`; the module docstring says why). It is
    right when its own class is predicted for more of its pixels than any other class (a tie
    is not right).

    Args:
        classes: the names of the counted classes, from ``class_names``.
        min_pixels: smaller components are not counted.
        num_classes: K, predictions are in ``[0, K)``.
        class_names: the name of each class id (the Cityscapes train-id names by default).

    Example:
        objects = ObjectScore()
        objects.update(logits.argmax(1), masks)
        objects.summary()["object_accuracy"]
    """

    def __init__(
        self,
        classes: Sequence[str] = BIG_VEHICLES,
        min_pixels: int = MIN_PIXELS,
        num_classes: int = NUM_CLASSES,
        class_names: Sequence[str] = CLASS_NAMES,
    ) -> None:
        unknown = [name for name in classes if name not in class_names]
        if unknown:
            raise ValueError(f"unknown class {unknown[0]!r}; classes: {', '.join(class_names)}")
        if min_pixels < 1:
            raise ValueError(f"min_pixels must be >= 1, got {min_pixels}")
        self.classes = tuple(classes)
        self.ids = [list(class_names).index(name) for name in self.classes]
        self.min_pixels = int(min_pixels)
        self.num_classes = int(num_classes)
        self.right = [0] * len(self.classes)
        self.total = [0] * len(self.classes)

    def update(self, preds: torch.Tensor, masks: torch.Tensor) -> ObjectScore:
        """Count the objects of one batch.

        Args:
            preds: predicted class ids in ``[0, K)``.
            masks: ground-truth class ids (any other value, e.g. 255, is simply no object).

        Shape:
            preds: [B, H, W] and masks: [B, H, W]

        Raises:
            ValueError: the shapes differ, or a prediction is outside ``[0, K)``.
        """
        if preds.shape != masks.shape:
            raise ValueError(
                f"preds and masks must have the same shape, got {tuple(preds.shape)} "
                f"and {tuple(masks.shape)}"
            )
        masks = masks.to(device=preds.device, dtype=torch.int64)
        preds = preds.to(torch.int64)
        wanted = torch.tensor(self.ids, device=masks.device)
        present = torch.isin(masks, wanted).flatten(1).any(1)  # only images with an object
        if not present.any():
            return self
        masks, preds = masks[present], preds[present]
        components = label_components(masks, self.ids)
        inside = components >= 0
        component, predicted = components[inside], preds[inside]
        k = self.num_classes
        if predicted.min() < 0 or predicted.max() >= k:
            raise ValueError(f"predictions outside [0, {k}); pass class ids, not logits")
        count = int(component.max()) + 1
        votes = torch.bincount(component * k + predicted, minlength=count * k).view(count, k)
        own = torch.zeros(count, dtype=torch.int64, device=masks.device)
        own.scatter_(0, component, masks[inside])  # the class of each component
        mine = votes.gather(1, own[:, None])[:, 0]
        others = votes.scatter(1, own[:, None], -1).max(1).values
        counted = votes.sum(1) >= self.min_pixels
        right = counted & (mine > others)
        for i, class_id in enumerate(self.ids):
            self.right[i] += int((right & (own == class_id)).sum())
            self.total[i] += int((counted & (own == class_id)).sum())
        return self

    def summary(self) -> dict[str, Any]:
        """The scores as a JSON-ready dict.

        Returns:
            ``{"object_accuracy": right / total over all classes, "per_class": {name: right /
            total}, "counts": {name: [right, total]}}``; a share is None where no object was
            counted.
        """
        total = sum(self.total)
        return {
            "object_accuracy": sum(self.right) / total if total else None,
            "per_class": {
                name: r / t if t else None
                for name, r, t in zip(self.classes, self.right, self.total, strict=True)
            },
            "counts": {
                name: [r, t]
                for name, r, t in zip(self.classes, self.right, self.total, strict=True)
            },
        }

    def __repr__(self) -> str:
        return f"ObjectScore(classes={self.classes}, right={sum(self.right)}/{sum(self.total)})"


__all__ = ["BIG_VEHICLES", "MIN_PIXELS", "ObjectScore", "label_components"]
