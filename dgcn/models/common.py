"""Small building blocks shared by the model files."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


def check_power_of_two(downsample: int) -> int:
    """Return log2(downsample), or raise ValueError when it is not a power of two >= 1."""
    if downsample < 1 or downsample & (downsample - 1):
        raise ValueError(f"downsample must be a power of two >= 1, got {downsample}")
    return downsample.bit_length() - 1
