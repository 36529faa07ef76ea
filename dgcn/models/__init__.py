"""DGCNet models: the graph modules and the other context modules, heads, backbones, whole
networks, presets and weights I/O."""

from dgcn.models import profile
from dgcn.models.backbone import (
    ResNetBackbone,
    deep_stem_resnet101,
    micro_resnet,
    torchvision_resnet,
)
from dgcn.models.build import (
    PRESETS,
    ModelSpec,
    build_from_spec,
    build_model,
    convert_official_state_dict,
    load_official_checkpoint,
    model_spec,
)
from dgcn.models.context import GlobalPoolingContext, NonLocalContext, PyramidPoolingContext
from dgcn.models.coordinate_gcn import CoordinateGCN, OfficialCoordinateGCN
from dgcn.models.dual_gcn import DualGCN, DualGCNHead
from dgcn.models.feature_gcn import FeatureGCN, OfficialFeatureGCN
from dgcn.models.network import AuxHead, ContextFCNHead, DGCNet
from dgcn.models.official import OFFICIAL_KEY_MAP
from dgcn.models.weight_files import (
    DEEP_STEM_IMAGENET_URL,
    fetch_deep_stem_imagenet,
    load_imagenet_state_dict,
)
from dgcn.models.weights import (
    convert_deep_stem_imagenet,
    load_pretrained_backbone,
    upgrade_state_dict,
)

__all__ = [
    "AuxHead",
    "ContextFCNHead",
    "CoordinateGCN",
    "DEEP_STEM_IMAGENET_URL",
    "DGCNet",
    "DualGCN",
    "DualGCNHead",
    "FeatureGCN",
    "GlobalPoolingContext",
    "ModelSpec",
    "NonLocalContext",
    "OFFICIAL_KEY_MAP",
    "OfficialCoordinateGCN",
    "OfficialFeatureGCN",
    "PRESETS",
    "PyramidPoolingContext",
    "ResNetBackbone",
    "build_from_spec",
    "build_model",
    "convert_deep_stem_imagenet",
    "convert_official_state_dict",
    "deep_stem_resnet101",
    "fetch_deep_stem_imagenet",
    "load_imagenet_state_dict",
    "load_official_checkpoint",
    "load_pretrained_backbone",
    "micro_resnet",
    "model_spec",
    "profile",
    "torchvision_resnet",
    "upgrade_state_dict",
]
