"""Dilated ResNet backbones with output stride 8 (or 16), returning layer3 and layer4.

* :func:`torchvision_resnet`: torchvision's ResNet-18/50/101 with the strides of layer3/layer4
  replaced by dilation (DeepLab-style), optionally with torchvision's ImageNet weights.
* :func:`deep_stem_resnet101`: the authors' backbone (their ``ResNet`` in ``DualGCNNet.py``):
  three 3x3 convs in the stem, ceil-mode max-pool, layer3 dilation 2, layer4 dilation
  4 x multi-grid (1, 2, 4). Built from torchvision's ``Bottleneck`` blocks.
"""

from __future__ import annotations

import os
import socket

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from dgcn.config import torch_home_checkpoints
from dgcn.errors import CheckpointError

TORCHVISION_DEPTHS = (18, 50, 101)


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


def load_imagenet_state_dict(weights: torchvision.models.WeightsEnum) -> dict:
    """torchvision's ImageNet weights, from $TORCH_HOME/hub/checkpoints or downloaded there.

    Raises:
        CheckpointError: when the file is absent and cannot be downloaded (no internet),
            naming the file and where to put it.
    """
    url = weights.url
    folder = torch_home_checkpoints()
    path = os.path.join(folder, os.path.basename(url))
    if not os.path.exists(path):
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(20)  # fail fast offline instead of hanging
        try:
            os.makedirs(folder, exist_ok=True)
            torch.hub.download_url_to_file(url, path, progress=True)
        except Exception as err:  # no internet, proxy, disk: all mean "place it by hand"
            raise CheckpointError(
                f"ImageNet weights {os.path.basename(url)} are not in {folder} and could not be "
                f"downloaded from {url} ({type(err).__name__}: {err}); download that file on a "
                f"machine with internet and place it at {path} ($TORCH_HOME moves the folder)"
            ) from err
        finally:
            socket.setdefaulttimeout(previous)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot read ImageNet weights {path} ({err}); delete it and download it again"
        ) from err


def torchvision_resnet(
    depth: int = 101, output_stride: int = 8, pretrained: str | None = None, dilated: bool = True
) -> ResNetBackbone:
    """torchvision's ResNet, dilated to the given output stride.

    Args:
        depth: 18, 50 or 101.
        output_stride: 8 (layer3 dilation 2, layer4 dilation 4), 16 or 32.
        pretrained: ``"imagenet"`` for torchvision's ImageNet-1k V1 weights, a path to a
            state dict of the same torchvision model, or None for random init.
        dilated: False removes the strides of layer3/layer4 without dilating (smaller
            receptive field, same output stride).
    """
    if depth not in TORCHVISION_DEPTHS:
        raise ValueError(f"depth must be one of {TORCHVISION_DEPTHS}, got {depth}")
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    if pretrained:
        if pretrained == "imagenet":
            enum = getattr(torchvision.models, f"ResNet{depth}_Weights").IMAGENET1K_V1
            state = load_imagenet_state_dict(enum)
        else:
            state = _read_state_dict(pretrained)
        model.load_state_dict(state)
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


def deep_stem_resnet101(
    multi_grid: tuple[int, ...] = (1, 2, 4), pretrained: str | None = None
) -> ResNetBackbone:
    """The authors' deep-stem ResNet-101, output stride 8.

    Args:
        multi_grid: layer4's per-block dilation factors, times 4 (so 4, 8, 16).
        pretrained: path to the authors' ImageNet checkpoint of this network (keys ``conv1.0``...
            ``layer4``; ``fc`` is ignored). torchvision has no deep-stem weights.
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
    backbone = ResNetBackbone(stem, layers)
    if pretrained:
        from dgcn.models.official import convert_deep_stem_imagenet

        backbone.load_state_dict(convert_deep_stem_imagenet(_read_state_dict(pretrained)))
    return backbone


def _read_state_dict(path: str) -> dict:
    if not os.path.isfile(path):
        raise CheckpointError(f"pretrained weights {path} not found; check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read pretrained weights {path}: {err}") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return state
