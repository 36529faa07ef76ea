"""Weights I/O of the models: downloads, files, key conversions, shape checks and loading.

* torchvision's ImageNet weights: :func:`load_imagenet_state_dict`, downloaded once into
  :func:`torch_home_checkpoints` (``$TORCH_HOME/hub/checkpoints``).
* Backbone weights from a file (:func:`read_state_dict`), named as in torchvision's ResNet
  (:func:`convert_torchvision_resnet`) or as in a deep-stem ResNet-101, in the authors' layout or
  in MIT CSAIL's (:func:`convert_deep_stem_imagenet`); :func:`load_pretrained_backbone` checks
  them against a :class:`~dgcn.models.backbone.ResNetBackbone` (:func:`check_backbone_state`)
  and loads them, for the ``pretrained`` field of a :class:`~dgcn.models.build.ModelSpec`.
* MIT CSAIL's ImageNet deep-stem ResNet-101 (:data:`DEEP_STEM_IMAGENET_URL`), downloaded on
  first use into the configured path by :func:`fetch_deep_stem_imagenet`
  (:func:`download_file`: a temporary file, a progress bar, the sha256 of what arrived).
* The authors' released checkpoint: :func:`read_official_checkpoint` and
  :func:`check_official_shapes` (the key table and the renaming are in
  :mod:`dgcn.models.official`). Checking needs the network of a preset, so the two functions
  that build it, ``convert_official_state_dict`` and ``load_official_checkpoint``, are in
  :mod:`dgcn.models.build`, which imports this module.
* Our checkpoints written before a parameter was renamed: :func:`upgrade_state_dict`.

Nothing here builds a network from a preset, so :mod:`dgcn.models.build` can use this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import torch
import torchvision
from torch import nn

from dgcn.errors import CheckpointError, ConfigError
from dgcn.models.backbone import ResNetBackbone
from dgcn.models.official import (
    backbone_key_map,
    ours_to_official,
    rename_key,
    strip_module,
    unwrap,
)
from dgcn.models.weight_files import (
    DEEP_STEM_IMAGENET_NAME,
    DEEP_STEM_IMAGENET_URL,
    fetch_deep_stem_imagenet,
    load_imagenet_state_dict,
    read_state_dict,
    torch_home_checkpoints,
)

#: (old prefix, new prefix) of parameters renamed since checkpoints were first written: the
#: paper head's graph module was ``head.context`` (it is ``head.graph``, as in the official head)
LEGACY_KEY_MAP: tuple[tuple[str, str], ...] = (("head.context.", "head.graph."),)

#: torchvision's ResNet names -> our ResNetBackbone names (``fc`` is dropped)
TORCHVISION_KEY_MAP: tuple[tuple[str, str], ...] = (
    ("conv1.", "stem.0."),
    ("bn1.", "stem.1."),
    ("layer1.", "layer1."),
    ("layer2.", "layer2."),
    ("layer3.", "layer3."),
    ("layer4.", "layer4."),
)

#: MIT CSAIL's deep stem (three flat conv/BN pairs) -> our ``stem`` Sequential (conv, BN, ReLU
#: three times, then max-pool); their layers are named as ours
MIT_STEM_KEY_MAP: tuple[tuple[str, str], ...] = (
    ("conv1.", "stem.0."),
    ("bn1.", "stem.1."),
    ("conv2.", "stem.3."),
    ("bn2.", "stem.4."),
    ("conv3.", "stem.6."),
    ("bn3.", "stem.7."),
)


def convert_torchvision_resnet(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Rename the weights of a torchvision ResNet for our ``ResNetBackbone``.

    The ``fc`` classifier is dropped; keys outside :data:`TORCHVISION_KEY_MAP` are kept as they
    are, so that :func:`check_backbone_state` names them.

    Raises:
        CheckpointError: ``state_dict`` is not a mapping.
    """
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"it holds a {type(state_dict).__name__}, not a state dict")
    out = {}
    for key, value in state_dict.items():
        if key.startswith("fc."):
            continue
        out[rename_key(key, TORCHVISION_KEY_MAP) or key] = value
    return out


