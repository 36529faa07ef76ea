"""Weights I/O of the models: downloads, files, key conversions, shape checks and loading.

* torchvision's ImageNet weights: :func:`load_imagenet_state_dict`, downloaded once into
  :func:`torch_home_checkpoints` (``$TORCH_HOME/hub/checkpoints``).
* Backbone weights from a file (:func:`read_state_dict`), named as in torchvision's ResNet
  (:func:`convert_torchvision_resnet`) or as in the authors' deep-stem ResNet-101
  (:func:`convert_deep_stem_imagenet`); :func:`load_pretrained_backbone` puts them into a
  :class:`~dgcn.models.backbone.ResNetBackbone`, for the ``pretrained`` field of a
  :class:`~dgcn.models.build.ModelSpec`.
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
import socket
from collections.abc import Mapping

import torch
import torchvision

from dgcn.errors import CheckpointError, ConfigError
from dgcn.models.backbone import ResNetBackbone
from dgcn.models.official import (
    backbone_key_map,
    ours_to_official,
    rename_key,
    strip_module,
    unwrap,
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


def torch_home_checkpoints() -> str:
    """The folder where torchvision looks for downloaded weights ($TORCH_HOME/hub/checkpoints)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


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


def read_state_dict(path: str) -> dict:
    """A state dict from a file of pretrained weights (a ``{"state_dict": ...}`` wrapper is
    opened).

    Raises:
        CheckpointError: the file is missing or unreadable, naming it.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"pretrained weights {path} not found; check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read pretrained weights {path}: {err}") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return state


def convert_torchvision_resnet(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Rename the weights of a torchvision ResNet for our ``ResNetBackbone``.

    The ``fc`` classifier is dropped; keys outside :data:`TORCHVISION_KEY_MAP` are kept as they
    are, so that a strict load names them.
    """
    out = {}
    for key, value in state_dict.items():
        if key.startswith("fc."):
            continue
        out[rename_key(key, TORCHVISION_KEY_MAP) or key] = value
    return out


def convert_deep_stem_imagenet(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Rename the authors' ImageNet deep-stem ResNet-101 weights for our ``ResNetBackbone``.

    The ``fc`` classifier is dropped; keys are mapped with the backbone rows of
    :data:`~dgcn.models.official.OFFICIAL_KEY_MAP` (``backbone.`` removed).

    Raises:
        CheckpointError: naming the first key that is not part of a deep-stem ResNet-101.
    """
    table = backbone_key_map()
    out = {}
    for raw_key, value in unwrap(state_dict).items():
        key = strip_module(raw_key)
        if key.startswith("fc."):
            continue
        ours = rename_key(key, table)
        if ours is None:
            raise CheckpointError(f"key {raw_key!r} is not part of a deep-stem ResNet-101")
        out[ours] = value
    return out


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
            names for the torchvision backbones, the authors' names (``conv1.0``...
            ``layer4``; ``fc`` is ignored) for the deep stem, which has no torchvision weights.

    Returns:
        ``backbone``, loaded strictly.

    Raises:
        CheckpointError: the file is missing or unreadable, or the ImageNet weights are
            neither cached nor downloadable.
        ConfigError: ``name`` has no pretrained weights (the micro backbone).
    """
    if name == "deepstem_resnet101":
        state = convert_deep_stem_imagenet(read_state_dict(pretrained))
    elif not name.startswith("resnet"):
        raise ConfigError(f"the {name} backbone has no pretrained weights; use pretrained=None")
    else:
        if pretrained == "imagenet":
            depth = name[len("resnet") :]
            enum = getattr(torchvision.models, f"ResNet{depth}_Weights").IMAGENET1K_V1
            raw = load_imagenet_state_dict(enum)
        else:
            raw = read_state_dict(pretrained)
        state = convert_torchvision_resnet(raw)
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
