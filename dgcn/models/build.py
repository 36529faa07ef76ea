"""Named model presets: ``build_model("dgcnet_official_r101")`` and friends.

Also the authors' released checkpoint as a network (:func:`load_official_checkpoint`) and its
conversion (:func:`convert_official_state_dict`): both need the preset
``dgcnet_official_r101``; the file reading and the shape check are in
:mod:`dgcn.models.weights`, the key table in :mod:`dgcn.models.official`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

from dgcn.datasets.labels import NUM_CLASSES
from dgcn.errors import ConfigError
from dgcn.model_spec import HEADS, PRESETS, ModelSpec, model_spec
from dgcn.models.backbone import deep_stem_resnet101, micro_resnet, torchvision_resnet
from dgcn.models.dual_gcn import DualGCNHead, context_module
from dgcn.models.network import AuxHead, ContextFCNHead, DGCNet
from dgcn.models.official import official_num_classes, rename_official_keys
from dgcn.models.weights import (
    check_finite,
    check_official_shapes,
    load_pretrained_backbone,
    read_official_checkpoint,
)

__all__ = [
    "HEADS",
    "PRESETS",
    "ModelSpec",
    "model_spec",
    "build_from_spec",
    "build_model",
    "convert_official_state_dict",
    "load_official_checkpoint",
]


def build_from_spec(spec: ModelSpec, num_classes: int = NUM_CLASSES) -> DGCNet:
    """Build a :class:`DGCNet` from a :class:`ModelSpec`, with the backbone weights of
    ``spec.pretrained`` (loaded by :func:`dgcn.models.weights.load_pretrained_backbone`).

    Args:
        spec: the network.
        num_classes: output classes (default: the 19 evaluated Cityscapes classes,
            :data:`dgcn.datasets.labels.NUM_CLASSES`).

    Raises:
        ConfigError: an option the backbone does not have (pretrained micro, undilated deep
            stem).
        CheckpointError: pretrained weights missing, unreadable or not downloadable.
    """
    if spec.backbone == "deepstem_resnet101":
        backbone = deep_stem_resnet101(spec.multi_grid)
    elif spec.backbone == "micro":
        if spec.pretrained:
            raise ConfigError("the micro backbone has no pretrained weights; use pretrained=None")
        backbone = micro_resnet(output_stride=spec.output_stride, dilated=spec.dilated)
    elif spec.backbone.startswith("resnet") and spec.backbone[6:].isdigit():
        backbone = torchvision_resnet(int(spec.backbone[6:]), spec.output_stride, spec.dilated)
    else:
        raise ConfigError(f"unknown backbone {spec.backbone!r}")
    if not spec.dilated and spec.backbone == "deepstem_resnet101":
        raise ConfigError("the deep-stem ResNet-101 is always dilated; drop dilated=False")
    if spec.pretrained:
        load_pretrained_backbone(backbone, spec.backbone, spec.pretrained)
    channels = backbone.out_channels
    head: nn.Module
    if spec.head == "official":
        head = DualGCNHead(
            channels, spec.head_channels, num_classes, "official", spec.graphs, spec.downsample
        )
    elif spec.head == "paper":
        graph = context_module(
            channels, spec.graphs, "paper", spec.downsample, spec.pooling, spec.zero_init
        )
        head = ContextFCNHead(channels, num_classes, graph)
    elif spec.head == "fcn":
        head = ContextFCNHead(channels, num_classes)
    else:
        raise ConfigError(f"unknown head {spec.head!r}; use 'official', 'paper' or 'fcn'")
    aux = AuxHead(backbone.aux_channels, spec.aux_channels, num_classes) if spec.aux else None
    return DGCNet(backbone, head, aux)


def build_model(name: str, num_classes: int = NUM_CLASSES, **overrides) -> DGCNet:
    """Build a named preset.

    Presets: ``dgcnet_official_r101`` (the authors' ``DualSeg_res101``: deep stem, multi-grid,
    official head, aux head; 72,506,598 parameters with 19 classes), ``dgcnet_paper_r101`` (the
    paper's equations on a torchvision ResNet-101), ``fcn_r101`` (the baseline),
    ``dgcnet_official_tv_r101`` (the official head on torchvision's ResNet-101, for ImageNet
    weights on Colab), ``*_r50`` and the small CPU presets ``*_r18``.

    Args:
        name: a key of :data:`PRESETS`.
        num_classes: output classes (default: the 19 evaluated Cityscapes classes,
            :data:`dgcn.datasets.labels.NUM_CLASSES`).
        **overrides: fields of :class:`ModelSpec`, e.g. ``graphs="coordinate"``,
            ``pretrained="imagenet"``.

    Raises:
        ConfigError: unknown name or option, naming the closest valid one.
    """
    return build_from_spec(model_spec(name, **overrides), num_classes)


def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], num_classes: int | None = None
) -> OrderedDict[str, torch.Tensor]:
    """Rename an authors' checkpoint so ``build_model("dgcnet_official_r101")`` loads it strictly.

    Args:
        state_dict: the authors' state dict (a ``module.`` prefix from DDP is accepted, as is a
            ``{"state_dict": ...}`` wrapper).
        num_classes: classes of the checkpoint; read from its classifier when None.

    Raises:
        CheckpointError: naming the first key that is unknown, missing or of another shape.
    """
    converted = rename_official_keys(state_dict)
    if num_classes is None:
        num_classes = official_num_classes(state_dict)
    with torch.device("meta"):
        model = build_model("dgcnet_official_r101", num_classes=num_classes)
    check_official_shapes(converted, {k: v.shape for k, v in model.state_dict().items()})
    return converted


def load_official_checkpoint(path: str, num_classes: int | None = None) -> DGCNet:
    """Build ``dgcnet_official_r101`` and load the authors' checkpoint file into it (eval mode).

    Raises:
        CheckpointError: file missing, unreadable, not the authors' network, or holding
            non-finite weights.
    """
    converted = convert_official_state_dict(read_official_checkpoint(path), num_classes)
    check_finite(converted, path)
    classes = num_classes or int(converted["head.classifier.3.weight"].shape[0])
    model = build_model("dgcnet_official_r101", num_classes=classes)
    model.load_state_dict(converted, strict=True)
    return model.eval()
