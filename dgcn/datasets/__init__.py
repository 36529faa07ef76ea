"""Datasets: the Cityscapes label table, the Cityscapes loader, MiniCity, joint transforms."""

from dgcn.datasets.cityscapes import Cityscapes, check_tree, load_pair, scan_split
from dgcn.datasets.labels import CLASS_NAMES, IGNORE_INDEX, LABELS, NUM_CLASSES, PALETTE
from dgcn.datasets.minicity import DEFAULT_ROOT, ensure_minicity, generate_scene, make_minicity
from dgcn.datasets.transforms import eval_transforms, train_transforms

__all__ = [
    "CLASS_NAMES",
    "Cityscapes",
    "DEFAULT_ROOT",
    "IGNORE_INDEX",
    "LABELS",
    "NUM_CLASSES",
    "PALETTE",
    "check_tree",
    "ensure_minicity",
    "eval_transforms",
    "generate_scene",
    "load_pair",
    "make_minicity",
    "scan_split",
    "train_transforms",
]
