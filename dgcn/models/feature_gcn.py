"""Feature-space graph convolution, GCN_f (paper Sec. 3.3, Eq. 6-8).

The paper's section, equation and figure numbers are unverified here (only its abstract was
available to this project): check arXiv 1909.06121. The equations and letters are those of the
paper as summarised, ``docs/reference/paper_summary.md``, and of the book's notation card,
``docs/reference/notation.md``.

Derived in notebooks/03_feature_gcn. Two classes:

* :class:`FeatureGCN`: the paper's equations. The pixels' features are projected onto
  ``D2 = D/4`` graph nodes with the node assignment ``H_F = phi(X)``,
  ``V_F = H_F^T theta(X) = phi(X)^T theta(X)`` (``D2 x D1`` with ``D1 = D/2`` features per
  node), one graph convolution ``M_F = (I - A_F) V_F W_F`` with a learned, unconstrained
  ``A_F`` and ``W_F``, then the nodes are reprojected to the pixels, ``X~_F = Phi(H_F M_F)``.
* :class:`OfficialFeatureGCN`: the authors' released branch (the feature half of their
  ``DualGCN``), with BN after every projection, ``(I + A)`` and a residual ReLU.

Letters as in the summary: ``phi`` (``D -> D/4``, our ``to_nodes``) is the node assignment,
``theta`` (``D -> D/2``, our ``to_features``) the features the nodes gather. The authors' code
swaps the two names: its ``theta`` is the ``D/4`` assignment, its ``phi`` the ``D/2`` features
(``docs/reference/official_dgcnet.md``); both classes use the same attribute names.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureGCN(nn.Module):
    """The paper's feature-space GCN; returns the term X~_F (same shape as x).

    ``phi`` (pixels -> node assignment ``H_F``) is ``to_nodes``, ``theta`` (the features the
    nodes gather) is ``to_features``, ``A_F`` is ``adjacency`` and ``W_F`` is ``state_update``
    (both stored as kernel-1 Conv1d weights: ``adjacency.weight[:, :, 0] = A_F``,
    ``state_update.weight[:, :, 0] = W_F^T``), ``Phi`` is ``reproject`` (1x1 conv + BatchNorm,
    as GloRe's and the authors' ``conv3``/``bn3``: ``V_F`` sums over all N pixels without
    normalisation; in training mode the BN divides that growth out with the batch statistics,
    in eval mode its running statistics are those of the training crops, so evaluate at the
    training size, e.g. by sliding window). No BN or ReLU inside the graph convolution.

    Args:
        channels: D, input and output channels (a multiple of 4).
        zero_init: start the reprojection's BN scale at zero so the block begins as ``X~_F = 0``.

    Shape:
        x: [B, D, H, W] -> [B, D, H, W]
    """

    def __init__(self, channels: int, zero_init: bool = True) -> None:
        super().__init__()
        if channels % 4:
            raise ValueError(f"channels must be a multiple of 4, got {channels}")
        nodes, features = channels // 4, channels // 2
        self.to_nodes = nn.Conv2d(channels, nodes, 1, bias=False)  # phi: H_F
        self.to_features = nn.Conv2d(channels, features, 1, bias=False)  # theta
        self.adjacency = nn.Conv1d(nodes, nodes, 1, bias=False)  # A_F
        self.state_update = nn.Conv1d(features, features, 1, bias=False)  # W_F (as W_F^T)
        self.reproject = nn.Sequential(  # Phi
            nn.Conv2d(features, channels, 1, bias=False), nn.BatchNorm2d(channels)
        )
        if zero_init:
            nn.init.zeros_(self.reproject[1].weight)

    def nodes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """H_F = phi(X) and V_F = H_F^T theta(X) = phi(X)^T theta(X).

        Shape:
            x: [B, D, H, W] -> H_F: [B, D2, N], V_F: [B, D2, D1]
        """
        h = self.to_nodes(x).flatten(2)
        t = self.to_features(x).flatten(2)
        return h, torch.bmm(h, t.transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        h, v = self.nodes(x)
        m = v - self.adjacency(v)  # (I - A_F) V_F: one graph convolution over the nodes
        m = self.state_update(m.transpose(1, 2))  # (M_F)^T = W_F^T ((I - A_F) V_F)^T: [B, D1, D2]
        # Phi's 1x1 conv W on Y = (H_F M_F)^T = M h, computed as (W M) h: the same numbers
        # without forming Y ([B, D1, N]) and with 0.25 instead of 0.625 N D^2 multiply-adds
        return self.reproject[1](reassociated_conv(self.reproject[0], m, h, height, width))


class OfficialFeatureGCN(nn.Module):
    """The authors' feature-space branch (the ``phi``/``theta``/``conv_adj`` half of ``DualGCN``).

    In the summary's letters, with a BN after each step: ``to_nodes`` (their ``theta`` +
    ``bn_theta``) gives the node assignment ``H_F = BN(phi(X))`` (``N x D2``), ``to_features``
    (their ``phi`` + ``bn_phi``) the features ``BN(theta(X))`` (``N x D1``);
    ``V_F = H_F^T BN(theta(X))`` (``D2 x D1``, held transposed as their ``z``);
    ``V_F <- BN(A V_F) + V_F`` over the nodes (``adjacency``); ``M_F = BN(V_F W_F)`` over the
    features (``state_update``); output ``ReLU(x + reproject(H_F M_F))``. No 1/N scaling, as
    in the released code.

    Args:
        channels: D, input and output channels (a multiple of 4; the released code's C).

    Shape:
        x: [B, D, H, W] -> [B, D, H, W]
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        nodes, features = channels // 4, channels // 2
        self.to_features = nn.Sequential(
            nn.Conv2d(channels, features, 1, bias=False), nn.BatchNorm2d(features)
        )
        self.to_nodes = nn.Sequential(
            nn.Conv2d(channels, nodes, 1, bias=False), nn.BatchNorm2d(nodes)
        )
        self.adjacency = nn.Sequential(
            nn.Conv1d(nodes, nodes, 1, bias=False), nn.BatchNorm1d(nodes)
        )
        self.state_update = nn.Sequential(
            nn.Conv1d(features, features, 1, bias=False), nn.BatchNorm1d(features)
        )
        self.reproject = nn.Sequential(
            nn.Conv2d(features, channels, 1, bias=False), nn.BatchNorm2d(channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        f = self.to_features(x).flatten(2)  # BN(theta(X))^T: [B, D1, N]
        proj = self.to_nodes(x).flatten(2)  # H_F^T = BN(phi(X))^T: [B, D2, N]
        z = torch.bmm(f, proj.transpose(1, 2))  # V_F^T: [B, D1, D2]
        z = self.adjacency(z.transpose(1, 2)).transpose(1, 2) + z  # "(I - A) V_F", sign learned
        z = self.state_update(z)
        # reproject's 1x1 conv on (H_F M_F)^T = M_F^T H_F^T, reassociated (reassociated_conv)
        conv, bn = self.reproject
        out = bn(reassociated_conv(conv, z, proj, h, w))
        out = out.add_(x) if out.dtype == x.dtype else out + x
        return torch.relu_(out)


def reassociated_conv(
    conv: nn.Conv2d, m: torch.Tensor, h: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """A bias-free 1x1 ``conv`` applied to ``Y = M h`` (node states times node-to-pixel map),
    computed as ``(W M) h``: equal in exact arithmetic, without forming or saving ``Y`` and
    with ``D D2 N`` (+ ``D D1 D2``, independent of N) instead of ``D1 (D2 + D) N``
    multiply-adds, i.e. 0.25 instead of 0.625 N D^2 with ``D1 = D/2`` and ``D2 = D/4``.

    Shape:
        m: [B, D1, D2], h: [B, D2, N] -> [B, D, height, width] with N = height * width
    """
    wm = torch.matmul(conv.weight.flatten(1), m)  # [B, D, D2]
    return torch.bmm(wm, h).view(m.shape[0], -1, height, width)
