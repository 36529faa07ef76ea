"""The authors' released checkpoint (``DualSeg_res101`` in GALD-DGCNet) <-> our parameter names.

The whole mapping is :data:`OFFICIAL_KEY_MAP`: pairs of (authors' key prefix, our key prefix),
matched at the start of a key, longest prefix first. Everything after the prefix is the same
on both sides (torchvision's ``Bottleneck`` uses the authors' ``conv1/bn1/.../downsample``).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping

import torch

from dgcn.errors import CheckpointError

_COORD = "head.graph.coordinate."
_FEAT = "head.graph.feature."
_ATT = "head.dualgcn.gcn_local_attention."

#: (authors' prefix, our prefix). Note the coordinate graph: the authors' ``node_k`` is the
#: paper's delta (our ``query``), ``node_q`` is Psi (our ``key``), ``node_v`` is nu (``value``).
#: In the feature graph their ``phi`` gives node features (our ``to_features``) and ``theta``
#: the projection onto nodes (our ``to_nodes``): the paper uses the two letters the other way.
OFFICIAL_KEY_MAP: tuple[tuple[str, str], ...] = (
    ("conv1.", "backbone.stem."),
    ("bn1.", "backbone.stem.7."),
    ("layer1.", "backbone.layer1."),
    ("layer2.", "backbone.layer2."),
    ("layer3.", "backbone.layer3."),
    ("layer4.", "backbone.layer4."),
    ("dsn.", "aux_head."),
    ("head.conva.", "head.reduce."),
    ("head.convb.", "head.project."),
    ("head.bottleneck.", "head.classifier."),
    ("head.dualgcn.local.", _COORD + "downsample."),
    (_ATT + "node_k.", _COORD + "query."),
    (_ATT + "node_q.", _COORD + "key."),
    (_ATT + "node_v.", _COORD + "value."),
    (_ATT + "conv_wg.", _COORD + "state_update.0."),
    (_ATT + "bn_wg.", _COORD + "state_update.1."),
    (_ATT + "out.", _COORD + "reproject."),
    ("head.dualgcn.phi.", _FEAT + "to_features.0."),
    ("head.dualgcn.bn_phi.", _FEAT + "to_features.1."),
    ("head.dualgcn.theta.", _FEAT + "to_nodes.0."),
    ("head.dualgcn.bn_theta.", _FEAT + "to_nodes.1."),
    ("head.dualgcn.conv_adj.", _FEAT + "adjacency.0."),
    ("head.dualgcn.bn_adj.", _FEAT + "adjacency.1."),
    ("head.dualgcn.conv_wg.", _FEAT + "state_update.0."),
    ("head.dualgcn.bn_wg.", _FEAT + "state_update.1."),
    ("head.dualgcn.conv3.", _FEAT + "reproject.0."),
    ("head.dualgcn.bn3.", _FEAT + "reproject.1."),
    ("head.dualgcn.final.", "head.graph.fuse."),
)

_CLASSIFIER_KEY = "head.bottleneck.3.weight"


def _rename(key: str, table: tuple[tuple[str, str], ...]) -> str | None:
    best = max((p for p in table if key.startswith(p[0])), key=lambda p: len(p[0]), default=None)
    return None if best is None else best[1] + key[len(best[0]) :]


def official_to_ours(key: str) -> str | None:
    """Our name of an authors' key (``module.`` already stripped), or None if it has none."""
    return _rename(key, OFFICIAL_KEY_MAP)


def ours_to_official(key: str) -> str | None:
    """The authors' name of one of our keys of ``dgcnet_official_r101``, or None."""
    return _rename(key, tuple((b, a) for a, b in OFFICIAL_KEY_MAP))


def _unwrap(state_dict: Mapping) -> Mapping:
    for wrapper in ("state_dict", "model"):
        if isinstance(state_dict.get(wrapper), Mapping):
            return state_dict[wrapper]
    return state_dict


def _strip_module(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


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
    state_dict = _unwrap(state_dict)
    converted: OrderedDict[str, torch.Tensor] = OrderedDict()
    for raw_key, value in state_dict.items():
        key = _strip_module(raw_key)
        ours = official_to_ours(key)
        if ours is None:
            raise CheckpointError(
                f"checkpoint key {raw_key!r} is not part of the authors' DualSeg_res101; "
                "is this a checkpoint of the released DGCNet (GALD-DGCNet) code?"
            )
        converted[ours] = value
    if num_classes is None:
        classifier = state_dict.get(_CLASSIFIER_KEY, state_dict.get("module." + _CLASSIFIER_KEY))
        if classifier is None:
            raise CheckpointError(f"checkpoint has no {_CLASSIFIER_KEY!r}; is it a DGCNet one?")
        num_classes = int(classifier.shape[0])
    _check_shapes(converted, _expected_shapes(num_classes))
    return converted


def _expected_shapes(num_classes: int) -> dict[str, torch.Size]:
    from dgcn.models.build import build_model  # build imports the backbone, which imports us

    with torch.device("meta"):
        model = build_model("dgcnet_official_r101", num_classes=num_classes)
    return {k: v.shape for k, v in model.state_dict().items()}


def _check_shapes(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size]) -> None:
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


def convert_deep_stem_imagenet(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Rename the authors' ImageNet deep-stem ResNet-101 weights for our ``ResNetBackbone``.

    The ``fc`` classifier is dropped; keys are mapped with the backbone rows of
    :data:`OFFICIAL_KEY_MAP` (``backbone.`` removed).
    """
    table = tuple(
        (a, b[len("backbone.") :]) for a, b in OFFICIAL_KEY_MAP if b.startswith("backbone.")
    )
    out = {}
    for raw_key, value in _unwrap(state_dict).items():
        key = _strip_module(raw_key)
        if key.startswith("fc."):
            continue
        ours = _rename(key, table)
        if ours is None:
            raise CheckpointError(f"key {raw_key!r} is not part of a deep-stem ResNet-101")
        out[ours] = value
    return out


def load_official_checkpoint(path: str, num_classes: int | None = None):
    """Build ``dgcnet_official_r101`` and load the authors' checkpoint file into it (eval mode).

    Raises:
        CheckpointError: file missing, unreadable, or not the authors' network.
    """
    from dgcn.models.build import build_model

    if not os.path.isfile(path):
        raise CheckpointError(
            f"checkpoint {path} not found; download the authors' Cityscapes model (see the "
            "README, 'Loading the authors' weights') and pass its path"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
    converted = convert_official_state_dict(state, num_classes)
    classes = num_classes or int(converted["head.classifier.3.weight"].shape[0])
    model = build_model("dgcnet_official_r101", num_classes=classes)
    model.load_state_dict(converted, strict=True)
    return model.eval()
