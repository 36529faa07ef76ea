"""Coordinate-space graph convolution, GCN_s (paper Sec. 3.2, Eq. 3-5).

The equations and their letters are the paper's, as summarised
(``docs/reference/paper_summary.md``; the symbols and sizes: ``docs/reference/notation.md``).
The section, equation and figure numbers cited here are unverified (the paper's full text was
not available to this project): check arXiv 1909.06121.

Derived in notebooks/02_coordinate_gcn; its image-size dependence in notebooks/09_image_size.
Two classes:

* :class:`CoordinateGCN`: the paper's equations. The feature map ``X`` (``N = HW`` pixels,
  ``D`` channels) is downsampled to ``V_S = H_S X`` with ``N' = ceil(H/d) ceil(W/d)`` nodes, a
  graph is built over the nodes, ``A_S = delta(V_S) Psi(V_S)^T``, and one graph convolution
  ``M_S = A_S nu(V_S) W_S`` is applied; the nodes are then upsampled and reprojected to ``D``.
* :class:`OfficialCoordinateGCN`: the authors' released branch (``local`` + ``SpatialGCN`` in
  their code, see ``docs/reference/official_dgcnet.md``), with a softmax over the
  channel-by-channel product and a multiplicative gate.
"""

from __future__ import annotations

import torch
from torch import nn

from dgcn.model_spec import POOLINGS
from dgcn.models.common import check_power_of_two, resize


