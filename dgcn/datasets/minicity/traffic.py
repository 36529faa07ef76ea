"""The big vehicles crossing a MiniCity scene: lengths, placement on a lane, and version 2's
mixed traffic (:mod:`dgcn.datasets.minicity.scene` describes the rules). Every function draws
from the scene's random generator in a fixed order, so a scene stays byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dgcn.datasets.minicity.drawing import BUS, TRAIN, TRUCK, Camera

#: the height of every truck, bus and train (m): the three differ only in length
BIG_HEIGHT = 3.2
#: the lengths (m) of a truck and of a bus, drawn uniformly (the ranges do not overlap)
TRUCK_LENGTH = (5.5, 8.0)
BUS_LENGTH = (10.5, 13.5)
#: a train's length, as a share of the width of its lane that the image shows
TRAIN_SPAN = (0.8, 1.4)
#: version 2: the share of the images with a cross street whose far lane carries a train
TRAIN_SHARE = 0.5
#: version 2: the share of the lanes (where it fits) in which a second truck or bus follows
#: the first, and the gap between the two (m)
SECOND_SHARE = 0.4
SECOND_GAP = (2.0, 6.0)


@dataclass(frozen=True)
class BigVehicle:
    """A truck, bus or train as a scene draws it (``generate_scene(..., vehicles=[])``).

    ``label`` is its Cityscapes label id, ``depth`` the distance of its side face (m),
    ``x0`` and ``length`` its start and length along the cross street (m), and ``box`` its
    whole side face projected to pixels, ``(left, top, right, bottom)`` as floats measured from
    the image's top-left corner (a pixel's centre at +0.5), not clipped to the image; nearer
    objects may hide part of it. Its length over its height is the same
    in pixels and in metres: ``length / BIG_HEIGHT``.
    """

    label: int
    depth: float
    x0: float
    length: float
    box: tuple[float, float, float, float]

    @property
    def name(self) -> str:
        """ "truck", "bus" or "train"."""
        return {TRUCK: "truck", BUS: "bus", TRAIN: "train"}[self.label]

    @classmethod
    def seen(cls, cam: Camera, label: int, depth: float, x0: float, length: float) -> BigVehicle:
        """The record of a vehicle drawn by ``cam`` (see :meth:`Canvas.frontal`)."""
        left, right = cam.x(x0, depth), cam.x(x0 + length, depth)
        box = (left, cam.y(BIG_HEIGHT, depth), right, cam.y(0.0, depth))
        return cls(int(label), float(depth), float(x0), float(length), box)


def big_length(rng: np.random.Generator, label: int) -> float:
    """A truck's or a bus's length in metres (the ranges of v1, which do not overlap)."""
    return float(rng.uniform(*TRUCK_LENGTH) if label == TRUCK else rng.uniform(*BUS_LENGTH))


def train_span(rng: np.random.Generator, lo: float, hi: float) -> tuple[float, float]:
    """``(x0, length)`` of a train on a lane visible from ``lo`` to ``hi``: most of the view."""
    length = (hi - lo) * float(rng.uniform(*TRAIN_SPAN))
    return float(rng.uniform(lo - 0.3 * length, hi - 0.7 * length)), length


def place(rng: np.random.Generator, lo: float, hi: float, length: float) -> tuple[float, bool]:
    """``(x0, inside)``: the start of a truck or a bus of ``length`` on a lane visible from
    ``lo`` to ``hi``, wholly inside the view where it fits (``inside``), else centred on it."""
    if hi - lo > length:
        return float(rng.uniform(lo, hi - length)), True
    return float(rng.uniform(lo - length / 2, hi - length / 2)), False


def mixed_traffic(
    rng: np.random.Generator,
    lanes: tuple[float, float],
    visible: Callable[[float], tuple[float, float]],
) -> list[tuple[float, int, float, float]]:
    """Version 2's crossing traffic: two different big-vehicle classes in every image with a
    cross street, side by side at two depths (one per lane), and sometimes a second vehicle
    behind the first in a lane.

    Half the time the far lane carries a train (most of the view; on the near lane it would
    hide the other vehicle) and the near lane a truck or a bus; otherwise one lane carries a
    truck and the other a bus. A truck or a bus is placed wholly
    inside the image when it fits, so that its whole extent is visible; a second truck or bus
    follows in the same lane (2-6 m behind) in 40 % of the lanes where it fits.

    Returns:
        ``(depth, label, x0, length)`` per vehicle, in metres.
    """
    if (
        rng.random() < TRAIN_SHARE
    ):  # the train on the far lane, where a truck or a bus cannot hide it
        kinds = [TRUCK if rng.random() < 0.5 else BUS, TRAIN]
    else:
        kinds = [TRUCK, BUS] if rng.random() < 0.5 else [BUS, TRUCK]
    out = []
    for zz, label in zip(lanes, kinds, strict=True):
        lo, hi = visible(zz)
        if label == TRAIN:
            out.append((zz, TRAIN, *train_span(rng, lo, hi)))
            continue
        length = big_length(rng, label)
        x0, inside = place(rng, lo, hi, length)
        out.append((zz, label, x0, length))
        if inside and rng.random() < SECOND_SHARE:  # a second one, where the lane leaves room
            other = TRUCK if rng.random() < 0.5 else BUS
            second = big_length(rng, other)
            gap = float(rng.uniform(*SECOND_GAP))
            if x0 - gap - second >= lo:
                out.append((zz, other, x0 - gap - second, second))
            elif x0 + length + gap + second <= hi:
                out.append((zz, other, x0 + length + gap, second))
    return out
