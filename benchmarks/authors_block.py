"""The replica of the authors' released DualGCN block, shared by the tests and the benchmarks.

Written from the description of their code in ``docs/reference/official_dgcnet.md``, with the same
layers under the same names and the same sequence of operations (reshapes, permutes, ``bmm``,
softmax, in-place ReLU), so that autograd keeps what theirs keeps for backward:

* its state dict has exactly the keys and shapes of the ``head.dualgcn.*`` entries of the
  authors' checkpoint (``tests/data/official_dgcnet_state_dict.tsv``), so their weights load
  into it with ``strict=True``;
* ``tests/test_official.py`` checks that our official-variant block
  (:class:`dgcn.models.DualGCN` with ``"official"``) computes this block's outputs and gradients,
  in float64;
* ``benchmarks/modules.py`` measures both blocks side by side (time, and the memory kept for
  backward: the README's memory comparison), and ``tests/test_benchmarks.py`` checks that
  measurement.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AuthorsSpatialGCN(nn.Module):
    """``gcn_local_attention``: the graph on the downsampled map V (C channels, N' nodes).

    A = softmax(q v) over its last axis (C/2 x C/2), then k A, ``conv_wg`` + ``bn_wg``, and
    ``out`` (conv + BN) added to V, ReLU.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.node_k = nn.Conv2d(c, c // 2, 1)
        self.node_v = nn.Conv2d(c, c // 2, 1)
        self.node_q = nn.Conv2d(c, c // 2, 1)
        self.conv_wg = nn.Conv1d(c // 2, c // 2, 1, bias=False)
        self.bn_wg = nn.BatchNorm1d(c // 2)
        self.out = nn.Sequential(nn.Conv2d(c // 2, c, 1), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.size()
        k = self.node_k(x).view(n, c // 2, -1).permute(0, 2, 1)  # N' x C/2
        q = self.node_q(x).view(n, c // 2, -1)  # C/2 x N'
        v = self.node_v(x).view(n, c // 2, -1).permute(0, 2, 1)  # N' x C/2
        a = F.softmax(torch.bmm(q, v), dim=2)  # C/2 x C/2
        av = torch.bmm(k, a).transpose(1, 2).contiguous()  # C/2 x N'
        av = self.bn_wg(self.conv_wg(av)).view(n, -1, h, w)
        return F.relu_(self.out(av) + x)


class AuthorsDualGCN(nn.Module):
    """The authors' DualGCN block on ``c`` channels (their head uses c = 512).

    Coordinate space: ``local`` (three stride-2 depthwise convs + BN) downsamples x to V, the
    graph of :class:`AuthorsSpatialGCN` runs on V, the result is upsampled (bilinear,
    align_corners=True) to L and the branch returns x * L + x. Feature space: ``phi`` and
    ``theta`` (conv + BN) give the features F (C/2 x N) and the projection B (C/4 x N),
    Z = F B^T, then ``conv_adj`` + ``bn_adj`` over the nodes plus Z, ``conv_wg`` + ``bn_wg``, the
    reprojection Z B, ``conv3`` + ``bn3`` added to x, ReLU. ``final`` (conv + BN) fuses the
    concatenation of both branches.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.phi = nn.Conv2d(c, c // 2, 1, bias=False)
        self.bn_phi = nn.BatchNorm2d(c // 2)
        self.theta = nn.Conv2d(c, c // 4, 1, bias=False)
        self.bn_theta = nn.BatchNorm2d(c // 4)
        self.conv_adj = nn.Conv1d(c // 4, c // 4, 1, bias=False)
        self.bn_adj = nn.BatchNorm1d(c // 4)
        self.conv_wg = nn.Conv1d(c // 2, c // 2, 1, bias=False)
        self.bn_wg = nn.BatchNorm1d(c // 2)
        self.conv3 = nn.Conv2d(c // 2, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)
        layers = []
        for _ in range(3):
            layers += [nn.Conv2d(c, c, 3, 2, 1, groups=c, bias=False), nn.BatchNorm2d(c)]
        self.local = nn.Sequential(*layers)
        self.gcn_local_attention = AuthorsSpatialGCN(c)
        self.final = nn.Sequential(nn.Conv2d(2 * c, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.gcn_local_attention(self.local(x))
        local = F.interpolate(local, size=x.size()[2:], mode="bilinear", align_corners=True)
        spatial_local = x * local + x
        n = x.size(0)
        x_sqz = self.bn_phi(self.phi(x)).view(n, x.size(1) // 2, -1)  # F: C/2 x N
        b = self.bn_theta(self.theta(x)).view(n, x.size(1) // 4, -1)  # B: C/4 x N
        z_idt = torch.matmul(x_sqz, b.transpose(1, 2))  # Z: C/2 x C/4
        z = z_idt.transpose(1, 2).contiguous()
        z = self.bn_adj(self.conv_adj(z)).transpose(1, 2)
        z = z + z_idt
        z = self.bn_wg(self.conv_wg(z))
        y = torch.matmul(z, b).view(n, x.size(1) // 2, *x.size()[2:])
        g_out = F.relu_(x + self.bn3(self.conv3(y)))
        return self.final(torch.cat((spatial_local, g_out), 1))
