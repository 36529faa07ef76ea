"""The authors' released checkpoint (``DualSeg_res101`` in GALD-DGCNet) <-> our parameter names.

The whole mapping is :data:`OFFICIAL_KEY_MAP`: pairs of (authors' key prefix, our key prefix),
matched at the start of a key, longest prefix first. Everything after the prefix is the same
on both sides (torchvision's ``Bottleneck`` uses the authors' ``conv1/bn1/.../downsample``).

This module is the key table and the renaming only (it builds no network): reading files and
checking shapes are in :mod:`dgcn.models.weights`; ``convert_official_state_dict`` and
``load_official_checkpoint``, which build the preset ``dgcnet_official_r101``, are in
:mod:`dgcn.models.build`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch

from dgcn.errors import CheckpointError

_COORD = "head.graph.coordinate."
_FEAT = "head.graph.feature."
_ATT = "head.dualgcn.gcn_local_attention."

#: (authors' prefix, our prefix). Note the coordinate graph: the authors' ``node_k`` is the
#: paper's delta (our ``query``), ``node_q`` is Psi (our ``key``), ``node_v`` is nu (``value``).
#: In the feature graph the letters are swapped against the paper as summarised: their ``phi``
#: makes the D/2 features, the summary's theta (our ``to_features``), and their ``theta`` the
#: D/4 node assignment, the summary's phi (our ``to_nodes``).
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

#: the authors' classifier weight, whose first dimension is the number of classes
CLASSIFIER_KEY = "head.bottleneck.3.weight"


def rename_key(key: str, table: tuple[tuple[str, str], ...]) -> str | None:
    """``key`` with its longest matching prefix in ``table`` replaced, or None if none matches."""
    best = max((p for p in table if key.startswith(p[0])), key=lambda p: len(p[0]), default=None)
    return None if best is None else best[1] + key[len(best[0]) :]


def official_to_ours(key: str) -> str | None:
    """Our name of an authors' key (``module.`` already stripped), or None if it has none."""
    return rename_key(key, OFFICIAL_KEY_MAP)


def ours_to_official(key: str) -> str | None:
    """The authors' name of one of our keys of ``dgcnet_official_r101``, or None."""
    return rename_key(key, tuple((b, a) for a, b in OFFICIAL_KEY_MAP))


def unwrap(state_dict: Mapping) -> Mapping:
    """The state dict inside a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper, if any."""
    for wrapper in ("state_dict", "model"):
        if isinstance(state_dict.get(wrapper), Mapping):
            return state_dict[wrapper]
    return state_dict


def strip_module(key: str) -> str:
    """``key`` without the ``module.`` prefix that DDP adds."""
    return key[len("module.") :] if key.startswith("module.") else key


def rename_official_keys(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """The authors' state dict under our key names (values untouched, shapes not checked).

    Args:
        state_dict: the authors' state dict (a ``module.`` prefix from DDP is accepted, as is a
            ``{"state_dict": ...}`` wrapper).

    Raises:
        CheckpointError: naming the first key that has no counterpart in our network.
    """
    converted: OrderedDict[str, torch.Tensor] = OrderedDict()
    for raw_key, value in unwrap(state_dict).items():
        ours = official_to_ours(strip_module(raw_key))
        if ours is None:
            raise CheckpointError(
                f"checkpoint key {raw_key!r} is not part of the authors' DualSeg_res101; "
                "is this a checkpoint of the released DGCNet (GALD-DGCNet) code?"
            )
        converted[ours] = value
    return converted


def official_num_classes(state_dict: Mapping[str, torch.Tensor]) -> int:
    """The number of classes of an authors' state dict, read from its classifier.

    Raises:
        CheckpointError: the state dict has no classifier.
    """
    state_dict = unwrap(state_dict)
    classifier = state_dict.get(CLASSIFIER_KEY, state_dict.get("module." + CLASSIFIER_KEY))
    if classifier is None:
        raise CheckpointError(f"checkpoint has no {CLASSIFIER_KEY!r}; is it a DGCNet one?")
    return int(classifier.shape[0])


def backbone_key_map() -> tuple[tuple[str, str], ...]:
    """The backbone rows of :data:`OFFICIAL_KEY_MAP` with ``backbone.`` removed: the authors'
    deep-stem ResNet-101 names <-> our :class:`~dgcn.models.backbone.ResNetBackbone` names."""
    return tuple(
        (a, b[len("backbone.") :]) for a, b in OFFICIAL_KEY_MAP if b.startswith("backbone.")
    )
