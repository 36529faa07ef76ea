"""Named model presets: ``build_model("dgcnet_official_r101")`` and friends.

Also the authors' released checkpoint as a network (:func:`load_official_checkpoint`) and its
conversion (:func:`convert_official_state_dict`): both need the preset
``dgcnet_official_r101``; the file reading and the shape check are in
:mod:`dgcn.models.weights`, the key table in :mod:`dgcn.models.official`.
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from dgcn.datasets.labels import NUM_CLASSES
from dgcn.errors import ConfigError
from dgcn.models.backbone import (
    TORCHVISION_DEPTHS,
    deep_stem_resnet101,
    micro_resnet,
    torchvision_resnet,
)
from dgcn.models.coordinate_gcn import POOLINGS
from dgcn.models.dual_gcn import CONTEXTS, DualGCNHead, context_module
from dgcn.models.network import AuxHead, ContextFCNHead, DGCNet
from dgcn.models.official import official_num_classes, rename_official_keys
from dgcn.models.weights import (
    check_official_shapes,
    load_pretrained_backbone,
    read_official_checkpoint,
)

HEADS = ("official", "paper", "fcn")


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a network; presets fill it, ``**overrides`` replace fields.

    Attributes:
        backbone: ``"resnet18"``, ``"resnet50"``, ``"resnet101"`` (torchvision),
            ``"deepstem_resnet101"`` (the authors') or ``"micro"`` (a narrow CPU ResNet).
        head: ``"official"`` (the authors' DualGCNHead), ``"paper"`` (DualGCN on the backbone
            feature + FCN classifier) or ``"fcn"`` (the baseline, no graph).
        graphs: ``"both"``, ``"coordinate"`` or ``"feature"``; ``"none"`` (the same head with
            the graph module replaced by identity: the ablation's baseline), ``"global-pool"``
            (image-level pooling in its place: the control row), ``"ppm"`` (PSPNet's pyramid
            pooling) or ``"non-local"`` (a non-local block, an N x N affinity): the modules of
            :mod:`dgcn.models.context`.
        downsample: d of the coordinate graph; pooling: ``"avg"`` or ``"conv"`` (paper head).
        head_channels: the width the official head reduces to (512 in the authors' code).
        aux: whether to add the auxiliary head on layer3.
        aux_channels: its hidden width (512 in the authors' code).
        output_stride: 8 or 16 (torchvision and micro backbones; the deep stem is always 8).
        dilated: layer3/layer4 keep their resolution by dilation (DeepLab, the paper); False
            keeps it with undilated stride-1 convs, which about halves the receptive field
            (the CPU ablation's backbone, so that context must come from the head).
        zero_init: the paper head's graphs start with zero reprojection BN scales.
        multi_grid: layer4 dilation factors of the deep-stem backbone.
        pretrained: None, ``"imagenet"`` (torchvision backbones) or a path to backbone weights.
    """

    backbone: str = "resnet101"
    head: str = "paper"
    graphs: str = "both"
    downsample: int = 8
    pooling: str = "avg"
    head_channels: int = 512
    aux: bool = True
    aux_channels: int = 512
    output_stride: int = 8
    multi_grid: tuple[int, ...] = (1, 2, 4)
    dilated: bool = True
    zero_init: bool = True
    pretrained: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value, default = getattr(self, f.name), f.default
            kind = type(default)
            if (
                default is None
                or isinstance(value, kind)
                and (kind is bool) == (type(value) is bool)
            ):
                continue
            raise ConfigError(f"model option {f.name} must be {kind.__name__}, got {value!r}")
        backbones = ("micro", "deepstem_resnet101", *(f"resnet{d}" for d in TORCHVISION_DEPTHS))
        choices = {
            "backbone": backbones,
            "head": HEADS,
            "graphs": CONTEXTS,
            "pooling": POOLINGS,
            "output_stride": (8, 16, 32),
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ConfigError(
                    f"model option {name}={getattr(self, name)!r} is not one of "
                    f"{', '.join(map(str, valid))}"
                )
        if self.downsample < 1 or self.downsample & (self.downsample - 1):
            raise ConfigError(
                f"model option downsample must be a power of two, got {self.downsample}"
            )
        if self.head_channels < 4 or self.head_channels % 4:
            raise ConfigError(
                f"model option head_channels must be a multiple of 4, got {self.head_channels}"
            )


PRESETS: dict[str, ModelSpec] = {
    "dgcnet_official_r101": ModelSpec(backbone="deepstem_resnet101", head="official"),
    "dgcnet_paper_r101": ModelSpec(backbone="resnet101", head="paper"),
    "fcn_r101": ModelSpec(backbone="resnet101", head="fcn"),
    "dgcnet_official_tv_r101": ModelSpec(backbone="resnet101", head="official"),
    "dgcnet_paper_r50": ModelSpec(backbone="resnet50", head="paper"),
    "fcn_r50": ModelSpec(backbone="resnet50", head="fcn"),
    # small CPU presets: ResNet-18 trunk, narrower heads
    "dgcnet_official_r18": ModelSpec(
        backbone="resnet18", head="official", head_channels=128, aux_channels=128
    ),
    "dgcnet_paper_r18": ModelSpec(backbone="resnet18", head="paper", aux_channels=128),
    "fcn_r18": ModelSpec(backbone="resnet18", head="fcn", aux_channels=128),
    # CPU demo presets: a narrow ResNet trained from scratch (MiniCity in minutes)
    "dgcnet_paper_micro": ModelSpec(backbone="micro", head="paper", aux_channels=32),
    "dgcnet_official_micro": ModelSpec(
        backbone="micro", head="official", head_channels=64, aux_channels=32
    ),
    "fcn_micro": ModelSpec(backbone="micro", head="fcn", aux_channels=32),
}


def _closest(name: str, options) -> str:
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.0)
    return f"; did you mean {match[0]!r}?" if match else ""


def model_spec(name: str, **overrides) -> ModelSpec:
    """The preset ``name`` with ``overrides`` applied; unknown names raise ConfigError."""
    if name not in PRESETS:
        raise ConfigError(
            f"unknown model {name!r}{_closest(name, PRESETS)} (known: {', '.join(PRESETS)})"
        )
    valid = {f.name for f in fields(ModelSpec)}
    for key in overrides:
        if key not in valid:
            raise ConfigError(f"unknown model option {key!r}{_closest(key, valid)}")
    if "multi_grid" in overrides:
        overrides["multi_grid"] = tuple(overrides["multi_grid"])
    return replace(PRESETS[name], **overrides)


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
        CheckpointError: file missing, unreadable, or not the authors' network.
    """
    converted = convert_official_state_dict(read_official_checkpoint(path), num_classes)
    classes = num_classes or int(converted["head.classifier.3.weight"].shape[0])
    model = build_model("dgcnet_official_r101", num_classes=classes)
    model.load_state_dict(converted, strict=True)
    return model.eval()
