"""Losses: cross-entropy with ignore, the authors' OHEM cross-entropy, the auxiliary sum, each
reduced per image (the authors' one image per process) or per pixel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dgcn.datasets.labels import IGNORE_INDEX


def ohem_mask(
    logits: torch.Tensor,
    target: torch.Tensor,
    thresh: float = 0.7,
    min_kept: int = 100_000,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Which pixels OHEM keeps, per image, as the authors define it.

    For each image, with ``p`` the softmax probability of the ground-truth class at each valid
    pixel: the threshold is ``max(thresh, the min_kept-th smallest p)``; pixels with
    ``p <= threshold`` are kept. With ``min_kept`` or fewer valid pixels, all are kept.

    Shape:
        logits: [B, K, H, W], target: [B, H, W] -> bool [B, H, W]
    """
    with torch.no_grad():
        valid = target != ignore_index
        safe = torch.where(valid, target, torch.zeros_like(target))
        prob = torch.softmax(logits.float(), dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
        keep = valid.clone()
        for b in range(target.shape[0]):
            p = prob[b][valid[b]]
            if p.numel() <= min_kept:
                continue
            threshold = thresh
            if min_kept > 0:
                kth = torch.kthvalue(p, min_kept).values
                threshold = max(thresh, float(kth))
            keep[b] = valid[b] & (prob[b] <= threshold)
    return keep


#: how a batch's pixel losses become one loss (see :class:`SegmentationLoss`)
REDUCTIONS = ("image", "pixel")


def per_image_mean(pixel_loss: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """Each image's mean loss over its counted pixels, then the mean over the images; an image
    with no counted pixel contributes 0 (and still counts as one of the B images, so that every
    image of a global batch weighs the same under gradient accumulation).

    Shape:
        pixel_loss: [B, H, W] float (0 where not counted), counted: [B, H, W] bool -> scalar
    """
    sums = pixel_loss.flatten(1).sum(1)
    counts = counted.flatten(1).sum(1).clamp(min=1)
    return (sums / counts).mean()


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, reduction: str
) -> torch.Tensor:
    """Cross-entropy (in float32) over the pixels whose label is not ``ignore_index``:
    ``"image"``: :func:`per_image_mean`; ``"pixel"``: the mean over the batch's labelled pixels
    (``F.cross_entropy``'s own mean, bit for bit).

    Shape:
        logits: [B, K, H, W], target: [B, H, W] -> scalar
    """
    if reduction == "pixel":  # torch's own mean over the labelled pixels (NaN when none is)
        return F.cross_entropy(logits.float(), target, ignore_index=ignore_index)
    pixel = F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="none")
    return per_image_mean(pixel, target != ignore_index)


class SegmentationLoss(nn.Module):
    """Main loss (CE or OHEM CE) on ``out`` plus ``aux_weight`` x CE on ``aux`` when present.

    **Per image, as the authors' run.** The authors train on 8 GPUs with one image each; every
    process computes its image's loss (OHEM CE: the mean over the pixels OHEM keeps in that
    image; the auxiliary CE: the mean over its labelled pixels) and DDP averages the gradients,
    so the step follows the mean over the 8 images of per-image losses. With
    ``reduction="image"`` (the default) a batch of B images in one process gives that same
    mean, so one process with B images equals B processes with one image each, and B images x
    A accumulation steps x N processes average to the mean over the whole global batch (the
    training loop divides each micro-batch's loss by A; DDP averages over N). Plain CE (the
    paper's preset) is reduced the same way: it is what CE under the authors' DDP setting
    computes. ``reduction="pixel"`` is the mean over every kept pixel of the batch, which
    weighs an image by its number of kept pixels (OHEM keeps from 100,000 to all of an image's
    pixels); the head-only MiniCity trainer (``dgcn.training.frozen``) keeps it, the reduction
    its committed results were made with.

    Args:
        kind: ``"ce"`` or ``"ohem"``.
        aux_weight: weight of the auxiliary head's cross-entropy (the authors: 0.4).
        ohem_thresh, ohem_min_kept: OHEM parameters (the authors: 0.7, 100000 per image).
        ignore_index: label to ignore (255).
        reduction: ``"image"`` or ``"pixel"``, see above.

    Shape:
        outputs: {"out": [B, K, H, W], "aux": [B, K, H, W] (optional)}, target: [B, H, W]
        -> (total loss scalar, {"loss": float tensor, "loss_main": ..., "loss_aux": ...})
    """

    def __init__(
        self,
        kind: str = "ohem",
        aux_weight: float = 0.4,
        ohem_thresh: float = 0.7,
        ohem_min_kept: int = 100_000,
        ignore_index: int = IGNORE_INDEX,
        reduction: str = "image",
    ) -> None:
        super().__init__()
        if kind not in ("ce", "ohem"):
            raise ValueError(f"loss must be 'ce' or 'ohem', got {kind!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be 'image' or 'pixel', got {reduction!r}")
        self.kind, self.aux_weight, self.reduction = kind, aux_weight, reduction
        self.thresh, self.min_kept, self.ignore_index = ohem_thresh, ohem_min_kept, ignore_index

    def main_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """CE, or CE over the pixels OHEM keeps in each image, reduced by ``reduction``."""
        if self.kind == "ohem":
            keep = ohem_mask(logits, target, self.thresh, self.min_kept, self.ignore_index)
            target = torch.where(keep, target, torch.full_like(target, self.ignore_index))
        return cross_entropy(logits, target, self.ignore_index, self.reduction)

    def forward(self, outputs: dict[str, torch.Tensor], target: torch.Tensor):
        main = self.main_loss(outputs["out"], target)
        parts = {"loss_main": main.detach()}
        total = main
        if "aux" in outputs and self.aux_weight > 0:
            aux = cross_entropy(outputs["aux"], target, self.ignore_index, self.reduction)
            total = total + self.aux_weight * aux
            parts["loss_aux"] = aux.detach()
        parts["loss"] = total.detach()
        return total, parts
