"""DGCNet models: the graph modules, heads, backbones, whole networks and presets."""

from dgcn.models.backbone import ResNetBackbone, deep_stem_resnet101, torchvision_resnet
from dgcn.models.build import PRESETS, ModelSpec, build_from_spec, build_model, model_spec
from dgcn.models.coordinate_gcn import CoordinateGCN, OfficialCoordinateGCN
from dgcn.models.dual_gcn import DualGCN, DualGCNHead
from dgcn.models.feature_gcn import FeatureGCN, OfficialFeatureGCN
from dgcn.models.official import (
    OFFICIAL_KEY_MAP,
    convert_official_state_dict,
    load_official_checkpoint,
)
from dgcn.models.segnet import AuxHead, ContextFCNHead, DGCNet

__all__ = [
    "AuxHead",
    "ContextFCNHead",
    "CoordinateGCN",
    "DGCNet",
    "DualGCN",
    "DualGCNHead",
    "FeatureGCN",
    "ModelSpec",
    "OFFICIAL_KEY_MAP",
    "OfficialCoordinateGCN",
    "OfficialFeatureGCN",
    "PRESETS",
    "ResNetBackbone",
    "build_from_spec",
    "build_model",
    "convert_official_state_dict",
    "deep_stem_resnet101",
    "load_official_checkpoint",
    "model_spec",
    "torchvision_resnet",
]
