"""MiniCity: synthetic street scenes written in the Cityscapes layout.

MiniCity is the data of the CPU demo, the tests and the notebooks: no download, no licence, a few
seconds to generate. It is written exactly like Cityscapes, so the ordinary loader
(:mod:`dgcn.datasets.cityscapes`) reads it::

    out/leftImg8bit/<split>/<city>/<city>_<seq>_000019_leftImg8bit.png   RGB uint8
    out/gtFine/<split>/<city>/<city>_<seq>_000019_gtFine_labelIds.png    L uint8, Cityscapes ids
    out/gtFine/<split>/<city>/<city>_<seq>_000019_gtFine_color.png       RGB, colours of the ids
    out/minicity.json                                                    parameters, written last

Every split has its own invented cities, ``seq`` is the image index, and image ``i`` of a split
is drawn from ``np.random.default_rng([seed, split_index, i])``: the same seed gives
byte-identical files whatever the number of images asked for.

Generative rules
----------------
A scene is a pinhole view of a straight street from a car: camera height 1.2-1.6 m, focal
length 0.75-1 image width, a horizon at 36-50 % of the height and a vanishing point near the
centre. Everything is placed in metres and projected, so every size scales with the image and
nothing is a fixed number of pixels. Back to front:

* **sky** (id 23) above the horizon: a vertical blue-to-haze gradient with soft clouds.
* **ground**: the road (7) is the band of lateral positions around the camera; a sidewalk (8)
  runs along each side, optionally followed by a strip of **terrain** (22, grass). In 85 % of the
  scenes a cross street cuts the view at 16-40 m: a horizontal band of road with sidewalks on
  both sides.
* a **far skyline** closes the street at 60-220 m: distant buildings (11) and trees (21).
* **facades** line both sides of the street (planes converging to the vanishing point): tall
  buildings (11) with window grids above a plain ground floor, and gaps in which a low
  **wall** (12) or a **fence** (13, a lattice over what lies behind) stands in front of hedges and
  trees (21). A building seen through a gap or across the cross street shows its front face.
* **street objects**, painted far to near so nearer ones occlude farther ones: cars (26, several
  colours, rear view in the lanes and parked at the curbs, side view on the cross street); trucks
  (27), buses (28) or a train (31, never together with trucks or buses) crossing side-on on the
  cross street; persons (24) on the sidewalks and on the crossing; riders (25) on bicycles (33)
  or motorcycles (32); poles (17): street lamps, posts carrying traffic signs (20) and traffic
  lights (19) at the crossing corners; sidewalk trees (21); void clutter such as bins (4).
* some scenes keep the **ego vehicle** (1) as a curved hood at the bottom, and some a black
  **unlabeled** (0) border, so ignore handling is exercised.

The image is rendered from a material per pixel (a colour, a per-pixel grain and a soft blotchy
variation), then lit: a global gain (0.8-1.2), colour cast and offset, and Gaussian sensor
noise. Across the images the layout varies (horizon, focal length, road, sidewalk and terrain
widths, building heights and colours, gaps, the cross street, the number, kind, place and size
of every object), so a network has to generalise rather than memorise.

About 13 of the 19 evaluated classes appear in a typical image; over 200 images all 19 do.
Generation runs at roughly 70-80 images/s at 128x256 on one CPU core (PNG writing included) and
about 0.4 s per image at 1024x2048.

Deliberately ambiguous classes
------------------------------
Three groups share their local appearance exactly and differ only by long-range context, so a
model with global context (DGCNet's graph reasoning) has something to gain over a local one:

1. **road vs sidewalk**: one asphalt material, same colour, grain and blotches. A sidewalk is a
   strip running along the facades (and along the cross street); the road is the central region
   between the two sidewalks, widening towards the camera.
2. **truck vs bus vs train**: one body material, the same height (3.2 m), under-body band,
   window row (period 1.6 m) and wheel spacing (4 m). Only the overall length tells them apart:
   a truck is 5.5-8 m, a bus 10.5-13.5 m, a train spans most of the image width (and appears
   without trucks or buses).
3. **building vs wall**: walls use the facade colours and the facade's plain ground-floor
   texture (the same joints). A building is tall, reaches the top of the image or the sky and
   has windows higher up; a wall is a low strip (0.5-1.8 m) with hedges and trees behind it.

Persons and riders also share clothes and skin materials: a rider is recognised by the bicycle
or motorcycle under it.

Generate from one process at a time (e.g. rank 0 under ``torchrun``, the others waiting): two
processes writing the same folder at once may delete each other's files.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from dgcn.datasets.labels import LABELS, NAME_TO_ID
from dgcn.errors import DatasetError
from dgcn.fileio import atomic_path, write_text_atomic

__all__ = [
    "CITIES",
    "CONTEXT_CLASSES",
    "DEFAULT_ROOT",
    "GENERATOR_VERSION",
    "SPLITS",
    "ensure_minicity",
    "generate_scene",
    "make_minicity",
]

DEFAULT_ROOT = "data/minicity"
GENERATOR_VERSION = 1
#: the three groups of look-alike classes that only long-range context tells apart (above)
CONTEXT_CLASSES = ("road", "sidewalk", "building", "wall", "truck", "bus", "train")
SPLITS = ("train", "val", "test")
#: invented city names, different for every split
CITIES: dict[str, tuple[str, ...]] = {
    "train": ("tarnholm", "velbrook", "quillmont"),
    "val": ("marrowby",),
    "test": ("lindqvale",),
}
FRAME = 19
MARKER = "minicity.json"

UNLABELED = NAME_TO_ID["unlabeled"]
EGO = NAME_TO_ID["ego vehicle"]
STATIC = NAME_TO_ID["static"]
ROAD = NAME_TO_ID["road"]
SIDEWALK = NAME_TO_ID["sidewalk"]
BUILDING = NAME_TO_ID["building"]
WALL = NAME_TO_ID["wall"]
FENCE = NAME_TO_ID["fence"]
POLE = NAME_TO_ID["pole"]
LIGHT = NAME_TO_ID["traffic light"]
SIGN = NAME_TO_ID["traffic sign"]
VEGETATION = NAME_TO_ID["vegetation"]
TERRAIN = NAME_TO_ID["terrain"]
SKY = NAME_TO_ID["sky"]
PERSON = NAME_TO_ID["person"]
RIDER = NAME_TO_ID["rider"]
CAR = NAME_TO_ID["car"]
TRUCK = NAME_TO_ID["truck"]
BUS = NAME_TO_ID["bus"]
TRAIN = NAME_TO_ID["train"]
MOTORCYCLE = NAME_TO_ID["motorcycle"]
BICYCLE = NAME_TO_ID["bicycle"]

#: [256, 3] uint8: the Cityscapes colour of every label id (black for unused ids)
ID_COLORS = np.zeros((256, 3), dtype=np.uint8)
for _label in LABELS:
    if _label.id >= 0:
        ID_COLORS[_label.id] = _label.color

# facade colours shared by buildings and walls (beige, grey, brick, white, ochre, dark grey)
_FACADES = (
    (188, 176, 154),
    (158, 152, 146),
    (150, 92, 72),
    (212, 206, 196),
    (182, 150, 100),
    (118, 118, 124),
)
_CAR_COLORS = (
    (165, 28, 30),
    (30, 52, 135),
    (24, 24, 28),
    (222, 222, 226),
    (150, 155, 162),
    (32, 72, 52),
    (95, 40, 90),
)
_CLOTHES = (
    (30, 30, 35),
    (40, 50, 110),
    (150, 30, 30),
    (210, 210, 200),
    (90, 90, 95),
    (60, 90, 60),
    (180, 140, 60),
    (100, 60, 40),
)
_SKIN = ((222, 180, 150), (190, 140, 105), (140, 95, 65), (90, 60, 40))
_BIG_BODY = (204, 190, 122)  # trucks, buses and trains: one body colour
# kinds of stretches along the facade line, and their probabilities
_SEGMENTS = ("building", "wall", "fence", "trees")
_SEGMENT_P = (0.58, 0.22, 0.12, 0.08)
_FLOOR_H = 3.5  # ground-floor height of a building (no windows below)
_BIG_TOP = 3.2  # height of trucks, buses and trains


# --------------------------------------------------------------------------------------------
# Projection and drawing primitives
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Camera:
    """A pinhole camera looking along +Z: focal length and vanishing point in pixels."""

    f: float  # focal length (pixels)
    xv: float  # column of the vanishing point
    yh: float  # row of the horizon
    hc: float  # camera height above the ground (metres)

    def x(self, lateral: float, z: float) -> float:
        return self.xv + self.f * lateral / z

    def y(self, height: float, z: float) -> float:
        return self.yh + self.f * (self.hc - height) / z


@dataclass
class _Patch:
    """The pixels of a planar world rectangle, clipped to the image.

    ``u`` is the coordinate along the plane (lateral X for a plane facing the camera, depth Z for
    a facade along the street), ``v`` the height above the ground, both in metres, broadcastable
    to the patch shape; ``pz`` is the size of one pixel in metres; ``inside`` marks the pixels of
    the rectangle (None: the whole box).
    """

    r0: int
    r1: int
    c0: int
    c1: int
    u: np.ndarray
    v: np.ndarray
    pz: float | np.ndarray
    inside: np.ndarray | None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.r1 - self.r0, self.c1 - self.c0)


def _pixel_range(a: float, b: float, n: int) -> tuple[int, int]:
    """Indices of the pixels whose centres lie in [a, b), clipped to [0, n)."""
    a = min(max(a, -1.0), n + 1.0)
    b = min(max(b, -1.0), n + 1.0)
    return max(0, math.ceil(a - 0.5)), min(n, math.ceil(b - 0.5))


def _capsule(
    u: np.ndarray, v: np.ndarray, p: tuple[float, float], q: tuple[float, float], radius: float
) -> np.ndarray:
    """Points within ``radius`` of the segment p-q."""
    du, dv = q[0] - p[0], q[1] - p[1]
    length2 = max(du * du + dv * dv, 1e-12)
    t = np.clip(((u - p[0]) * du + (v - p[1]) * dv) / length2, 0.0, 1.0)
    return (u - p[0] - t * du) ** 2 + (v - p[1] - t * dv) ** 2 <= radius * radius


def _disk(u: np.ndarray, v: np.ndarray, cu: float, cv: float, radius: float) -> np.ndarray:
    return (u - cu) ** 2 + (v - cv) ** 2 <= radius * radius


def _box(u: np.ndarray, v: np.ndarray, u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    return (u >= min(u0, u1)) & (u < max(u0, u1)) & (v >= v0) & (v < v1)


class _Canvas:
    """A label map and a material map painted together, plus the table of materials."""

    def __init__(self, height: int, width: int, cam: _Camera) -> None:
        self.h, self.w, self.cam = height, width, cam
        self.label = np.full((height, width), UNLABELED, dtype=np.uint8)
        self.mat = np.zeros((height, width), dtype=np.uint8)
        self.colors: list[tuple[float, float, float]] = []
        self.grain: list[float] = []
        self.blotch: list[float] = []
        self._known: dict[tuple[float, ...], int] = {}

    def material(self, rgb: tuple[float, ...], grain: float = 5.0, blotch: float = 0.05) -> int:
        """The index of a material: base colour, per-pixel grain (levels), soft variation (ratio).

        Identical materials share one index, so the table stays well below the 256 entries a
        uint8 material map can address.
        """
        key = (float(rgb[0]), float(rgb[1]), float(rgb[2]), float(grain), float(blotch))
        index = self._known.get(key)
        if index is None:
            index = min(len(self.colors), 255)
            if index == len(self.colors):
                self.colors.append(key[:3])
                self.grain.append(key[3])
                self.blotch.append(key[4])
            self._known[key] = index
        return index

    def frontal(self, u0: float, u1: float, v0: float, v1: float, z: float) -> _Patch | None:
        """The rectangle lateral [u0, u1] x height [v0, v1] (metres) of the plane at depth z."""
        cam = self.cam
        s = cam.f / z
        c0, c1 = _pixel_range(cam.xv + s * min(u0, u1), cam.xv + s * max(u0, u1), self.w)
        r0, r1 = _pixel_range(cam.yh + s * (cam.hc - v1), cam.yh + s * (cam.hc - v0), self.h)
        if c0 >= c1 or r0 >= r1:
            return None
        u = (np.arange(c0, c1, dtype=np.float32) + 0.5 - cam.xv) / s
        v = cam.hc - (np.arange(r0, r1, dtype=np.float32) + 0.5 - cam.yh) / s
        return _Patch(r0, r1, c0, c1, u[None, :], v[:, None], 1.0 / s, None)

    def side(self, lateral: float, z0: float, z1: float, v0: float, v1: float) -> _Patch | None:
        """The rectangle depth [z0, z1] x height [v0, v1] of the street-parallel plane X=lateral."""
        cam = self.cam
        xa, xb = cam.x(lateral, z0), cam.x(lateral, z1)
        c0, c1 = _pixel_range(min(xa, xb), max(xa, xb), self.w)
        if c0 >= c1:
            return None
        cols = np.arange(c0, c1, dtype=np.float32) + 0.5
        z = np.clip(cam.f * lateral / (cols - cam.xv), z0, z1)
        s = cam.f / z
        top = cam.yh + s * (cam.hc - v1)
        bottom = cam.yh + s * (cam.hc - v0)
        r0, r1 = _pixel_range(float(top.min()), float(bottom.max()), self.h)
        if r0 >= r1:
            return None
        rows = np.arange(r0, r1, dtype=np.float32)[:, None] + 0.5
        v = cam.hc - (rows - cam.yh) / s[None, :]
        inside = (v >= v0) & (v < v1)
        return _Patch(r0, r1, c0, c1, z[None, :], v, (1.0 / s)[None, :], inside)

    def put(self, p: _Patch, mask: np.ndarray | None, label: int, mat: int | np.ndarray) -> None:
        """Paint ``label`` and ``mat`` (a material or a per-pixel array) where mask holds."""
        labels = self.label[p.r0 : p.r1, p.c0 : p.c1]
        mats = self.mat[p.r0 : p.r1, p.c0 : p.c1]
        if mask is None and p.inside is None:  # the whole box
            labels[...] = label
            mats[...] = mat
            return
        if mask is None:
            full = p.inside
        else:
            full = mask if mask.shape == p.shape else np.broadcast_to(mask, p.shape)
            if p.inside is not None:
                full = full & p.inside
        labels[full] = label
        if isinstance(mat, np.ndarray):
            mats[full] = (mat if mat.shape == p.shape else np.broadcast_to(mat, p.shape))[full]
        else:
            mats[full] = mat


# --------------------------------------------------------------------------------------------
# Things
# --------------------------------------------------------------------------------------------


@dataclass
class _Shared:
    """Materials shared by several objects of a scene."""

    asphalt: int
    terrain: int
    leaves: tuple[int, ...]
    trunk: int
    glass: int
    tyre: int
    metal: int
    big_body: int
    big_glass: int
    big_under: int
    sky: int
    facades: tuple[tuple[int, int], ...]  # (plain, joint) pairs shared by buildings and walls


def _facade_pattern(
    p: _Patch, plain: int, joint: int, glass: int, windows: bool, period: float
) -> np.ndarray:
    """Materials of a facade: horizontal joints everywhere, windows above the ground floor.

    The joints are the same for buildings and walls (a wall is a building's ground floor); they
    are drawn only where they span at least a few pixels.
    """
    pz_min = float(np.min(p.pz))
    if pz_min < 0.15:
        out = np.where(((p.v % 0.6) < np.maximum(0.09, p.pz)) & (p.pz < 0.15), joint, plain)
    else:  # too far for joints
        out = np.full((1, 1), plain)
    if windows and pz_min < period / 4 and float(np.max(p.v)) > _FLOOR_H:
        up = p.v - _FLOOR_H
        fu = (p.u % period) / period
        fv = (up % 3.2) / 3.2
        big = p.pz < period / 4
        win = (up > 0) & (fu > 0.28) & (fu < 0.72) & (fv > 0.3) & (fv < 0.78) & big
        out = np.where(win, glass, out)
    return out.astype(np.uint8)


def _facade_materials(cv: _Canvas, rng: np.random.Generator) -> tuple[tuple[int, int], ...]:
    """The facade materials of a scene: every palette colour, jittered, plain and with joints."""
    out = []
    for colour in _FACADES:
        base = np.clip(np.array(colour, dtype=float) + rng.uniform(-12, 12, 3), 0, 255)
        plain = cv.material(tuple(base), grain=5.0, blotch=0.06)
        out.append((plain, cv.material(tuple(base * 0.78), grain=5.0, blotch=0.06)))
    return tuple(out)


def _facade(sh: _Shared, rng: np.random.Generator) -> tuple[int, int]:
    return sh.facades[int(rng.integers(len(sh.facades)))]


def _building_side(
    cv: _Canvas,
    rng: np.random.Generator,
    sh: _Shared,
    sign: int,
    dist: float,
    z0: float,
    z1: float,
    depth: float,
) -> None:
    """A building along the street: its side facade from z0 to z1 and its front face at z0."""
    height = float(rng.uniform(8.0, 28.0))
    plain, joint = _facade(sh, rng)
    period = float(rng.uniform(2.6, 4.0))
    front = cv.frontal(sign * dist, sign * (dist + depth), 0.0, height, z0)
    if front is not None:
        cv.put(front, None, BUILDING, _facade_pattern(front, plain, joint, sh.glass, True, period))
    face = cv.side(sign * dist, z0, z1, 0.0, height)
    if face is not None:
        cv.put(face, None, BUILDING, _facade_pattern(face, plain, joint, sh.glass, True, period))


def _tree(
    cv: _Canvas,
    rng: np.random.Generator,
    sh: _Shared,
    x: float,
    z: float,
    trunk_h: float,
    crown_r: float,
) -> None:
    """A tree in the plane at depth z: a trunk and a crown of overlapping disks."""
    p = cv.frontal(x - 1.6 * crown_r, x + 1.6 * crown_r, 0.0, trunk_h + 2.2 * crown_r, z)
    if p is None:
        return
    leaves = sh.leaves[rng.integers(len(sh.leaves))]
    half = max(0.14, 0.5 * p.pz)
    cv.put(p, _box(p.u, p.v, x - half, x + half, 0.0, trunk_h + crown_r), VEGETATION, sh.trunk)
    crown = np.zeros(p.shape, dtype=bool)
    for _ in range(int(rng.integers(3, 7))):
        cu = x + rng.uniform(-0.6, 0.6) * crown_r
        cvv = trunk_h + crown_r + rng.uniform(-0.35, 0.6) * crown_r
        crown |= _disk(p.u, p.v, cu, cvv, crown_r * rng.uniform(0.5, 0.8))
    cv.put(p, crown, VEGETATION, leaves)


def _person(cv: _Canvas, rng: np.random.Generator, x: float, z: float) -> None:
    """A pedestrian seen from the front or the back, legs apart when walking."""
    h = float(rng.uniform(1.55, 1.95))
    p = cv.frontal(x - 0.3 * h, x + 0.3 * h, 0.0, h, z)
    if p is None:
        return
    shirt = cv.material(_CLOTHES[rng.integers(len(_CLOTHES))], grain=5.0, blotch=0.08)
    trousers = cv.material(_CLOTHES[rng.integers(len(_CLOTHES))], grain=5.0, blotch=0.08)
    skin = cv.material(_SKIN[rng.integers(len(_SKIN))], grain=4.0, blotch=0.05)
    r = max(0.045 * h, 0.5 * p.pz)
    stride = float(rng.uniform(0.0, 0.12)) * h
    legs = _capsule(p.u, p.v, (x - 0.05 * h, 0.5 * h), (x - 0.05 * h - stride, r), r)
    legs |= _capsule(p.u, p.v, (x + 0.05 * h, 0.5 * h), (x + 0.05 * h + stride, r), r)
    cv.put(p, legs, PERSON, trousers)
    torso = _box(p.u, p.v, x - 0.13 * h, x + 0.13 * h, 0.47 * h, 0.82 * h)
    torso |= _capsule(p.u, p.v, (x - 0.15 * h, 0.8 * h), (x - 0.17 * h, 0.5 * h), r * 0.8)
    torso |= _capsule(p.u, p.v, (x + 0.15 * h, 0.8 * h), (x + 0.17 * h, 0.5 * h), r * 0.8)
    cv.put(p, torso, PERSON, shirt)
    head = _disk(p.u, p.v, x, 0.9 * h, max(0.065 * h, 0.5 * p.pz))
    head |= _box(p.u, p.v, x - 0.03 * h, x + 0.03 * h, 0.8 * h, 0.86 * h)
    cv.put(p, head, PERSON, skin)


def _two_wheeler(cv: _Canvas, rng: np.random.Generator, sh: _Shared, x: float, z: float) -> None:
    """A rider on a bicycle or a motorcycle, seen from the side, facing left or right."""
    d = 1.0 if rng.random() < 0.5 else -1.0
    motor = rng.random() < 0.5
    p = cv.frontal(x - 1.2, x + 1.2, 0.0, 1.95, z)
    if p is None:
        return
    u, v, pz = p.u, p.v, p.pz
    thin = max(0.03, 0.5 * pz)
    if motor:
        wheel_r, base, seat_h = 0.31, 0.72, 0.82
        paint = cv.material(_CAR_COLORS[rng.integers(len(_CAR_COLORS))], grain=4.0, blotch=0.05)
        rear, front = (x - d * base, wheel_r), (x + d * base, wheel_r)
        tyres = _disk(u, v, *rear, wheel_r) | _disk(u, v, *front, wheel_r)
        hubs = _disk(u, v, *rear, 0.5 * wheel_r) | _disk(u, v, *front, 0.5 * wheel_r)
        cv.put(p, tyres & ~hubs, MOTORCYCLE, sh.tyre)
        cv.put(
            p,
            hubs & ~_disk(u, v, *rear, 0.35 * wheel_r) & ~_disk(u, v, *front, 0.35 * wheel_r),
            MOTORCYCLE,
            sh.metal,
        )
        body = ((u - x) / 0.62) ** 2 + ((v - 0.58) / 0.2) ** 2 <= 1.0
        body |= _capsule(u, v, (x - d * 0.45, seat_h), (x + d * 0.15, 0.78), 0.08)
        body |= _capsule(u, v, front, (x + d * 0.5, 1.0), max(0.04, 0.5 * pz))
        cv.put(p, body, MOTORCYCLE, paint)
        seat, handle, pedal = (x - d * 0.2, seat_h), (x + d * 0.45, 1.0), (x + d * 0.1, 0.35)
    else:
        wheel_r, base, seat_h = 0.34, 0.52, 0.9
        frame_mat = cv.material(_CAR_COLORS[rng.integers(len(_CAR_COLORS))], grain=4.0)
        rear, front = (x - d * base, wheel_r), (x + d * base, wheel_r)
        ring = max(0.045, pz)
        rings = _disk(u, v, *rear, wheel_r) & ~_disk(u, v, *rear, wheel_r - ring)
        rings |= _disk(u, v, *front, wheel_r) & ~_disk(u, v, *front, wheel_r - ring)
        cv.put(p, rings, BICYCLE, sh.tyre)
        crank = (x - d * 0.05, 0.3)
        seat, handle, head_tube = (x - d * 0.2, seat_h), (x + d * 0.38, 1.0), (x + d * 0.36, 0.8)
        frame = np.zeros(p.shape, dtype=bool)
        for a, b in (
            (rear, crank),
            (rear, seat),
            (seat, crank),
            (crank, head_tube),
            (seat, head_tube),
            (head_tube, front),
            (head_tube, handle),
        ):
            frame |= _capsule(u, v, a, b, thin)
        cv.put(p, frame, BICYCLE, frame_mat)
        pedal = (crank[0] + d * 0.05, 0.18)
    # the rider: same clothes and skin as pedestrians
    shirt = cv.material(_CLOTHES[rng.integers(len(_CLOTHES))], grain=5.0, blotch=0.08)
    trousers = cv.material(_CLOTHES[rng.integers(len(_CLOTHES))], grain=5.0, blotch=0.08)
    skin = cv.material(_SKIN[rng.integers(len(_SKIN))], grain=4.0, blotch=0.05)
    hip = (seat[0], seat[1] + 0.06)
    shoulder = (seat[0] + d * 0.22, seat[1] + 0.6)
    knee = (seat[0] + d * 0.35, seat[1] - 0.05)
    limb = max(0.065, 0.5 * pz)
    legs = _capsule(u, v, hip, knee, limb) | _capsule(u, v, knee, pedal, limb)
    cv.put(p, legs, RIDER, trousers)
    torso = _capsule(u, v, hip, shoulder, max(0.14, 0.5 * pz))
    torso |= _capsule(u, v, shoulder, handle, max(0.05, 0.5 * pz))
    cv.put(p, torso, RIDER, shirt)
    cv.put(p, _disk(u, v, shoulder[0] + d * 0.06, shoulder[1] + 0.2, max(0.11, pz)), RIDER, skin)


def _car_rear(cv: _Canvas, rng: np.random.Generator, sh: _Shared, x: float, z: float) -> None:
    """A car seen from behind: body, cabin with rear window, tail lights, plate and tyres."""
    width = float(rng.uniform(1.7, 1.95))
    roof = float(rng.uniform(1.4, 1.6))
    p = cv.frontal(x - width / 2, x + width / 2, 0.0, roof, z)
    if p is None:
        return
    u, v = p.u, p.v
    paint = cv.material(_CAR_COLORS[rng.integers(len(_CAR_COLORS))], grain=4.0, blotch=0.06)
    hw = width / 2
    cv.put(
        p,
        _box(u, v, x - hw, x - hw + 0.28, 0.0, 0.4) | _box(u, v, x + hw - 0.28, x + hw, 0.0, 0.4),
        CAR,
        sh.tyre,
    )
    body = _box(u, v, x - hw, x + hw, 0.3, 0.95)
    t = np.clip((v - 0.95) / (roof - 0.95), 0.0, 1.0)
    cabin = (np.abs(u - x) <= hw * (0.92 - 0.2 * t)) & (v >= 0.95) & (v < roof)
    cv.put(p, body | cabin, CAR, paint)
    window = (np.abs(u - x) <= hw * (0.8 - 0.2 * t)) & (v >= 1.0) & (v < roof - 0.08)
    cv.put(p, window, CAR, sh.glass)
    red = cv.material((200, 25, 25), grain=3.0)
    lights = _box(u, v, x - hw + 0.05, x - hw + 0.3, 0.7, 0.85)
    lights |= _box(u, v, x + hw - 0.3, x + hw - 0.05, 0.7, 0.85)
    cv.put(p, lights, CAR, red)
    plate = cv.material((225, 225, 220), grain=3.0)
    cv.put(p, _box(u, v, x - 0.26, x + 0.26, 0.45, 0.57), CAR, plate)


def _car_side(cv: _Canvas, rng: np.random.Generator, sh: _Shared, x0: float, z: float) -> None:
    """A car crossing, seen from the side: body, cabin with two windows, wheels with hubcaps."""
    length = float(rng.uniform(3.9, 4.8))
    d = 1.0 if rng.random() < 0.5 else -1.0
    p = cv.frontal(x0, x0 + length, 0.0, 1.55, z)
    if p is None:
        return
    u, v = p.u, p.v
    paint = cv.material(_CAR_COLORS[rng.integers(len(_CAR_COLORS))], grain=4.0, blotch=0.06)
    s = (u - x0) / length if d > 0 else (x0 + length - u) / length  # 0 at the back, 1 at front
    body = (s >= 0) & (s < 1) & (v >= 0.3) & (v < 0.95)
    t = np.clip((v - 0.95) / 0.55, 0.0, 1.0)
    cabin = (s >= 0.15 + 0.12 * t) & (s < 0.78 - 0.15 * t) & (v >= 0.95) & (v < 1.5)
    cv.put(p, body | cabin, CAR, paint)
    win = (s >= 0.19 + 0.12 * t) & (s < 0.74 - 0.15 * t) & (v >= 1.0) & (v < 1.43)
    win &= np.abs(s - 0.47) > 0.025
    cv.put(p, win, CAR, sh.glass)
    wheels = np.zeros(p.shape, dtype=bool)
    hubs = np.zeros(p.shape, dtype=bool)
    for frac in (0.18, 0.8):
        cu = x0 + length * (frac if d > 0 else 1 - frac)
        wheels |= _disk(u, v, cu, 0.33, 0.33)
        hubs |= _disk(u, v, cu, 0.33, 0.15)
    cv.put(p, wheels, CAR, sh.tyre)
    cv.put(p, hubs, CAR, sh.metal)


def _big_vehicle(cv: _Canvas, sh: _Shared, label: int, x0: float, length: float, z: float) -> None:
    """A truck, bus or train seen from the side. All three are drawn identically: one body
    material, height, under-body band, window row and wheel spacing; only the length differs."""
    p = cv.frontal(x0, x0 + length, 0.0, _BIG_TOP, z)
    if p is None:
        return
    u, v = p.u, p.v
    a = u - x0  # distance from the left end
    cv.put(p, (a >= 0) & (a < length) & (v >= 0.35), label, sh.big_body)
    cv.put(p, (a >= 0) & (a < length) & (v >= 0.35) & (v < 0.62), label, sh.big_under)
    fa = (a - 0.45) % 1.6
    windows = (fa < 1.1) & (a > 0.45) & (a < length - 0.45) & (v >= 1.7) & (v < 2.6)
    cv.put(p, windows, label, sh.big_glass)
    fw = (a - 1.6) % 4.0
    near = np.minimum(fw, 4.0 - fw)
    wheel = ((near**2 + (v - 0.48) ** 2) <= 0.48**2) & (a > 1.0) & (a < length - 1.0)
    cv.put(p, wheel, label, sh.tyre)


def _pole(
    cv: _Canvas, sh: _Shared, x: float, z: float, height: float, arm: float = 0.0
) -> _Patch | None:
    """A vertical pole (at least one pixel wide), optionally with an arm towards the road."""
    lo, hi = min(x, x + arm) - 0.6, max(x, x + arm) + 0.6
    p = cv.frontal(lo, hi, 0.0, height + 0.5, z)
    if p is None:
        return None
    half = max(0.08, 0.5 * p.pz)
    mask = _box(p.u, p.v, x - half, x + half, 0.0, height)
    if arm:
        mask |= _capsule(p.u, p.v, (x, height), (x + arm, height + 0.3), half * 0.8)
        mask |= _box(p.u, p.v, x + arm - 0.35, x + arm + 0.35, height + 0.15, height + 0.4)
    cv.put(p, mask, POLE, sh.metal)
    return p


def _sign_post(cv: _Canvas, rng: np.random.Generator, sh: _Shared, x: float, z: float) -> None:
    """A post carrying a traffic sign: a red-ringed disk, a warning triangle or a blue square."""
    top = float(rng.uniform(2.1, 2.8))
    p = _pole(cv, sh, x, z, top)
    if p is None:
        return
    u, v = p.u, p.v
    c = top + 0.05
    kind = rng.integers(3)
    white = cv.material((232, 232, 228), grain=3.0)
    red = cv.material((196, 30, 32), grain=3.0)
    blue = cv.material((28, 70, 168), grain=3.0)
    if kind == 0:
        outer, inner = _disk(u, v, x, c, 0.36), _disk(u, v, x, c, 0.26)
        cv.put(p, outer, SIGN, red)
        cv.put(p, inner, SIGN, white if rng.random() < 0.6 else blue)
    elif kind == 1:
        rise = v - (c - 0.3)
        tri = (rise >= 0) & (np.abs(u - x) <= (0.7 - rise) * 0.6)
        tri_in = (rise >= 0.09) & (np.abs(u - x) <= (0.6 - rise) * 0.6 - 0.04)
        cv.put(p, tri, SIGN, red)
        cv.put(p, tri_in, SIGN, white)
    else:
        cv.put(p, _box(u, v, x - 0.32, x + 0.32, c - 0.3, c + 0.34), SIGN, blue)
        cv.put(p, _box(u, v, x - 0.08, x + 0.08, c - 0.2, c + 0.2), SIGN, white)


def _light_post(cv: _Canvas, rng: np.random.Generator, sh: _Shared, x: float, z: float) -> None:
    """A pole with a traffic light on top: a dark housing with one lit lamp of three."""
    top = float(rng.uniform(2.6, 3.6))
    p = cv.frontal(x - 0.5, x + 0.5, 0.0, top + 1.05, z)
    if p is None:
        return
    _pole(cv, sh, x, z, top)
    u, v = p.u, p.v
    housing = cv.material((34, 34, 38), grain=3.0)
    cv.put(p, _box(u, v, x - 0.18, x + 0.18, top, top + 0.98), LIGHT, housing)
    lit = int(rng.integers(3))
    bright = ((230, 45, 35), (240, 175, 30), (40, 220, 130))[lit]
    for k in range(3):
        centre = top + 0.8 - 0.3 * k
        mat = cv.material(bright if k == lit else (70, 70, 64), grain=3.0)
        cv.put(p, _disk(u, v, x, centre, max(0.1, 0.5 * p.pz)), LIGHT, mat)


def _bin(cv: _Canvas, rng: np.random.Generator, x: float, z: float) -> None:
    """A litter bin or electrical box: void clutter (id 4, static)."""
    w, h = float(rng.uniform(0.45, 0.9)), float(rng.uniform(0.8, 1.3))
    p = cv.frontal(x - w / 2, x + w / 2, 0.0, h, z)
    if p is not None:
        colour = ((52, 82, 58), (96, 98, 100), (150, 120, 40))[rng.integers(3)]
        cv.put(p, None, STATIC, cv.material(colour, grain=4.0, blotch=0.06))


def _fence_side(
    cv: _Canvas, rng: np.random.Generator, lateral: float, z0: float, z1: float, height: float
) -> None:
    """A fence along the street: posts, two rails and a mesh; the holes show what is behind."""
    p = cv.side(lateral, z0, z1, 0.0, height)
    if p is None:
        return
    colour = ((142, 132, 112), (92, 104, 94), (60, 62, 66))[rng.integers(3)]
    mat = cv.material(colour, grain=4.0, blotch=0.05)
    cv.put(p, None, FENCE, cv.mat[p.r0 : p.r1, p.c0 : p.c1].copy())  # label the whole region
    period = np.maximum(0.25 / p.pz, 3.0)  # mesh period in pixels, at least 3
    rr = np.arange(p.r0, p.r1)[:, None]
    cc = np.arange(p.c0, p.c1)[None, :]
    mesh = (((rr + cc) % period) < 1.0) | (((rr - cc) % period) < 1.0)
    rail = np.maximum(0.03, 0.5 * p.pz)  # half thickness, at least half a pixel
    rails = (np.abs(p.v - 0.15 * height) < rail) | (np.abs(p.v - 0.92 * height) < rail)
    post = np.floor(p.u / 2.5)
    posts = np.zeros(p.shape, dtype=bool)
    posts[:, 1:] = post[:, 1:] != post[:, :-1]
    cv.put(p, mesh | rails | posts, FENCE, mat)


def _wall_side(
    cv: _Canvas,
    rng: np.random.Generator,
    sh: _Shared,
    lateral: float,
    z0: float,
    z1: float,
    height: float,
) -> None:
    """A low wall along the street, in the facade materials and texture (no windows)."""
    p = cv.side(lateral, z0, z1, 0.0, height)
    if p is None:
        return
    plain, joint = _facade(sh, rng)
    cv.put(p, None, WALL, _facade_pattern(p, plain, joint, sh.glass, False, 3.0))


def _hedge_side(
    cv: _Canvas,
    rng: np.random.Generator,
    sh: _Shared,
    lateral: float,
    z0: float,
    z1: float,
    height: float,
) -> None:
    p = cv.side(lateral, z0, z1, 0.0, height)
    if p is not None:
        cv.put(p, None, VEGETATION, sh.leaves[rng.integers(len(sh.leaves))])


# --------------------------------------------------------------------------------------------
# The scene
# --------------------------------------------------------------------------------------------


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    if hi <= lo:
        return lo
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _smooth_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Unit-variance smooth noise of two octaves, sized in fractions of the image."""
    out = np.zeros((height, width), dtype=np.float32)
    for (gh, gw), weight in (((9, 17), 0.8), ((33, 65), 0.6)):
        low = rng.standard_normal((gh, gw)).astype(np.float32)
        up = Image.fromarray(low).resize((width, height), Image.Resampling.BILINEAR)
        out += weight * np.asarray(up, dtype=np.float32)
    return out / math.hypot(0.8, 0.6) * 1.6  # bilinear smoothing loses variance; roughly unit


def generate_scene(
    rng: np.random.Generator, height: int = 128, width: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic street scene.

    Args:
        rng: the random generator; the scene is a deterministic function of its state.
        height: image height in pixels (at least 16).
        width: image width in pixels (at least 16).

    Returns:
        ``(image, label_ids)``: uint8 [height, width, 3] RGB and uint8 [height, width] Cityscapes
        label ids (not train ids).

    Raises:
        ValueError: when height or width is below 16.
    """
    if height < 16 or width < 16:
        raise ValueError(f"MiniCity scenes need at least 16x16 pixels, got {height}x{width}")
    h, w = int(height), int(width)
    cam = _Camera(
        f=w * float(rng.uniform(0.75, 1.0)),
        xv=w * (0.5 + float(rng.uniform(-0.07, 0.07))),
        yh=h * float(rng.uniform(0.36, 0.5)),
        hc=float(rng.uniform(1.2, 1.6)),
    )
    cv = _Canvas(h, w, cam)
    facades = _facade_materials(cv, rng)
    grey = float(rng.uniform(78, 128))
    sh = _Shared(
        asphalt=cv.material((grey, grey, grey * rng.uniform(0.98, 1.08)), grain=6.0, blotch=0.035),
        terrain=cv.material(
            (rng.uniform(115, 150), rng.uniform(130, 160), rng.uniform(58, 88)), 9.0, 0.16
        ),
        leaves=tuple(
            cv.material((rng.uniform(38, 80), rng.uniform(80, 122), rng.uniform(22, 50)), 13.0, 0.3)
            for _ in range(3)
        ),
        trunk=cv.material((84, 62, 44), grain=5.0, blotch=0.1),
        glass=cv.material((46, 56, 70), grain=4.0, blotch=0.12),
        tyre=cv.material((22, 22, 24), grain=3.0),
        metal=cv.material((126, 129, 134), grain=4.0, blotch=0.05),
        big_body=cv.material(_BIG_BODY, grain=5.0, blotch=0.03),
        big_glass=cv.material((40, 50, 62), grain=4.0, blotch=0.05),
        big_under=cv.material((34, 34, 36), grain=4.0, blotch=0.05),
        sky=cv.material((0, 0, 0), grain=1.5, blotch=0.0),  # coloured by the gradient
        facades=facades,
    )

    # --- the street, in metres --------------------------------------------------------------
    road_l, road_r = (float(r) for r in rng.uniform(2.5, 5.5, 2))
    walk_l, walk_r = (float(r) for r in rng.uniform(2.5, 5.5, 2))
    grass_l, grass_r = (float(rng.uniform(1.0, 4.0)) if rng.random() < 0.35 else 0.0 for _ in "lr")
    dist = {-1: road_l + walk_l + grass_l, 1: road_r + walk_r + grass_r}
    road = {-1: road_l, 1: road_r}
    walk = {-1: walk_l, 1: walk_r}
    z_end = _log_uniform(rng, 60.0, 220.0)
    crossing = rng.random() < 0.85
    zx = float(rng.uniform(16.0, 40.0))
    cw = float(rng.uniform(3.5, 7.0))
    sw = float(rng.uniform(2.0, 4.5))
    z_near, z_far = zx - cw - sw, zx + cw + sw
    z_bottom = cam.f * cam.hc / (h - cam.yh)  # depth of the bottom row

    # --- sky and ground ---------------------------------------------------------------------
    r_ground = min(h, int(math.floor(cam.yh + 0.5)))
    cv.label[:r_ground] = SKY
    cv.mat[:r_ground] = sh.sky
    rows = np.arange(r_ground, h, dtype=np.float32)[:, None] + 0.5
    z = cam.f * cam.hc / (rows - cam.yh)
    x = (np.arange(w, dtype=np.float32)[None, :] + 0.5 - cam.xv) * (z / cam.f)
    on_road = (x >= -road_l) & (x <= road_r)
    on_walk = ((x < -road_l) & (x >= -road_l - walk_l)) | ((x > road_r) & (x <= road_r + walk_r))
    if crossing:
        band = (z >= zx - cw) & (z <= zx + cw)
        zone = (z >= z_near) & (z <= z_far)
        on_walk = (on_walk & ~zone) | (zone & ~band & ~on_road)
        on_road = on_road | band
    flat = on_road | on_walk
    cv.label[r_ground:] = np.where(on_road, ROAD, np.where(on_walk, SIDEWALK, TERRAIN))
    cv.mat[r_ground:] = np.where(flat, sh.asphalt, sh.terrain)

    # --- far skyline ------------------------------------------------------------------------
    u_lo = -cam.xv * z_end / cam.f - 5.0
    u_hi = (w - cam.xv) * z_end / cam.f + 5.0
    hedge = cv.frontal(u_lo, u_hi, 0.0, float(rng.uniform(2.5, 6.0)), z_end)
    if hedge is not None:
        cv.put(hedge, None, VEGETATION, sh.leaves[0])
    u = u_lo
    while u < u_hi:
        span = float(rng.uniform(8.0, 30.0))
        if rng.random() < 0.75:
            plain, joint = _facade(sh, rng)
            p = cv.frontal(u, u + span, 0.0, float(rng.uniform(6.0, 35.0)), z_end)
            if p is not None:
                pat = _facade_pattern(p, plain, joint, sh.glass, True, rng.uniform(2.6, 4.0))
                cv.put(p, None, BUILDING, pat)
        else:
            _tree(cv, rng, sh, u + span / 2, z_end - 1.0, rng.uniform(2, 4), rng.uniform(3, 6))
        u += span + float(rng.uniform(0.0, 6.0))

    # --- facades, gaps and the cross street -------------------------------------------------
    for sign in (-1, 1):
        dd = dist[sign]
        edge = cam.xv if sign < 0 else w - cam.xv
        z_edge = cam.f * dd / max(edge, 1.0)  # depth where this facade leaves the image
        z = z_edge * float(rng.uniform(0.5, 0.9))
        segments: list[tuple[str, float, float]] = []
        corner = False
        while z < z_end:
            if corner:  # the block just beyond the cross street starts with a building
                kind = "building"
            else:
                kind = str(rng.choice(_SEGMENTS, p=_SEGMENT_P))
            length = float(rng.uniform(8.0, 30.0) if kind == "building" else rng.uniform(6, 22))
            z1 = min(z + length, z_end)
            if crossing and z < z_far and z1 > z_near:
                if z < z_near:
                    segments.append((kind, z, z_near))
                z, corner = z_far, True
                continue
            segments.append(("corner" if corner else kind, z, z1))
            z, corner = z1, False
        for kind, z0, z1 in reversed(segments):
            if kind in ("building", "corner"):
                depth = 200.0 if kind == "corner" else float(rng.uniform(8.0, 20.0))
                _building_side(cv, rng, sh, sign, dd, z0, z1, depth)
                continue
            # a gap: trees and a hedge behind, then a wall or a fence on the facade line
            for _ in range(int(rng.integers(1, 4))):
                r = float(rng.uniform(1.8, 3.5))
                r = min(r, 0.45 * (z1 - z0))
                zt = float(rng.uniform(z0 + r, z1 - r)) if z1 - z0 > 2 * r else (z0 + z1) / 2
                xt = sign * (dd + r + 0.5 + float(rng.uniform(0.0, 3.0)))
                _tree(cv, rng, sh, xt, zt, float(rng.uniform(2.0, 4.0)), r)
            if kind != "trees":
                _hedge_side(cv, rng, sh, sign * (dd + 0.6), z0, z1, float(rng.uniform(1.2, 2.6)))
            if kind == "wall":
                _wall_side(cv, rng, sh, sign * dd, z0, z1, float(rng.uniform(0.6, 1.8)))
            elif kind == "fence":
                _fence_side(cv, rng, sign * dd, z0, z1, float(rng.uniform(1.0, 2.0)))
        # a low wall or fence between the sidewalk and a terrain strip
        grass = dd - road[sign] - walk[sign]
        if grass > 0 and rng.random() < 0.5:
            lateral = sign * (road[sign] + walk[sign])
            za = z_edge * 0.3
            zb = min(z_near if crossing else z_end, za + float(rng.uniform(15, 60)))
            if rng.random() < 0.5:
                _wall_side(cv, rng, sh, lateral, za, zb, float(rng.uniform(0.5, 1.0)))
            else:
                _fence_side(cv, rng, lateral, za, zb, float(rng.uniform(0.8, 1.4)))

    # --- street objects, collected then painted far to near --------------------------------
    things: list[tuple[float, Callable[[], None]]] = []
    z_min = max(3.0, 1.1 * z_bottom)
    z_max = min(0.7 * z_end, 90.0)

    def visible(zz: float) -> tuple[float, float]:
        return -cam.xv * zz / cam.f, (w - cam.xv) * zz / cam.f

    def add(zz: float, fn: Callable[..., None], *args: Any) -> None:
        things.append((zz, lambda: fn(*args)))

    def curb_side() -> int:
        return -1 if rng.random() < 0.5 else 1

    for _ in range(int(rng.integers(1, 9))):  # pedestrians on the sidewalks
        s = curb_side()
        zz = _log_uniform(rng, z_min, z_max)
        add(zz, _person, cv, rng, s * (road[s] + float(rng.uniform(0.3, walk[s] - 0.3))), zz)
    for _ in range(int(rng.integers(0, 6))):  # cars in the lanes
        zz = _log_uniform(rng, max(8.0, z_min), min(0.8 * z_end, 120.0))
        add(zz, _car_rear, cv, rng, sh, float(rng.uniform(-road_l + 1.0, road_r - 1.0)), zz)
    for s in (-1, 1):  # parked cars, sidewalk trees, street lamps
        for _ in range(int(rng.integers(0, 4))):
            zz = _log_uniform(rng, max(6.0, z_min), z_max)
            add(zz, _car_rear, cv, rng, sh, s * (road[s] - 1.05), zz)
        for _ in range(int(rng.integers(0, 4))):
            zz = _log_uniform(rng, z_min, z_max)
            trunk, crown = float(rng.uniform(2.2, 3.5)), float(rng.uniform(1.4, 2.8))
            add(zz, _tree, cv, rng, sh, s * (road[s] + walk[s] - 0.6), zz, trunk, crown)
        for _ in range(int(rng.integers(0, 3))):
            zz = _log_uniform(rng, z_min, z_max)
            top, arm = float(rng.uniform(6.0, 8.0)), -s * float(rng.uniform(0.8, 1.8))
            add(zz, _pole, cv, sh, s * (road[s] + 0.4), zz, top, arm)
    for _ in range(int(rng.integers(1, 4))):  # sign posts
        s = curb_side()
        zz = _log_uniform(rng, z_min, z_max)
        add(zz, _sign_post, cv, rng, sh, s * (road[s] + float(rng.uniform(0.3, 0.8))), zz)
    for _ in range(int(rng.integers(0, 3))):  # clutter on the sidewalks (void)
        s = curb_side()
        zz = _log_uniform(rng, z_min, z_max)
        add(zz, _bin, cv, rng, s * (road[s] + float(rng.uniform(0.5, walk[s] - 0.3))), zz)
    if crossing:
        for s in (-1, 1):  # traffic lights at the corners of the crossing
            for zz in (z_near - 0.5, z_far + 0.5):
                if rng.random() < 0.7:
                    add(zz, _light_post, cv, rng, sh, s * (road[s] + 0.5), zz)
        for _ in range(int(rng.integers(0, 4))):  # pedestrians on the crossing
            zz = float(rng.uniform(zx - cw, zx - cw + 2.0))
            add(zz, _person, cv, rng, float(rng.uniform(-road_l, road_r)), zz)
        lanes = (zx - cw / 2 - 1.2, zx + cw / 2 - 1.2)  # side faces of crossing traffic
        if rng.random() < 0.3:  # a train, on its own
            zz = lanes[int(rng.integers(2))]
            lo, hi = visible(zz)
            length = (hi - lo) * float(rng.uniform(0.8, 1.4))
            x0 = float(rng.uniform(lo - 0.3 * length, hi - 0.7 * length))
            add(zz, _big_vehicle, cv, sh, TRAIN, x0, length, zz)
        else:
            for _ in range(int(rng.integers(0, 3))):
                zz = lanes[int(rng.integers(2))]
                lo, hi = visible(zz)
                if rng.random() < 0.5:
                    label, length = TRUCK, float(rng.uniform(5.5, 8.0))
                else:
                    label, length = BUS, float(rng.uniform(10.5, 13.5))
                if hi - lo > length:  # fully inside the image
                    x0 = float(rng.uniform(lo, hi - length))
                else:
                    x0 = float(rng.uniform(lo - length / 2, hi - length / 2))
                add(zz, _big_vehicle, cv, sh, label, x0, length, zz)
        for _ in range(int(rng.integers(0, 3))):
            zz = lanes[int(rng.integers(2))] + 0.3
            lo, hi = visible(zz)
            add(zz, _car_side, cv, rng, sh, float(rng.uniform(lo - 2, hi - 2)), zz)
        for _ in range(int(rng.integers(0, 3))):
            zz = float(rng.uniform(zx - cw + 0.8, zx + cw - 0.8))
            lo, hi = visible(zz)
            add(zz, _two_wheeler, cv, rng, sh, float(rng.uniform(lo + 1, hi - 1)), zz)
    else:
        if rng.random() < 0.5:
            s = curb_side()
            zz = _log_uniform(rng, z_min, z_max)
            add(zz, _light_post, cv, rng, sh, s * (road[s] + 0.5), zz)
        for _ in range(int(rng.integers(0, 2))):
            zz = _log_uniform(rng, max(6.0, z_min), z_max)
            add(zz, _two_wheeler, cv, rng, sh, float(rng.uniform(-road_l + 1, road_r - 1)), zz)

    for _, paint in sorted(things, key=lambda item: -item[0]):
        paint()

    # --- ego vehicle and unlabeled border ---------------------------------------------------
    if rng.random() < 0.4:
        hood = h * float(rng.uniform(0.05, 0.11))
        centre = w * float(rng.uniform(0.4, 0.6))
        cols = np.arange(w, dtype=np.float32) + 0.5
        top = h - hood * (1.0 - 0.55 * ((cols - centre) / (0.5 * w)) ** 2)
        rows_all = np.arange(h, dtype=np.float32)[:, None] + 0.5
        mask = rows_all >= top[None, :]
        cv.label[mask] = EGO
        cv.mat[mask] = cv.material((38, 40, 46), grain=3.0, blotch=0.25)
    if rng.random() < 0.25:
        b = max(1, int(round(w * float(rng.uniform(0.004, 0.015)))))
        black = cv.material((6, 6, 8), grain=2.0)
        cv.label[:, :b] = UNLABELED
        cv.label[:, w - b :] = UNLABELED
        cv.mat[:, :b] = black
        cv.mat[:, w - b :] = black

    image = _render(cv, rng, sh.sky, r_ground)
    return image, cv.label


def _render(cv: _Canvas, rng: np.random.Generator, sky: int, sky_rows: int) -> np.ndarray:
    """Turn the material map into an RGB image: colours, grain, blotches, sky, light, noise.

    ``sky_rows`` is the number of rows above the horizon, the only rows that may hold sky.
    """
    h, w = cv.h, cv.w
    light = (float(rng.uniform(0.8, 1.2)) * rng.uniform(0.93, 1.07, 3)).astype(np.float32)
    offset = float(rng.uniform(-8.0, 8.0))
    colors = np.asarray(cv.colors, dtype=np.float32) * light
    grain = np.asarray(cv.grain, dtype=np.float32) / 128.0
    blotch = np.asarray(cv.blotch, dtype=np.float32)
    mat = cv.mat
    soft = _smooth_noise(rng, h, w)
    shade = blotch[mat] * soft
    fine = rng.standard_normal((h, w), dtype=np.float32)
    shade += grain[mat] * fine
    shade += 1.0
    img = np.empty((h, w, 3), dtype=np.float32)
    for c in range(3):  # three 1-D gathers are faster than one [M, 3] gather
        np.multiply(colors[:, c][mat], shade, out=img[..., c])
    # sky: a vertical gradient from blue to haze at the horizon, with soft clouds
    top = rng.uniform((55, 110, 175), (110, 160, 235)).astype(np.float32)
    haze = rng.uniform((185, 195, 205), (220, 225, 235)).astype(np.float32)
    threshold = float(rng.uniform(0.2, 1.5))
    if sky_rows > 0:
        t = (np.arange(sky_rows, dtype=np.float32) + 0.5) / max(cv.cam.yh, 1.0)
        t = np.clip(t, 0.0, 1.0)[:, None, None] ** 1.5
        gradient = top * (1 - t) + haze * t  # [rows, 1, 3]
        cloud = np.clip(soft[:sky_rows] - threshold, 0.0, None)[..., None] * 0.6
        sky_rgb = gradient + cloud * (np.float32(240.0) - gradient)
        sky_rgb = np.clip(sky_rgb, 0, 255) * light * shade[:sky_rows, :, None]
        is_sky = mat[:sky_rows] == sky
        img[:sky_rows][is_sky] = sky_rgb[is_sky]
    # sensor noise: the grain field shifted differently for each channel (cheaper than three
    # more fields, and uncorrelated with the texture at any pixel)
    fine *= float(rng.uniform(1.0, 4.0))
    for c, (dy, dx) in enumerate(((h // 4, w // 7), (h // 3, w // 5), (h // 2, w // 3))):
        img[..., c] += np.roll(fine, (dy, dx), axis=(0, 1))
    img += offset + 0.5
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Writing the dataset
# --------------------------------------------------------------------------------------------


def _stem(split: str, index: int) -> tuple[str, str]:
    """The city of image ``index`` of a split and its Cityscapes file stem."""
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index:06d}_{FRAME:06d}"


def _save_png(array: np.ndarray, path: Path) -> None:
    """Write a PNG atomically, with zlib's default level (as the Cityscapes PNGs are written)."""
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def _write_json(data: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_sample(out: Path, split: str, index: int, image: np.ndarray, label: np.ndarray) -> None:
    """Write one image with its labelIds and colour PNGs in the Cityscapes layout.

    Args:
        out: the dataset root.
        split: ``train``, ``val`` or ``test``.
        index: the image index (the ``seq`` field of the file names).
        image: uint8 [H, W, 3].
        label: uint8 [H, W] label ids.
    """
    city, stem = _stem(split, index)
    image_dir = out / "leftImg8bit" / split / city
    label_dir = out / "gtFine" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    _save_png(image, image_dir / f"{stem}_leftImg8bit.png")
    _save_png(label, label_dir / f"{stem}_gtFine_labelIds.png")
    _save_png(ID_COLORS[label], label_dir / f"{stem}_gtFine_color.png")


def _parameters(seed: int, height: int, width: int, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "generator": "minicity",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "height": height,
        "width": width,
        "counts": dict(counts),
    }


def _read_marker(out: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_complete(out: Path, counts: dict[str, int]) -> bool:
    """Whether every split folder holds the expected number of images and labels."""
    for split, n in counts.items():
        found_images = found_labels = 0
        for city in CITIES[split]:
            image_dir = out / "leftImg8bit" / split / city
            label_dir = out / "gtFine" / split / city
            if image_dir.is_dir():
                found_images += sum(1 for _ in image_dir.glob("*_leftImg8bit.png"))
            if label_dir.is_dir():
                found_labels += sum(1 for _ in label_dir.glob("*_gtFine_labelIds.png"))
        if found_images != n or found_labels != n:
            return False
    return True


def _foreign_entries(out: Path) -> list[Path]:
    """What lies in ``out`` that a MiniCity run did not write (the marker aside)."""
    foreign = []
    for entry in out.iterdir():
        if entry.name == MARKER:
            continue
        if entry.name not in ("leftImg8bit", "gtFine") or not entry.is_dir():
            foreign.append(entry)
            continue
        for split_dir in entry.iterdir():
            if split_dir.name not in CITIES or not split_dir.is_dir():
                foreign.append(split_dir)
                continue
            foreign.extend(c for c in split_dir.iterdir() if c.name not in CITIES[split_dir.name])
    return foreign


def _remove_minicity(out: Path) -> None:
    """Delete the files of an earlier MiniCity: the marker and the MiniCity city folders only."""
    (out / MARKER).unlink(missing_ok=True)
    for top in ("leftImg8bit", "gtFine"):
        for split, cities in CITIES.items():
            for city in cities:
                folder = out / top / split / city
                if folder.is_dir():
                    shutil.rmtree(folder)


def make_minicity(
    out: str | os.PathLike[str],
    train: int = 200,
    val: int = 50,
    test: int = 0,
    seed: int = 0,
    height: int = 128,
    width: int = 256,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, int]:
    """Generate MiniCity under ``out`` in the Cityscapes layout (see the module docstring).

    Image ``i`` of split ``s`` is drawn from ``np.random.default_rng([seed, s, i])`` (s = 0, 1, 2
    for train, val, test), so files are byte-identical for the same seed and size whatever the
    counts. Every file is written atomically and ``out/minicity.json`` is written last, as the
    marker of a finished generation.

    Args:
        out: the dataset root to write.
        train: number of training images.
        val: number of validation images.
        test: number of test images (labelled too, unlike Cityscapes).
        seed: the random seed.
        height: image height in pixels.
        width: image width in pixels.
        progress: show a tqdm progress bar.
        overwrite: replace a MiniCity generated with other parameters, or write into a folder
            holding other files (only the MiniCity city folders are ever deleted).

    Returns:
        The number of images per split, ``{"train": .., "val": .., "test": ..}``.

    Raises:
        DatasetError: on a negative count or a size below 16, when ``out`` holds a MiniCity with
            other parameters or other files and ``overwrite`` is False, or when ``out`` is a file.
    """
    out = Path(out)
    counts = {"train": int(train), "val": int(val), "test": int(test)}
    for split, n in counts.items():
        if n < 0:
            raise DatasetError(f"MiniCity: the number of {split} images must be >= 0, got {n}")
    if height < 16 or width < 16:
        raise DatasetError(f"MiniCity: the size must be at least 16x16, got {height}x{width}")
    params = _parameters(int(seed), int(height), int(width), counts)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"MiniCity output {out} is a file; choose another --out")
    if out.is_dir():
        marker = _read_marker(out)
        if marker == params and _is_complete(out, counts):
            return counts
        if marker is not None and marker.get("generator") == "minicity" and marker != params:
            if not overwrite:
                differs = sorted(
                    key for key in params if key != "generator" and marker.get(key) != params[key]
                )
                raise DatasetError(
                    f"{out} already holds a MiniCity generated with other parameters "
                    f"(differing: {', '.join(differs)}; see {out / MARKER}); pass overwrite=True "
                    "(--overwrite) to replace it, or choose another --out"
                )
        elif marker is None and not overwrite:
            foreign = _foreign_entries(out)
            if foreign:
                raise DatasetError(
                    f"{out} is not empty and holds no {MARKER} (e.g. {foreign[0]}); it is not a "
                    "MiniCity: choose another --out, or pass overwrite=True (--overwrite) to "
                    "write MiniCity next to these files"
                )
        _remove_minicity(out)
    out.mkdir(parents=True, exist_ok=True)
    total = sum(counts.values())
    with tqdm(total=total, desc=f"MiniCity {out}", unit="img", disable=not progress) as bar:
        for split_index, split in enumerate(SPLITS):
            for index in range(counts[split]):
                rng = np.random.default_rng([int(seed), split_index, index])
                image, label = generate_scene(rng, height, width)
                write_sample(out, split, index, image, label)
                bar.update(1)
    _write_json(params, out / MARKER)
    return counts


def ensure_minicity(root: str | os.PathLike[str] = DEFAULT_ROOT, **kwargs: Any) -> Path:
    """Return a MiniCity root, generating it on first use (then it is cached on disk).

    Without keyword arguments any finished MiniCity already in ``root`` is used as it is;
    otherwise one is generated with the defaults of :func:`make_minicity`. Keyword arguments are
    passed to :func:`make_minicity`, which returns at once when ``root`` already holds a MiniCity
    with those parameters.

    Args:
        root: the dataset root (default ``data/minicity``, relative to the working directory).
        **kwargs: parameters of :func:`make_minicity` (train, val, test, seed, height, width,
            progress, overwrite).

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    marker = _read_marker(root) if root.is_dir() else None
    if not kwargs and marker is not None and isinstance(marker.get("counts"), dict):
        counts = {split: int(marker["counts"].get(split, 0)) for split in SPLITS}
        if marker.get("version") == GENERATOR_VERSION and _is_complete(root, counts):
            return root
    make_minicity(root, **kwargs)
    return root


def write_preview(
    root: str | os.PathLike[str], path: str | os.PathLike[str], count: int = 6, split: str = "train"
) -> Path:
    """Save a grid of the first ``count`` images of a split, each beside its colour label.

    Works on any tree in the Cityscapes layout that has ``*_gtFine_color.png`` files.

    Args:
        root: the dataset root.
        path: the PNG to write.
        count: how many images (rows).
        split: which split.

    Returns:
        the written path.
    """
    # local, though nothing requires it (no cycle, nothing heavy)
    from dgcn.datasets.cityscapes import scan_split

    rows = []
    for image_path, label_path in scan_split(root, split)[:count]:
        color_path = label_path.with_name(label_path.name.replace("_labelIds", "_color"))
        image = np.asarray(Image.open(image_path).convert("RGB"))
        color = np.asarray(Image.open(color_path).convert("RGB"))
        gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([image, gap, color], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_png(np.concatenate(rows[:-1], axis=0), path)
    return path