def deep_stem_layout(keys: Iterable[str]) -> str:
    """Which naming a deep-stem ResNet-101 state dict uses, read from its stem's keys.

    Args:
        keys: the state dict's keys (``module.`` already removed).

    Returns:
        ``"authors"`` (the stem is one ``Sequential``: ``conv1.0`` ... ``conv1.6`` and a
        128-channel ``bn1``) or ``"mit"`` (MIT CSAIL's flat stem: ``conv1``/``bn1``,
        ``conv2``/``bn2``, ``conv3``/``bn3``).

    Raises:
        CheckpointError: a plain stem (one ``conv1``, torchvision's ResNet) or no stem at all.
    """
    names = set(keys)
    if any(key.startswith("conv1.0.") for key in names):
        return "authors"
    if {"conv2.weight", "conv3.weight"} <= names:
        return "mit"
    if "conv1.weight" in names:
        raise CheckpointError(
            "it has a plain stem (one conv1, no conv2/conv3: torchvision's ResNet layout), "
            "not a deep stem; torchvision's weights go with the model dgcnet_official_tv_r101"
        )
    raise CheckpointError(
        "it has neither conv1.0.weight (the authors' deep stem) nor conv1/conv2/conv3 (MIT "
        "CSAIL's deep stem); it is not ImageNet weights of a deep-stem ResNet-101"
    )


def deep_stem_key_map(layout: str) -> tuple[tuple[str, str], ...]:
    """(file prefix, our prefix) for a deep-stem ResNet-101 file of ``layout``.

    ``"authors"``: the backbone rows of :data:`~dgcn.models.official.OFFICIAL_KEY_MAP`
    (``conv1.`` -> ``stem.``, ``bn1.`` -> ``stem.7.``, the layers unchanged). ``"mit"``:
    :data:`MIT_STEM_KEY_MAP` and the same layer rows.
    """
    table = backbone_key_map()
    if layout == "authors":
        return table
    if layout == "mit":
        return MIT_STEM_KEY_MAP + tuple(row for row in table if row[0].startswith("layer"))
    raise ValueError(f"layout must be 'authors' or 'mit', got {layout!r}")


def _deep_stem_state(
    state_dict: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], tuple[tuple[str, str], ...]]:
    """Renamed for our backbone, and the table that renamed it (``fc`` dropped)."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"it holds a {type(state_dict).__name__}, not a state dict")
    weights = {strip_module(k): v for k, v in unwrap(state_dict).items()}
    weights = {k: v for k, v in weights.items() if not k.startswith("fc.")}
    layout = deep_stem_layout(weights)
    table = deep_stem_key_map(layout)
    out = {}
    for key, value in weights.items():
        ours = rename_key(key, table)
        if ours is None:
            raise CheckpointError(
                f"key {key!r} is not part of a deep-stem ResNet-101 ({layout} layout)"
            )
        out[ours] = value
    return out, table


def convert_deep_stem_imagenet(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Rename ImageNet deep-stem ResNet-101 weights for our ``ResNetBackbone``.

    Two layouts are read, told apart by :func:`deep_stem_layout`: the authors' (their stem is a
    ``Sequential``, ``conv1.0`` ... ``conv1.6``, then ``bn1``) and MIT CSAIL's
    (``conv1``/``bn1``, ``conv2``/``bn2``, ``conv3``/``bn3``; the file of
    :data:`DEEP_STEM_IMAGENET_URL`). The ``fc`` classifier is dropped, a ``module.`` prefix and
    a ``{"state_dict": ...}`` wrapper are accepted; ``num_batches_tracked`` buffers are kept
    when present (:func:`check_backbone_state` fills those a file lacks). Shapes are not
    checked here.

    Raises:
        CheckpointError: the stem is of neither layout, or naming the first key that is not
            part of a deep-stem ResNet-101.
    """
    return _deep_stem_state(state_dict)[0]


