"""The PASCAL Context label table: the 59 benchmark classes among the 459 of the full release.

The full annotation (``trainval/<id>.mat``, key ``LabelMap``) numbers 459 classes by their line
in ``labels.txt`` (1..459; 0 = unlabeled). The benchmark keeps the 59 most frequent; every other
pixel is "background". Two settings exist (docs/reference/pascal_context.md):

* 59 classes (``classes=59``): background is ignored (255); the classes are 0..58.
* 60 classes (``classes=60``): background is class 0 and is scored; the classes are 1..59.

Class order: the 59 classes are numbered by ascending original id, which is alphabetical order.
This is the order the common converters and loaders train with (the PNG values of the
``SegmentationClassContext`` layout). The official ``59_labels.txt`` lists the same classes in
another order (the 20 VOC classes first): :data:`OFFICIAL_ORDER_IDS`. Per-class tables and any
pretrained head depend on the order; the mIoU does not.
"""

from __future__ import annotations

import colorsys

import numpy as np

from dgcn.datasets.labels import IGNORE_INDEX

#: classes of the full annotation: ids 1..459 in ``labels.txt`` (0 = unlabeled)
NUM_FULL_CLASSES = 459

#: (original id in labels.txt, name) of the 59 benchmark classes, in ascending id order
CLASSES_59: tuple[tuple[int, str], ...] = (
    (2, "aeroplane"),
    (9, "bag"),
    (18, "bed"),
    (19, "bedclothes"),
    (22, "bench"),
    (23, "bicycle"),
    (25, "bird"),
    (31, "boat"),
    (33, "book"),
    (34, "bottle"),
    (44, "building"),
    (45, "bus"),
    (46, "cabinet"),
    (59, "car"),
    (65, "cat"),
    (68, "ceiling"),
    (72, "chair"),
    (80, "cloth"),
    (85, "computer"),
    (98, "cow"),
    (104, "cup"),
    (105, "curtain"),
    (113, "dog"),
    (115, "door"),
    (144, "fence"),
    (158, "floor"),
    (159, "flower"),
    (162, "food"),
    (187, "grass"),
    (189, "ground"),
    (207, "horse"),
    (220, "keyboard"),
    (232, "light"),
    (258, "motorbike"),
    (259, "mountain"),
    (260, "mouse"),
    (284, "person"),
    (295, "plate"),
    (296, "platform"),
    (308, "pottedplant"),
    (324, "road"),
    (326, "rock"),
    (347, "sheep"),
    (349, "shelves"),
    (354, "sidewalk"),
    (355, "sign"),
    (360, "sky"),
    (366, "snow"),
    (368, "sofa"),
    (397, "table"),
    (415, "track"),
    (416, "train"),
    (420, "tree"),
    (424, "truck"),
    (427, "tvmonitor"),
    (440, "wall"),
    (445, "water"),
    (454, "window"),
    (458, "wood"),
)

#: the 59 original ids, ascending: class k of the 59-class setting is ORIGINAL_IDS[k]
ORIGINAL_IDS: tuple[int, ...] = tuple(i for i, _ in CLASSES_59)
#: the 59 class names (59-class setting: index = class)
CLASS_NAMES_59: tuple[str, ...] = tuple(name for _, name in CLASSES_59)
#: the 60 class names (60-class setting: 0 = background, then the 59)
CLASS_NAMES_60: tuple[str, ...] = ("background", *CLASS_NAMES_59)

#: the same 59 ids in the official ``59_labels.txt`` order (VOC classes first); that file
#: spells table, cloth and bedclothes as diningtable, clothes and bedcloth
OFFICIAL_ORDER_IDS: tuple[int, ...] = (
    2, 23, 25, 31, 34, 45, 59, 65, 72, 98, 397, 113, 207, 258, 284, 308, 347, 368, 416, 427,
    9, 18, 22, 33, 44, 46, 68, 80, 85, 104, 115, 144, 158, 159, 162, 187, 189, 220, 232, 259,
    260, 105, 296, 355, 295, 324, 326, 349, 354, 360, 366, 19, 415, 420, 424, 440, 445, 454, 458,
)  # fmt: skip


def _palette_59() -> np.ndarray:
    """59 distinct colours: hues spread by the golden ratio, three lightness bands."""
    colors = []
    for k in range(len(CLASSES_59)):
        hue = (k * 0.618034) % 1.0
        lightness = (0.45, 0.6, 0.35)[k % 3]
        red, green, blue = colorsys.hls_to_rgb(hue, lightness, 0.75)
        colors.append((round(255 * red), round(255 * green), round(255 * blue)))
    return np.array(colors, dtype=np.uint8)


#: [59, 3] uint8 colours of the 59 classes (59-class setting order)
PALETTE_59 = _palette_59()
#: [60, 3] uint8 colours of the 60-class setting (background black, then the 59)
PALETTE_60 = np.concatenate([np.zeros((1, 3), np.uint8), PALETTE_59])

SETTINGS = (59, 60)


def check_setting(classes: int) -> int:
    """``classes`` if it is 59 or 60; otherwise a ValueError naming the two settings."""
    if classes not in SETTINGS:
        raise ValueError(
            f"PASCAL Context has two settings, 59 classes (background ignored) or 60 (background "
            f"scored); got classes={classes!r}"
        )
    return classes


def class_names(classes: int = 59) -> tuple[str, ...]:
    """The class names of a setting, in class-index order."""
    return CLASS_NAMES_59 if check_setting(classes) == 59 else CLASS_NAMES_60


def palette(classes: int = 59) -> np.ndarray:
    """The [classes, 3] uint8 colours of a setting."""
    return PALETTE_59 if check_setting(classes) == 59 else PALETTE_60


def full_to_context_lut() -> np.ndarray:
    """A 460-entry uint8 table from the full ids (0..459) to the 60-value layout: 0 =
    background (unlabeled or any class outside the 59), 1..59 = the 59 classes in ascending-id
    order. These are the values of the ``SegmentationClassContext`` PNGs."""
    lut = np.zeros(NUM_FULL_CLASSES + 1, dtype=np.uint8)
    lut[list(ORIGINAL_IDS)] = np.arange(1, len(ORIGINAL_IDS) + 1, dtype=np.uint8)
    return lut


def context_to_train_lut(classes: int = 59) -> np.ndarray:
    """A 256-entry uint8 table from the 60-value layout (0..59) to the train ids of a setting.

    59 classes: 0 (background) -> 255, k -> k - 1 (the "reduce zero label" rule). 60 classes:
    the identity on 0..59. Values above 59 map to 255.
    """
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    values = np.arange(len(ORIGINAL_IDS) + 1, dtype=np.uint8)
    if check_setting(classes) == 59:
        lut[1 : len(values)] = values[:-1]
    else:
        lut[: len(values)] = values
    return lut


def full_to_train_lut(classes: int = 59) -> np.ndarray:
    """A 460-entry uint8 table from the full ids (0..459) straight to a setting's train ids."""
    return context_to_train_lut(classes)[full_to_context_lut()]
