"""What defines a network, without building one: :class:`ModelSpec`, the named presets and
:func:`model_spec` (a preset with overrides, every name and value checked).

It imports no torch, so that a config can check its ``model`` section where it checks every
other section (:func:`dgcn.config.check_config`); :mod:`dgcn.models.build` builds the network.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace

from dgcn.errors import ConfigError

#: torchvision's ResNet depths that a backbone name may carry (``resnet18`` ...)
TORCHVISION_DEPTHS = (18, 50, 101)
BACKBONES = ("micro", "deepstem_resnet101", *(f"resnet{d}" for d in TORCHVISION_DEPTHS))
HEADS = ("official", "paper", "fcn")
GRAPHS = ("both", "coordinate", "feature")
#: what a head may put where the graphs go: the graphs, nothing (the ablation's baseline),
#: image-level pooling (the control that asks "is it just global context?"), PSPNet's pyramid
#: pooling (regional context) or a non-local block (every pixel attends to every pixel); the
#: last three are the modules of :mod:`dgcn.models.context`
CONTEXTS = (*GRAPHS, "none", "global-pool", "ppm", "non-local")
#: the coordinate graph's downsampling: average pooling or strided convolutions
POOLINGS = ("avg", "conv")


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
        choices = {
            "backbone": BACKBONES,
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