def check_backbone_state(
    state: Mapping[str, torch.Tensor],
    backbone: nn.Module,
    table: tuple[tuple[str, str], ...] = (),
) -> dict[str, torch.Tensor]:
    """Check renamed weights against a backbone, key by key and shape by shape.

    Args:
        state: the weights under our names (from a ``convert_*`` function).
        backbone: the network they are for (its ``state_dict`` gives names and shapes; a
            network on the meta device will do).
        table: the (file prefix, our prefix) table that renamed them, to name a key as the
            file does.

    Returns:
        ``state`` with the ``num_batches_tracked`` counters it lacks added as 0 (files saved
        before PyTorch 0.4.1 have none; BatchNorm uses them only when ``momentum=None``).

    Raises:
        CheckpointError: naming (as the file does, and in our name) the first key that has no
            place in the backbone, has another shape, or is missing.
    """
    back = tuple((ours, theirs) for theirs, ours in table)
    expected = backbone.state_dict()
    for key, value in state.items():
        theirs = rename_key(key, back) or key
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"key {theirs!r} holds a {type(value).__name__}, not a tensor")
        if key not in expected:
            raise CheckpointError(f"key {theirs!r} has no place in this backbone")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"key {theirs!r} has shape {list(value.shape)}, the backbone needs "
                f"{list(expected[key].shape)} (our {key!r})"
            )
    missing = [k for k in expected if k not in state and not k.endswith(".num_batches_tracked")]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise CheckpointError(
            f"key {rename_key(missing[0], back) or missing[0]!r} is missing{more} "
            f"(our {missing[0]!r})"
        )
    filled = dict(state)
    for key in expected:
        if key not in filled:  # a num_batches_tracked counter
            filled[key] = torch.zeros((), dtype=torch.long)
    return filled


def load_pretrained_backbone(
    backbone: ResNetBackbone, name: str, pretrained: str
) -> ResNetBackbone:
    """Load pretrained weights into a backbone of a :class:`~dgcn.models.build.ModelSpec`.

    Args:
        backbone: the network built for ``name`` (architecture only).
        name: the spec's backbone: ``"resnet18"``/``"resnet50"``/``"resnet101"`` or
            ``"deepstem_resnet101"``.
        pretrained: ``"imagenet"`` (torchvision's ImageNet-1k V1 weights, torchvision
            backbones) or a path to a state dict of the same network: torchvision's ResNet
            names for the torchvision backbones; for the deep stem, which has no torchvision
            weights, the authors' names (``conv1.0`` ... ``layer4``) or MIT CSAIL's
            (``conv1``/``bn1`` ... ``conv3``/``bn3``, ``layer1`` ... ``layer4``), ``fc``
            ignored. A deep-stem path that does not exist and whose file name is
            :data:`DEEP_STEM_IMAGENET_NAME` is downloaded there from
            :data:`DEEP_STEM_IMAGENET_URL` (:func:`fetch_deep_stem_imagenet`).

    Returns:
        ``backbone``, loaded strictly.

    Raises:
        CheckpointError: the file is missing, unreadable or holds other weights (one line
            naming the file and the first key that does not fit), or the weights are neither
            on disk nor downloadable.
        ConfigError: ``name`` has no pretrained weights (the micro backbone).
    """
    if name == "deepstem_resnet101":

        def fit(raw: dict) -> dict:
            try:
                state, table = _deep_stem_state(raw)
                return check_backbone_state(state, backbone, table)
            except CheckpointError as err:
                raise CheckpointError(
                    f"pretrained weights {pretrained} do not fit the deep-stem ResNet-101: {err}; "
                    "use the authors' ImageNet file or MIT CSAIL's "
                    f"({DEEP_STEM_IMAGENET_URL})"
                ) from err

        if os.path.exists(pretrained):
            state = fit(read_state_dict(pretrained))
        elif os.path.basename(pretrained) == DEEP_STEM_IMAGENET_NAME:
            state = fit(fetch_deep_stem_imagenet(pretrained, accept=fit))
        else:
            raise CheckpointError(
                f"pretrained weights {pretrained} not found; check the path (a missing file "
                f"named {DEEP_STEM_IMAGENET_NAME} is downloaded from {DEEP_STEM_IMAGENET_URL})"
            )
    elif not name.startswith("resnet"):
        raise ConfigError(f"the {name} backbone has no pretrained weights; use pretrained=None")
    else:
        depth = name[len("resnet") :]
        if pretrained == "imagenet":
            enum = getattr(torchvision.models, f"ResNet{depth}_Weights").IMAGENET1K_V1
            source = os.path.join(torch_home_checkpoints(), os.path.basename(enum.url))
            raw = load_imagenet_state_dict(enum)
        else:
            source = pretrained
            raw = read_state_dict(pretrained)
        try:
            renamed = convert_torchvision_resnet(raw)
            state = check_backbone_state(renamed, backbone, TORCHVISION_KEY_MAP)
        except CheckpointError as err:
            raise CheckpointError(
                f"pretrained weights {source} do not fit torchvision's ResNet-{depth}: {err}; "
                f"use torchvision's ResNet-{depth} weights (pretrained=imagenet)"
            ) from err
    backbone.load_state_dict(state)
    return backbone


