"""Losses: cross-entropy with ignore, the authors' OHEM cross-entropy, the auxiliary sum."""

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


class SegmentationLoss(nn.Module):
    """Main loss (CE or OHEM CE) on ``out`` plus ``aux_weight`` x CE on ``aux`` when present.

    Args:
        kind: ``"ce"`` or ``"ohem"``.
        aux_weight: weight of the auxiliary head's cross-entropy (the authors: 0.4).
        ohem_thresh, ohem_min_kept: OHEM parameters (the authors: 0.7, 100000 per image).
        ignore_index: label to ignore (255).

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
    ) -> None:
        super().__init__()
        if kind not in ("ce", "ohem"):
            raise ValueError(f"loss must be 'ce' or 'ohem', got {kind!r}")
        self.kind, self.aux_weight = kind, aux_weight
        self.thresh, self.min_kept, self.ignore_index = ohem_thresh, ohem_min_kept, ignore_index

    def main_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """CE, or CE over the pixels OHEM keeps (mean over kept pixels)."""
        if self.kind == "ohem":
            keep = ohem_mask(logits, target, self.thresh, self.min_kept, self.ignore_index)
            target = torch.where(keep, target, torch.full_like(target, self.ignore_index))
        return F.cross_entropy(logits.float(), target, ignore_index=self.ignore_index)

    def forward(self, outputs: dict[str, torch.Tensor], target: torch.Tensor):
        main = self.main_loss(outputs["out"], target)
        parts = {"loss_main": main.detach()}
        total = main
        if "aux" in outputs and self.aux_weight > 0:
            aux = F.cross_entropy(outputs["aux"].float(), target, ignore_index=self.ignore_index)
            total = total + self.aux_weight * aux
            parts["loss_aux"] = aux.detach()
        parts["loss"] = total.detach()
        return total, parts
