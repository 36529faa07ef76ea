"""Datasets: the Cityscapes label table, the Cityscapes loader, MiniCity, PASCAL Context
(:mod:`dgcn.datasets.pascal_context`), joint transforms, and the datasets of a config
(``prepare_data``, ``build_dataset``)."""

from dgcn.datasets.build import build_dataset, data_transforms, image_paths, prepare_data
from dgcn.datasets.cityscapes import (
    Cityscapes,
    check_tree,
    label_ids_to_train_ids,
    load_pair,
    read_label,
    read_photo,
    scan_split,
)
from dgcn.datasets.labels import CLASS_NAMES, IGNORE_INDEX, LABELS, NUM_CLASSES, PALETTE
from dgcn.datasets.minicity import (
    CONTEXT_CLASSES,
    DEFAULT_ROOT,
    ensure_minicity,
    generate_scene,
    make_minicity,
)
from dgcn.datasets.pascal_context import (
    PascalContext,
    check_pascal_context,
    convert_pascal_context,
    make_synthetic_pascal_context,
)
from dgcn.datasets.transforms import eval_transforms, train_transforms

__all__ = [
    "CLASS_NAMES",
    "CONTEXT_CLASSES",
    "Cityscapes",
    "DEFAULT_ROOT",
    "IGNORE_INDEX",
    "LABELS",
    "NUM_CLASSES",
    "PALETTE",
    "PascalContext",
    "build_dataset",
    "check_pascal_context",
    "check_tree",
    "convert_pascal_context",
    "data_transforms",
    "ensure_minicity",
    "eval_transforms",
    "generate_scene",
    "image_paths",
    "label_ids_to_train_ids",
    "load_pair",
    "make_minicity",
    "make_synthetic_pascal_context",
    "prepare_data",
    "read_label",
    "read_photo",
    "scan_split",
    "train_transforms",
]