def read_official_checkpoint(path: str) -> dict:
    """The state dict of the authors' released checkpoint file, as stored (keys not renamed).

    Raises:
        CheckpointError: the file is missing (pointing to the README's download section) or
            unreadable.
    """
    if not os.path.isfile(path):
        raise CheckpointError(
            f"checkpoint {path} not found; download the authors' Cityscapes model (see the "
            "README, 'Loading the authors' weights') and pass its path"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err


def check_official_shapes(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size]
) -> None:
    """Check a renamed authors' state dict against our network's ``{key: shape}``.

    Raises:
        CheckpointError: naming (in the authors' and our names) the first key that is
            unexpected, of another shape, or missing.
    """
    for key, value in state.items():
        if key not in expected:
            raise CheckpointError(f"checkpoint key {ours_to_official(key)!r} is unexpected")
        if tuple(value.shape) != tuple(expected[key]):
            raise CheckpointError(
                f"checkpoint key {ours_to_official(key)!r} (ours {key!r}) has shape "
                f"{list(value.shape)}, the authors' network needs {list(expected[key])}"
            )
    for key in expected:
        if key not in state:
            raise CheckpointError(f"checkpoint lacks key {ours_to_official(key)!r} (ours {key!r})")


def upgrade_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One of our state dicts with legacy parameter names renamed to today's.

    The paper head's graph module was ``head.context`` (``head.context.coordinate.query.weight``
    ...); it is ``head.graph``, as in the official head. Keys of :data:`LEGACY_KEY_MAP` are
    renamed, every other key and all values are kept, in the same order.

    Args:
        state_dict: ``checkpoint["model"]`` of a dgcn checkpoint of any version.

    Returns:
        a new dict (``state_dict`` is not modified).
    """
    upgraded = {}
    for key, value in state_dict.items():
        upgraded[rename_key(key, LEGACY_KEY_MAP) or key] = value
    return upgraded


def check_finite(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Refuse weights that hold a NaN or an infinity: a network with one predicts garbage (or
    one class everywhere) and would still be scored, so every load for evaluation, prediction,
    a resume or a frozen backbone checks every floating parameter and buffer first.

    Args:
        state_dict: the weights, as loaded from ``path``.
        path: their file, for the message.

    Raises:
        CheckpointError: naming the first tensor with non-finite values and how many it has.
    """
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        bad = int((~torch.isfinite(value)).sum())
        if bad:
            raise CheckpointError(
                f"{path} holds non-finite weights: {key!r} has {bad} NaN/Inf of {value.numel()} "
                "values (the run diverged); use an earlier checkpoint (previous.pt) or train "
                "again, e.g. with a lower train.lr"
            )
