"""PASCAL Context: the 59-class table, the loader of the official release (``.mat`` labels or
converted PNGs), the converter, the data check and a small synthetic tree."""

from dgcn.datasets.pascal_context.convert import convert_pascal_context
from dgcn.datasets.pascal_context.dataset import (
    PascalContext,
    check_pascal_context,
    load_pair,
    scan_split,
    voc_folder,
)
from dgcn.datasets.pascal_context.labels import (
    CLASS_NAMES_59,
    CLASS_NAMES_60,
    CLASSES_59,
    OFFICIAL_ORDER_IDS,
    ORIGINAL_IDS,
    PALETTE_59,
    PALETTE_60,
    class_names,
    context_to_train_lut,
    full_to_context_lut,
    full_to_train_lut,
    palette,
)
from dgcn.datasets.pascal_context.synthetic import make_synthetic_pascal_context

__all__ = [
    "CLASSES_59",
    "CLASS_NAMES_59",
    "CLASS_NAMES_60",
    "OFFICIAL_ORDER_IDS",
    "ORIGINAL_IDS",
    "PALETTE_59",
    "PALETTE_60",
    "PascalContext",
    "check_pascal_context",
    "class_names",
    "context_to_train_lut",
    "convert_pascal_context",
    "full_to_context_lut",
    "full_to_train_lut",
    "load_pair",
    "make_synthetic_pascal_context",
    "palette",
    "scan_split",
    "voc_folder",
]
