"""The Cityscapes label table: one source for ids, train ids, class names and colours.

Each row is (name, id, train_id, category, color) as defined by the Cityscapes benchmark;
``train_id`` 255 means "ignored in training and evaluation". The 19 evaluated classes are the
rows with ``train_id`` 0..18.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

IGNORE_INDEX = 255


class Label(NamedTuple):
    name: str
    id: int
    train_id: int
    category: str
    color: tuple[int, int, int]


LABELS: tuple[Label, ...] = (
    Label("unlabeled", 0, 255, "void", (0, 0, 0)),
    Label("ego vehicle", 1, 255, "void", (0, 0, 0)),
    Label("rectification border", 2, 255, "void", (0, 0, 0)),
    Label("out of roi", 3, 255, "void", (0, 0, 0)),
    Label("static", 4, 255, "void", (0, 0, 0)),
    Label("dynamic", 5, 255, "void", (111, 74, 0)),
    Label("ground", 6, 255, "void", (81, 0, 81)),
    Label("road", 7, 0, "flat", (128, 64, 128)),
    Label("sidewalk", 8, 1, "flat", (244, 35, 232)),
    Label("parking", 9, 255, "flat", (250, 170, 160)),
    Label("rail track", 10, 255, "flat", (230, 150, 140)),
    Label("building", 11, 2, "construction", (70, 70, 70)),
    Label("wall", 12, 3, "construction", (102, 102, 156)),
    Label("fence", 13, 4, "construction", (190, 153, 153)),
    Label("guard rail", 14, 255, "construction", (180, 165, 180)),
    Label("bridge", 15, 255, "construction", (150, 100, 100)),
    Label("tunnel", 16, 255, "construction", (150, 120, 90)),
    Label("pole", 17, 5, "object", (153, 153, 153)),
    Label("polegroup", 18, 255, "object", (153, 153, 153)),
    Label("traffic light", 19, 6, "object", (250, 170, 30)),
    Label("traffic sign", 20, 7, "object", (220, 220, 0)),
    Label("vegetation", 21, 8, "nature", (107, 142, 35)),
    Label("terrain", 22, 9, "nature", (152, 251, 152)),
    Label("sky", 23, 10, "sky", (70, 130, 180)),
    Label("person", 24, 11, "human", (220, 20, 60)),
    Label("rider", 25, 12, "human", (255, 0, 0)),
    Label("car", 26, 13, "vehicle", (0, 0, 142)),
    Label("truck", 27, 14, "vehicle", (0, 0, 70)),
    Label("bus", 28, 15, "vehicle", (0, 60, 100)),
    Label("caravan", 29, 255, "vehicle", (0, 0, 90)),
    Label("trailer", 30, 255, "vehicle", (0, 0, 110)),
    Label("train", 31, 16, "vehicle", (0, 80, 100)),
    Label("motorcycle", 32, 17, "vehicle", (0, 0, 230)),
    Label("bicycle", 33, 18, "vehicle", (119, 11, 32)),
    Label("license plate", -1, 255, "vehicle", (0, 0, 142)),
)

NUM_CLASSES = 19
TRAIN_LABELS: tuple[Label, ...] = tuple(
    sorted((lb for lb in LABELS if lb.train_id != IGNORE_INDEX), key=lambda lb: lb.train_id)
)
CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in TRAIN_LABELS)
#: [19, 3] uint8 colours of the train ids, in train-id order
PALETTE = np.array([lb.color for lb in TRAIN_LABELS], dtype=np.uint8)
#: ids that may appear in a labelIds PNG (0..33; -1 is never written to PNGs)
VALID_IDS = frozenset(lb.id for lb in LABELS if lb.id >= 0)
NAME_TO_ID = {lb.name: lb.id for lb in LABELS}


def id_to_train_id_lut() -> np.ndarray:
    """A 256-entry uint8 table: ``lut[label_id] = train_id``; unknown ids map to 255."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for lb in LABELS:
        if lb.id >= 0:
            lut[lb.id] = lb.train_id
    return lut


def train_id_to_id_lut() -> np.ndarray:
    """A 256-entry uint8 table: ``lut[train_id] = label_id`` (255 -> 0, unlabeled)."""
    lut = np.zeros(256, dtype=np.uint8)
    for lb in TRAIN_LABELS:
        lut[lb.train_id] = lb.id
    return lut


def id_to_train_id(label_id: int) -> int:
    """The train id of a Cityscapes label id (-1, the license plate, included)."""
    for lb in LABELS:
        if lb.id == label_id:
            return lb.train_id
    raise KeyError(f"{label_id} is not a Cityscapes label id")
