"""The other context modules a head may put where the graphs go: the controls and the rivals.

Three classes, each C -> C and in the two forms of the graphs (:data:`VARIANTS`), so that a
row of the ablation changes only the module:

* :class:`GlobalPoolingContext` (``"global-pool"``): one image-level vector for every pixel
  (ParseNet's global pooling, PSPNet's 1x1 bin): "is it just global context?"
* :class:`PyramidPoolingContext` (``"ppm"``): PSPNet's pyramid pooling module, the bins
  1, 2, 3 and 6: regional context at four scales, still the same for all pixels of a bin.
* :class:`NonLocalContext` (``"non-local"``): the embedded-Gaussian non-local block of
  Wang et al. 2018, a softmax affinity between every pair of pixels: relational context like
  the graphs', at the cost of an ``N x N`` matrix (``N = h w``), the "affinity map at each
  position" that the DGCNet paper finds too memory-hungry at Cityscapes resolution
  (``benchmarks/context_cost.py`` measures it).

How each is built here is this project's choice, described in each class: the DGCNet paper
compares against such modules in its text but gives no code for them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dgcn.models.common import VARIANTS, ConcatConv, conv_bn_relu

#: the bins of :class:`PyramidPoolingContext`, PSPNet's
PYRAMID_BINS = (1, 2, 3, 6)


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


class GlobalPoolingContext(nn.Module):
    """Image-level context, the control row of the ablation (ParseNet's global pooling, PSPNet's
    1x1 bin), shaped like the graphs it stands in for:

    * ``variant="paper"``: ``X + BN(W_r W_p GAP(X))`` broadcast to every pixel: a residual
      term like the paper's ``X~_S`` and ``X~_F`` (Eq. 9), through the same D -> D/2 -> D
      projections and BN, with the pooled feature in place of the graph;
    * ``variant="official"``: ``fuse([x, up(g)])`` with ``g = ReLU(W_p GAP(x))``, ``fuse`` a
      1x1 conv 2C -> C + BN on the concatenation, the shape of the official DualGCN's fuse.

    Every pixel receives the same context vector, so this module can answer "what is in the
    image" but not "what is this object related to": what the graphs add beyond it is what
    per-node, relational context buys.

    Args:
        channels: C, input and output channels (even).
        variant: ``"paper"`` or ``"official"``.
        zero_init: the paper form's BN scale starts at 0, as the paper graphs' do. In training
            its BN normalises over the images of a batch: with one image it passes only its
            shift (as any BN on image-level features; use batches or SyncBN).

    Shape:
        x: [B, C, H, W] -> [B, C, H, W]
    """

    def __init__(self, channels: int, variant: str = "paper", zero_init: bool = True) -> None:
        super().__init__()
        _check_variant(variant)
        self.variant = variant
        if variant == "paper":
            self.project = nn.Conv2d(channels, channels // 2, 1, bias=False)
            self.reproject = nn.Sequential(
                nn.Conv2d(channels // 2, channels, 1, bias=False), nn.BatchNorm2d(channels)
            )
            if zero_init:
                nn.init.zeros_(self.reproject[1].weight)
        else:
            self.project = nn.Conv2d(channels, channels, 1)
            self.fuse = ConcatConv(*conv_bn_relu(2 * channels, channels, 1, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean((2, 3), keepdim=True)
        if self.variant == "paper":
            conv, bn = self.reproject
            # BN on the broadcast map: the statistics of the pooled vectors, any batch size
            return x + bn(conv(self.project(pooled)).expand_as(x))
        g = torch.relu(self.project(pooled))
        return self.fuse(x, g.expand_as(x))


class PyramidPoolingContext(nn.Module):
    """PSPNet's pyramid pooling module (Zhao et al. 2017) at the head's width, C -> C.

    Each bin ``b`` of :data:`PYRAMID_BINS` averages the feature over a ``b x b`` grid
    (adaptive average pooling), reduces it by a 1x1 conv C -> C/4 + BN + ReLU (``stages[i]``)
    and upsamples it back bilinearly (``align_corners=False``); the four maps ``P`` (C
    channels together) are then

    * ``variant="paper"``: added as a residual term ``X + BN(W_r P)`` (``reproject``: 1x1 conv
      C -> C + BN), like the paper's ``X~_S`` and ``X~_F`` (Eq. 9), BN scale 0 at the start
      with ``zero_init``;
    * ``variant="official"``: fused with the input, ``fuse([x, P])`` (1x1 conv 2C -> C + BN,
      the official DualGCN's fuse); PSPNet itself concatenates too, before a 3x3 conv.

    Both convs on a concatenation are :class:`~dgcn.models.common.ConcatConv`: ``P`` is never
    formed as one tensor. The 1x1 bin is upsampled before its BN (a broadcast, so the same
    numbers in eval mode and the same batch statistics in training), so that one image per
    batch trains (BN on a [1, C/4, 1, 1] map would refuse); as in
    :class:`GlobalPoolingContext`, with one image that bin passes only its BN shift. Context
    differs between regions of the image but not between the pixels of one region: PSPNet's
    answer to "where in the image", without relations between pixels.

    Args:
        channels: C, input and output channels (a multiple of 4).
        variant: ``"paper"`` or ``"official"``.
        zero_init: the paper form's reprojection BN scale starts at 0 (identity at the start).

    Shape:
        x: [B, C, H, W] -> [B, C, H, W]
    """

    def __init__(self, channels: int, variant: str = "paper", zero_init: bool = True) -> None:
        super().__init__()
        _check_variant(variant)
        if channels % 4:
            raise ValueError(
                f"the pyramid pooling module needs channels divisible by its 4 bins, got "
                f"{channels}; use a multiple of 4"
            )
        self.variant, self.bins = variant, PYRAMID_BINS
        inner = channels // len(self.bins)
        self.stages = nn.ModuleList(conv_bn_relu(channels, inner, 1) for _ in self.bins)
        if variant == "paper":
            self.reproject = ConcatConv(*conv_bn_relu(channels, channels, 1, relu=False))
            if zero_init:
                nn.init.zeros_(self.reproject[1].weight)
        else:
            self.fuse = ConcatConv(*conv_bn_relu(2 * channels, channels, 1, relu=False))

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The upsampled bins ``P``, one map of C/4 channels per bin.

        Shape:
            x: [B, C, H, W] -> [B, C/4, H, W] each
        """
        size = x.shape[-2:]
        maps = []
        for bins, (conv, bn, relu) in zip(self.bins, self.stages, strict=True):
            y = conv(F.adaptive_avg_pool2d(x, bins))
            if bins == 1:  # broadcast before BN: its statistics are the pooled vectors'
                maps.append(relu(bn(y.expand(-1, -1, *size))))
            else:
                y = relu(bn(y))
                maps.append(F.interpolate(y, size=size, mode="bilinear", align_corners=False))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.pyramid(x)
        if self.variant == "paper":
            return x + self.reproject(*maps)
        return self.fuse(x, *maps)


class NonLocalContext(nn.Module):
    """The embedded-Gaussian non-local block (Wang et al. 2018) over all pixels of the feature.

    ``theta``, ``phi`` and ``g`` are 1x1 convs C -> C/2 (with bias, as in the non-local
    paper); with ``N = H W`` pixels, the affinity ``A = softmax(theta(X)^T phi(X))`` (``N x N``,
    softmax over its second index, no scaling) weighs every pixel for every pixel, and
    ``Y = g(X) A^T`` (C/2 x N) is the context of each pixel. No downsampling: ``A`` is formed at
    the feature's stride, so its size grows as ``N^2`` (4.3 GB in fp32 for a 1024 x 2048 image
    at stride 8, before backward keeps it): the quadratic memory of this explicit product is
    what ``benchmarks/context_cost.py`` shows. Fused attention kernels that never store ``A``
    (flash attention) would need O(N) memory at the same O(N^2) time; they are not used here.

    * ``variant="paper"``: ``X + BN(W_z Y)`` (``out``: 1x1 conv C/2 -> C + BN), the non-local
      paper's residual, BN scale 0 at the start with ``zero_init`` (their initialisation, and
      that of the paper graphs' ``X~`` terms);
    * ``variant="official"``: ``fuse([x, Y])``, a 1x1 conv (C + C/2) -> C + BN on the
      concatenation, the shape of the official DualGCN's fuse. The non-local ``W_z`` is the
      ``Y`` half of ``fuse``'s weight: a separate C/2 -> C conv right before ``fuse``, with
      nothing in between, would compute the same linear map with C^2 more weights.

    Args:
        channels: C, input and output channels (even).
        variant: ``"paper"`` or ``"official"``.
        zero_init: the paper form's BN scale starts at 0 (identity at the start).

    Shape:
        x: [B, C, H, W] -> [B, C, H, W]
    """

    def __init__(self, channels: int, variant: str = "paper", zero_init: bool = True) -> None:
        super().__init__()
        _check_variant(variant)
        if channels % 2:
            raise ValueError(
                f"the non-local block needs an even number of channels (C/2 embeddings), got "
                f"{channels}; use an even width"
            )
        self.variant = variant
        inner = channels // 2
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        if variant == "paper":
            self.out = nn.Sequential(
                nn.Conv2d(inner, channels, 1, bias=False), nn.BatchNorm2d(channels)
            )
            if zero_init:
                nn.init.zeros_(self.out[1].weight)
        else:
            self.fuse = ConcatConv(*conv_bn_relu(channels + inner, channels, 1, relu=False))

    def affinity(self, x: torch.Tensor) -> torch.Tensor:
        """``A = softmax(theta(X)^T phi(X))``, row i the weights pixel i gives every pixel.

        Shape:
            x: [B, C, H, W] -> [B, N, N] with N = H W
        """
        query = self.theta(x).flatten(2)  # [B, C/2, N]
        key = self.phi(x).flatten(2)
        return torch.softmax(torch.bmm(query.transpose(1, 2), key), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        affinity = self.affinity(x)
        value = self.g(x).flatten(2).transpose(1, 2)  # [B, N, C/2]
        # Y^T = A g^T rather than Y = g A^T: the gradient of A then comes out contiguous and
        # the softmax backward needs no N x N copy of it (peak of forward+backward on a CPU
        # about 3.4 instead of 4.3 times the N^2 floats of A)
        y = torch.bmm(affinity, value).transpose(1, 2).reshape(x.shape[0], -1, *x.shape[-2:])
        if self.variant == "paper":
            return x + self.out(y)
        return self.fuse(x, y)
