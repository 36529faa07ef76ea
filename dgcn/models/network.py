"""Whole segmentation networks: backbone + head (+ auxiliary head on layer3)."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.segmentation.fcn import FCNHead

from dgcn.models.common import resize


class AuxHead(nn.Sequential):
    """The auxiliary FCN head on layer3, used only for the training loss (the authors' ``dsn``).

    3x3 conv (with bias) -> BN -> Dropout2d(0.1) -> 1x1 conv (with bias); no ReLU, as released.

    Shape:
        x: [B, in_channels, h, w] -> [B, num_classes, h, w]
    """

    def __init__(self, in_channels: int, channels: int, num_classes: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.Dropout2d(0.1),
            nn.Conv2d(channels, num_classes, 1),
        )


class ContextFCNHead(nn.Module):
    """An optional context module on the backbone feature, then torchvision's ``FCNHead``.

    With ``graph=None`` this is the dilated-FCN baseline (the paper's ablation row 75.2);
    with ``graph=DualGCN(in_channels, "paper")`` it is the paper's DGCNet, where the graph
    works on the backbone feature X itself (D = 2048 for ResNet-101). The module is
    ``head.graph``, as in :class:`~dgcn.models.dual_gcn.DualGCNHead` (checkpoints written
    before the attribute had this name call it ``head.context``;
    :func:`~dgcn.models.weights.upgrade_state_dict` renames their keys).

    The classifier is a departure from the paper as summarised, whose refined maps "go on to a
    dilated convolution that predicts the classes" (``docs/reference/paper_summary.md``): here
    they go to torchvision's ``FCNHead``, an undilated 3x3 convolution C -> C/4 with BN, ReLU
    and dropout 0.1, then a 1x1 convolution to the classes (the summary gives no width or
    dilation for its convolution). The paper variant and the FCN baseline share this
    classifier, so that they differ by the graph module alone.

    Args:
        in_channels: channels of the backbone output.
        num_classes: number of classes.
        graph: a module [B, C, h, w] -> [B, C, h, w] (a graph or another module of
            :func:`~dgcn.models.dual_gcn.context_module`), or None.

    Shape:
        x: [B, in_channels, h, w] -> [B, num_classes, h, w]
    """

    def __init__(self, in_channels: int, num_classes: int, graph: nn.Module | None = None):
        super().__init__()
        self.graph = graph
        self.classifier = FCNHead(in_channels, num_classes)  # 3x3 conv C -> C/4, BN, ReLU, ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.graph is not None:
            x = self.graph(x)
        return self.classifier(x)


class DGCNet(nn.Module):
    """Backbone + head (+ auxiliary head): the authors' ``ResNet`` with ``DualGCNHead``/``dsn``.

    Follows torchvision's segmentation convention: ``forward`` returns ``{"out": logits}``, plus
    ``"aux"`` in training mode when there is an auxiliary head; both are upsampled once,
    bilinearly (``align_corners=True``, as the authors), from the backbone's stride to ``size``:
    the input's size unless another is asked for. The multi-scale test asks for the full image's
    size, so a scaled view is resized once, as in the authors' evaluation, not to its own size
    and then again.

    Args:
        backbone: returns ``{"aux": layer3, "out": layer4}``.
        head: layer4 features -> logits at the backbone's stride.
        aux_head: layer3 features -> logits, or None.

    Shape:
        images: [B, 3, H, W] -> {"out": [B, K, *size], "aux": [B, K, *size]}; size (H, W)
        by default
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, aux_head: nn.Module | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.aux_head = aux_head

    def forward(
        self, images: torch.Tensor, size: tuple[int, int] | None = None
    ) -> dict[str, torch.Tensor]:
        size = images.shape[-2:] if size is None else tuple(size)
        features = self.backbone(images)
        result = {"out": resize(self.head(features["out"]), size)}
        if self.training and self.aux_head is not None:
            result["aux"] = resize(self.aux_head(features["aux"]), size)
        return result