class CoordinateGCN(nn.Module):
    """The paper's coordinate-space GCN; returns the term X~_S (same shape as x).

    ``delta``, ``Psi`` and ``nu`` of the paper are the 1x1 convs ``query``, ``key`` and
    ``value`` (``D -> D/2``); ``W_S`` is ``state_update`` and the reprojection back to ``D`` is
    ``reproject`` (1x1 conv + BatchNorm). A graph-convolution layer is ``sigma(A X W)``; here
    ``M_S = A_S nu(V_S) W_S`` has no ``sigma``: the paper, as summarised, applies no ReLU and
    no BN inside the coordinate-space graph convolution, and ``A_S`` is not normalised. The
    products grow with the number of nodes; the BN after the reprojection (as in the authors'
    ``out`` and in GloRe) divides that growth out in training mode only: in eval mode its
    running statistics are those of the training crops, so evaluate at the training size.

    The product is evaluated as ``delta(V_S) (Psi(V_S)^T nu(V_S))``: a ``D/2 x D/2`` matrix first,
    so the cost is ``O(N' D^2)`` and the ``N' x N'`` adjacency is never formed.

    Args:
        channels: D, the input and output channels (even).
        downsample: d, the downsampling rate (a power of two); ``H, W`` need not be multiples.
        pooling: ``"avg"``: parameter-free d x d average pooling (partial windows at the border
            average what they cover); ``"conv"``: log2(d) depthwise 3x3 stride-2 convs.
        zero_init: start the reprojection's BN scale at zero so the block begins as
            ``X~_S = 0`` and the pretrained features pass unchanged (the non-local-block
            practice; the paper is silent on initialisation).

    Shape:
        x: [B, D, H, W] -> [B, D, H, W]
    """

    def __init__(
        self, channels: int, downsample: int = 8, pooling: str = "avg", zero_init: bool = True
    ) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"channels must be even, got {channels}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        steps = check_power_of_two(downsample)
        inner = channels // 2
        self.channels, self.downsample_rate, self.pooling = channels, downsample, pooling
        if steps == 0:
            self.downsample: nn.Module = nn.Identity()
        elif pooling == "avg":
            self.downsample = nn.AvgPool2d(downsample, downsample, ceil_mode=True)
        else:
            self.downsample = nn.Sequential(
                *[
                    nn.Conv2d(channels, channels, 3, 2, 1, groups=channels, bias=False)
                    for _ in range(steps)
                ]
            )
        self.query = nn.Conv2d(channels, inner, 1)  # delta
        self.key = nn.Conv2d(channels, inner, 1)  # Psi
        self.value = nn.Conv2d(channels, inner, 1)  # nu
        self.state_update = nn.Conv2d(inner, inner, 1, bias=False)  # W_S (its weight is W_S^T)
        self.reproject = nn.Sequential(
            nn.Conv2d(inner, channels, 1, bias=False), nn.BatchNorm2d(channels)
        )
        if zero_init:
            nn.init.zeros_(self.reproject[1].weight)

    def nodes(self, x: torch.Tensor) -> torch.Tensor:
        """V_S = H_S X, the graph's nodes. Shape: [B, D, H, W] -> [B, D, h', w']."""
        return self.downsample(x)

    def adjacency(self, x: torch.Tensor) -> torch.Tensor:
        """A_S = delta(V_S) Psi(V_S)^T formed explicitly, for teaching and tests only.

        Shape:
            x: [B, D, H, W] -> [B, N', N'] with N' = h' w'
        """
        v = self.nodes(x)
        return self.query(v).flatten(2).transpose(1, 2) @ self.key(v).flatten(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.nodes(x)
        b, _, h, w = v.shape
        q = self.query(v).flatten(2)  # [B, D/2, N']
        k = self.key(v).flatten(2)
        val = self.value(v).flatten(2)
        # A_S nu(V) = delta(V) (Psi(V)^T nu(V)), never formed: O(N')
        context = torch.bmm(k, val.transpose(1, 2))  # Psi^T nu: [B, D/2, D/2]
        m = torch.bmm(context.transpose(1, 2), q)  # (A_S nu(V))^T: [B, D/2, N']
        m = self.state_update(m.view(b, -1, h, w))  # M_S = A_S nu(V_S) W_S
        # reprojected at node resolution, then upsampled: cheaper than the other way round
        # (identical in eval mode, where conv and BN are affine per pixel)
        return resize(self.reproject(m), x.shape[-2:])


class OfficialCoordinateGCN(nn.Module):
    """The authors' coordinate-space branch: ``local`` downsampling + ``SpatialGCN`` + gate.

    V = depthwise-conv downsampling (log2(d) times [3x3 stride-2 depthwise conv, BN]);
    with ``q, k, v`` the 1x1 projections of V (``value`` = ``node_v``, ``key`` = ``node_q``,
    ``query`` = ``node_k`` in the authors' code: ``node_k`` plays the paper's delta),
    ``A = softmax(key value^T)`` over its last axis (``D/2 x D/2``), ``M = query^T A``,
    ``state_update`` = Conv1d + BN1d, ``reproject`` = 1x1 conv + BN, ``G = ReLU(reproject + V)``;
    output ``x * up(G) + x``.

    Args:
        channels: C, input and output channels (even).
        downsample: the downsampling rate, a power of two (the authors use 8).

    Shape:
        x: [B, C, H, W] -> [B, C, H, W]
    """

    def __init__(self, channels: int, downsample: int = 8) -> None:
        super().__init__()
        steps = check_power_of_two(downsample)
        inner = channels // 2
        layers: list[nn.Module] = []
        for _ in range(steps):
            layers += [
                nn.Conv2d(channels, channels, 3, 2, 1, groups=channels, bias=False),
                nn.BatchNorm2d(channels),
            ]
        self.downsample = nn.Sequential(*layers)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, inner, 1)
        self.state_update = nn.Sequential(
            nn.Conv1d(inner, inner, 1, bias=False), nn.BatchNorm1d(inner)
        )
        self.reproject = nn.Sequential(nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.downsample(x)
        b, _, h, w = v.shape
        q = self.query(v).flatten(2)  # [B, C/2, N']
        k = self.key(v).flatten(2)
        val = self.value(v).flatten(2)
        attention = torch.softmax(torch.bmm(k, val.transpose(1, 2)), dim=-1)  # [B, C/2, C/2]
        m = torch.bmm(q.transpose(1, 2), attention).transpose(1, 2)  # [B, C/2, N']
        m = self.state_update(m).view(b, -1, h, w)
        g = torch.relu(self.reproject(m) + v)
        return gate(x, g)


class _Gate(torch.autograd.Function):
    """``x * up(g) + x`` that keeps only ``x`` and the small ``g`` for backward.

    Autograd would save the upsampled ``up(g)``, a tensor as large as ``x``; here it is
    recomputed from ``g`` in backward (a bilinear resize: cheap next to the convolutions).
    The backward is written out with the resize's own adjoint (``upsample_bilinear2d_backward``,
    the op autograd runs for ``up``), so ``torch.compile`` traces it without a graph break:

        d/dx = grad * (up(g) + 1),    d/dg = up^T(grad * x).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, g)
        return torch.addcmul(x, x, resize(g, x.shape[-2:]).to(x.dtype))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, g = ctx.saved_tensors
        grad_x = grad_g = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.addcmul(grad, grad, resize(g, x.shape[-2:]).to(grad.dtype))
        if ctx.needs_input_grad[1]:
            grad_g = _resize_adjoint((grad * x).to(g.dtype), g.shape)
        return grad_x, grad_g


def _resize_adjoint(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The gradient with respect to ``g`` of ``resize(g, grad.shape[-2:])`` for the gradient
    ``grad`` of its output: the transpose of the bilinear resize (align_corners=True).

    Shape:
        grad: [B, C, H, W], shape: (B, C, h, w) -> [B, C, h, w]
    """
    if tuple(grad.shape[-2:]) == tuple(shape[-2:]):  # resize is the identity there
        return grad
    return torch.ops.aten.upsample_bilinear2d_backward(
        grad, list(grad.shape[-2:]), list(shape), True, None, None
    )


def gate(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The authors' coordinate-branch output ``x * up(g) + x``, ``up`` the bilinear resize of
    ``g`` to ``x``'s size, with the memory of ``up(g)`` spared in training (see ``_Gate``).

    Shape:
        x: [B, C, H, W], g: [B, C, h, w] -> [B, C, H, W]
    """
    return _Gate.apply(x, g)
