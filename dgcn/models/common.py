"""Small building blocks shared by the model files."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: the two forms of every context module: the paper's equations and the authors' released code
VARIANTS = ("paper", "official")


def resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True``, the authors' convention everywhere.

    Shape:
        x: [B, C, h, w] -> [B, C, *size]
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int = 3, relu: bool = True
) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ ReLU): the authors' ``conva`` / ``convb`` pattern."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ConcatConv(nn.Sequential):
    """A Sequential whose first layer, a ``Conv2d`` (groups 1), sees the channel concatenation
    of the inputs: ``ConcatConv(conv, bn)(a, b) == nn.Sequential(conv, bn)(cat([a, b], 1))``.

    The conv is computed as ``sum_i conv_{W_i}(x_i)`` with ``W = [W_1 | W_2 | ...]`` split
    along its input channels: the same numbers without the concatenated tensor, which autograd
    would keep for backward next to the parts it usually keeps anyway (the authors' ``final``
    on [coordinate, feature] and ``bottleneck`` on [backbone feature, convb] both concatenate
    full-resolution maps). Layer indices, hence checkpoint keys, are those of the Sequential.

    Shape:
        parts: [B, C_i, H, W] with sum C_i = the conv's in_channels -> the Sequential's output
    """

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__(*layers)
        conv = self[0]
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError("ConcatConv needs a Conv2d with groups=1 and zero padding first")

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        conv = self[0]
        weights = conv.weight.split([p.shape[1] for p in parts], dim=1)
        out = None
        for part, weight in zip(parts, weights, strict=True):
            y = F.conv2d(part, weight, None, conv.stride, conv.padding, conv.dilation)
            out = y if out is None else out.add_(y)
        if conv.bias is not None:
            out = out + conv.bias.view(1, -1, 1, 1)
        for layer in list(self)[1:]:
            out = layer(out)
        return out


def check_power_of_two(downsample: int) -> int:
    """Return log2(downsample), or raise ValueError when it is not a power of two >= 1."""
    if downsample < 1 or downsample & (downsample - 1):
        raise ValueError(f"downsample must be a power of two >= 1, got {downsample}")
    return downsample.bit_length() - 1
