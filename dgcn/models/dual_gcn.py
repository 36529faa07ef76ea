"""The DualGCN block and the DualGCN segmentation head (paper Sec. 3.4, Fig. 2).

The paper's section, equation and figure numbers are unverified here (only its abstract was
available to this project): check arXiv 1909.06121.

Derived in notebooks/04_dgcnet_model.
"""

from __future__ import annotations

import torch
from torch import nn

from dgcn.model_spec import CONTEXTS, GRAPHS
from dgcn.models.common import VARIANTS, ConcatConv, conv_bn_relu
from dgcn.models.context import GlobalPoolingContext, NonLocalContext, PyramidPoolingContext
from dgcn.models.coordinate_gcn import CoordinateGCN, OfficialCoordinateGCN
from dgcn.models.feature_gcn import FeatureGCN, OfficialFeatureGCN

#: the modules of :mod:`dgcn.models.context`, by the name a head's ``graphs`` gives them (the
#: names of :data:`dgcn.model_spec.CONTEXTS` that are neither graphs nor "none")
OTHER_CONTEXTS = {
    "global-pool": GlobalPoolingContext,
    "ppm": PyramidPoolingContext,
    "non-local": NonLocalContext,
}
__all__ = ["CONTEXTS", "GRAPHS", "OTHER_CONTEXTS", "context_module"]


def context_module(
    channels: int,
    context: str,
    variant: str = "paper",
    downsample: int = 8,
    pooling: str = "avg",
    zero_init: bool = True,
) -> nn.Module | None:
    """The module a head puts on its feature: a :class:`DualGCN` (``context`` one of
    :data:`GRAPHS`), None for ``"none"`` (the head without graphs: the ablation's baseline of
    equal capacity apart from the graphs), or a module of :mod:`dgcn.models.context`:
    :class:`~dgcn.models.context.GlobalPoolingContext` (``"global-pool"``),
    :class:`~dgcn.models.context.PyramidPoolingContext` (``"ppm"``) or
    :class:`~dgcn.models.context.NonLocalContext` (``"non-local"``); ``downsample`` and
    ``pooling`` are the graphs' only.

    Raises:
        ValueError: ``context`` is not one of :data:`CONTEXTS`.
    """
    if context == "none":
        return None
    if context in OTHER_CONTEXTS:
        return OTHER_CONTEXTS[context](channels, variant, zero_init)
    if context not in GRAPHS:
        raise ValueError(f"graphs must be one of {CONTEXTS}, got {context!r}")
    return DualGCN(channels, variant, context, downsample, pooling, zero_init)


class DualGCN(nn.Module):
    """The dual graph: coordinate-space and feature-space GCNs side by side.

    * ``variant="paper"``: ``X + X~_S + X~_F`` (paper Eq. 9); with ``graphs="coordinate"`` or
      ``"feature"`` only that term is added (the paper's ablation rows).
    * ``variant="official"``: the authors' ``DualGCN`` block: coordinate branch
      ``x * up(G) + x``, feature branch ``ReLU(x + Y)``, fused by ``fuse`` (their ``final``:
      1x1 conv 2C -> C + BN) on the concatenation. With one graph only, that branch's output
      is returned (not in the released code, which has no ablation).

    Args:
        channels: D, input and output channels (a multiple of 4).
        variant: ``"paper"`` or ``"official"``.
        graphs: ``"both"``, ``"coordinate"`` or ``"feature"``.
        downsample: d of the coordinate graph.
        pooling: the paper variant's downsampling, ``"avg"`` or ``"conv"`` (the official variant
            always uses depthwise convs + BN).
        zero_init: the paper variant's reprojection BN scales start at 0 (each block starts
            as the identity); False keeps BN's default 1.

    Shape:
        x: [B, D, H, W] -> [B, D, H, W]
    """

    def __init__(
        self,
        channels: int,
        variant: str = "paper",
        graphs: str = "both",
        downsample: int = 8,
        pooling: str = "avg",
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if graphs not in GRAPHS:
            raise ValueError(f"graphs must be one of {GRAPHS}, got {graphs!r}")
        self.variant, self.graphs = variant, graphs
        official = variant == "official"
        self.coordinate: nn.Module | None = None
        self.feature: nn.Module | None = None
        if graphs in ("both", "coordinate"):
            self.coordinate = (
                OfficialCoordinateGCN(channels, downsample)
                if official
                else CoordinateGCN(channels, downsample, pooling, zero_init)
            )
        if graphs in ("both", "feature"):
            self.feature = (
                OfficialFeatureGCN(channels) if official else FeatureGCN(channels, zero_init)
            )
        self.fuse = (
            ConcatConv(*conv_bn_relu(2 * channels, channels, 1, relu=False))
            if (official and graphs == "both")
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant == "paper":
            out = x
            if self.coordinate is not None:
                out = out + self.coordinate(x)
            if self.feature is not None:
                out = out + self.feature(x)
            return out
        if self.fuse is None:
            branch = self.coordinate if self.coordinate is not None else self.feature
            return branch(x)
        return self.fuse(self.coordinate(x), self.feature(x))


class DualGCNHead(nn.Module):
    """The authors' segmentation head around a :class:`DualGCN` (their ``DualGCNHead``).

    ``reduce`` (their ``conva``: 3x3 conv in -> C, BN, ReLU), ``graph`` (their ``dualgcn``),
    ``project`` (their ``convb``: 3x3 conv C -> C, BN, ReLU), concatenation with the head's input,
    ``classifier`` (their ``bottleneck``: 3x3 conv in+C -> C, BN, ReLU, 1x1 conv -> classes).
    With ``graphs="none"`` the graph is the identity (the ablation's baseline: the same head
    without graphs); with ``graphs="global-pool"``, ``"ppm"`` or ``"non-local"`` it is that
    module of :mod:`dgcn.models.context` in its official form.

    Args:
        in_channels: channels of the backbone output (2048 for ResNet-50/101).
        channels: C, the reduced width the graph works on (512 in the authors' code).
        num_classes: number of output classes.
        variant, graphs, downsample, pooling: passed to :func:`context_module`.

    Shape:
        x: [B, in_channels, h, w] -> logits [B, num_classes, h, w] (stride of the backbone)
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        num_classes: int,
        variant: str = "official",
        graphs: str = "both",
        downsample: int = 8,
        pooling: str = "avg",
    ) -> None:
        super().__init__()
        self.reduce = conv_bn_relu(in_channels, channels)
        self.graph = context_module(channels, graphs, variant, downsample, pooling) or nn.Identity()
        self.project = conv_bn_relu(channels, channels)
        self.classifier = ConcatConv(
            *conv_bn_relu(in_channels + channels, channels),
            nn.Conv2d(channels, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.graph(self.reduce(x)))
        return self.classifier(x, y)  # = classifier(cat([x, y])), without the concatenation
