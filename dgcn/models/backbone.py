"""Dilated ResNet backbones with output stride 8 (or 16), returning layer3 and layer4.

* :func:`torchvision_resnet`: torchvision's ResNet-18/50/101 with the strides of layer3/layer4
  replaced by dilation (DeepLab-style).
* :func:`deep_stem_resnet101`: the authors' backbone (their ``ResNet`` in ``DualGCNNet.py``):
  three 3x3 convs in the stem, ceil-mode max-pool, layer3 dilation 2, layer4 dilation
  4 x multi-grid (1, 2, 4). Built from torchvision's ``Bottleneck`` blocks.
* :func:`micro_resnet`: a narrow ResNet for CPU demos and tests.

This module builds architectures only (random initialisation); pretrained weights (ImageNet,
files) are loaded by :func:`dgcn.models.weights.load_pretrained_backbone`.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from dgcn.model_spec import TORCHVISION_DEPTHS


class ResNetBackbone(nn.Module):
    """A ResNet trunk without pooling and classifier.

    Args:
        stem: everything before layer1 (convs, BN, ReLU, max-pool).
        layers: layer1 to layer4.

    Shape:
        images: [B, 3, H, W] -> {"aux": [B, C3, H/s, W/s], "out": [B, C4, H/s, W/s]}
    """

    def __init__(self, stem: nn.Module, layers: list[nn.Module]) -> None:
        super().__init__()
        self.stem = stem
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.aux_channels = _out_channels(self.layer3)
        self.out_channels = _out_channels(self.layer4)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.layer2(self.layer1(self.stem(images)))
        aux = self.layer3(x)
        return {"aux": aux, "out": self.layer4(aux)}


def _out_channels(layer: nn.Module) -> int:
    last = list(layer.children())[-1]
    bn = last.bn3 if hasattr(last, "bn3") else last.bn2
    return bn.num_features


def _dilate(layer: nn.Module, dilations: list[int]) -> None:
    """Turn a ResNet layer's stride into dilation, in place: stride 1, given dilation per block."""
    for block, dilation in zip(layer.children(), dilations, strict=True):
        for conv in block.modules():
            if isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3):
                conv.stride, conv.dilation, conv.padding = (1, 1), (dilation,) * 2, (dilation,) * 2
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


def _dilations(output_stride: int) -> tuple[int, int]:
    table = {8: (2, 4), 16: (1, 2), 32: (1, 1)}
    if output_stride not in table:
        raise ValueError(f"output_stride must be one of {sorted(table)}, got {output_stride}")
    return table[output_stride]


def torchvision_resnet(
    depth: int = 101, output_stride: int = 8, dilated: bool = True
) -> ResNetBackbone:
    """torchvision's ResNet (random initialisation), dilated to the given output stride.

    The stem is ``Sequential(conv1, bn1, relu, maxpool)``: torchvision's ``conv1``/``bn1`` are
    our ``stem.0``/``stem.1`` (:func:`dgcn.models.weights.convert_torchvision_resnet` renames
    torchvision's weights); ``fc`` is dropped.

    Args:
        depth: 18, 50 or 101.
        output_stride: 8 (layer3 dilation 2, layer4 dilation 4), 16 or 32.
        dilated: False removes the strides of layer3/layer4 without dilating (smaller
            receptive field, same output stride).
    """
    if depth not in TORCHVISION_DEPTHS:
        raise ValueError(f"depth must be one of {TORCHVISION_DEPTHS}, got {depth}")
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    d3, d4 = _dilations(output_stride)
    if d3 > 1:
        _dilate(model.layer3, [d3 if dilated else 1] * len(model.layer3))
    if d4 > 1:
        _dilate(model.layer4, [d4 if dilated else 1] * len(model.layer4))
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    return ResNetBackbone(stem, [model.layer1, model.layer2, model.layer3, model.layer4])


def micro_resnet(
    widths: tuple[int, int, int, int] = (16, 32, 64, 128),
    output_stride: int = 8,
    dilated: bool = True,
) -> ResNetBackbone:
    """A narrow ResNet (one torchvision ``BasicBlock`` per stage) for CPU demos and tests.

    Same shape of computation as the dilated ResNets (stem /4, layer2 /8, layer3 and layer4
    dilated), at a fraction of the cost: about 0.5 GFLOPs per 128x256 image at stride 8.
    No pretrained weights exist; it trains from scratch on MiniCity.

    Args:
        widths: channels of layer1..layer4.
        output_stride: 8, 16 or 32.
        dilated: True: layer3/layer4 dilated (theoretical receptive field 239 px at stride 8);
            False: stride 1 without dilation (111 px), too small to see a whole bus at 128x256.
    """
    stem = nn.Sequential(
        nn.Conv2d(3, widths[0], 3, 2, 1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    )
    layers, inplanes = [], widths[0]
    for i, planes in enumerate(widths):
        stride = 1 if i == 0 else 2
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride, downsample)))
        inplanes = planes
    d3, d4 = _dilations(output_stride)
    if d3 > 1:
        _dilate(layers[2], [d3 if dilated else 1])
    if d4 > 1:
        _dilate(layers[3], [d4 if dilated else 1])
    return ResNetBackbone(stem, layers)


def _make_layer(
    inplanes: int, planes: int, blocks: int, stride: int, dilations: list[int]
) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes * Bottleneck.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * Bottleneck.expansion, 1, stride, bias=False),
            nn.BatchNorm2d(planes * Bottleneck.expansion),
        )
    layers = [Bottleneck(inplanes, planes, stride, downsample, dilation=dilations[0])]
    for dilation in dilations[1:]:
        layers.append(Bottleneck(planes * Bottleneck.expansion, planes, dilation=dilation))
    return nn.Sequential(*layers)


def deep_stem_resnet101(multi_grid: tuple[int, ...] = (1, 2, 4)) -> ResNetBackbone:
    """The authors' deep-stem ResNet-101 (random initialisation), output stride 8.

    The authors' ImageNet weights of this network (keys ``conv1.0``... ``layer4``) are renamed
    by :func:`dgcn.models.weights.convert_deep_stem_imagenet`; torchvision has none.

    Args:
        multi_grid: layer4's per-block dilation factors, times 4 (so 4, 8, 16).
    """
    if len(multi_grid) != 3:
        raise ValueError(f"multi_grid needs one factor per layer4 block (3), got {multi_grid}")

    def conv(i: int, o: int, stride: int = 1) -> nn.Conv2d:
        return nn.Conv2d(i, o, 3, stride, 1, bias=False)

    stem = nn.Sequential(
        conv(3, 64, 2),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        conv(64, 64),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        conv(64, 128),
        nn.BatchNorm2d(128),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    )
    layers = [
        _make_layer(128, 64, 3, 1, [1] * 3),
        _make_layer(256, 128, 4, 2, [1] * 4),
        _make_layer(512, 256, 23, 1, [2] * 23),
        _make_layer(1024, 512, 3, 1, [4 * g for g in multi_grid]),
    ]
    return ResNetBackbone(stem, layers)
