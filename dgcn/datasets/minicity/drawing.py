"""MiniCity's projection and drawing primitives.

A scene is placed in metres and projected by a pinhole :class:`Camera` looking along the street
(+Z): X is the lateral position (positive to the right), the height is measured above the
ground. :meth:`Canvas.frontal` and :meth:`Canvas.side` turn a world rectangle (a plane facing
the camera, or a plane along the street) into a :class:`Patch`, the pixels it covers with their
world coordinates, on which the shape masks (:func:`capsule`, :func:`disk`, :func:`box`) are
evaluated; :meth:`Canvas.put` paints a label and a material through such a mask. Everything is
a size in metres, so it scales with the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dgcn.datasets.labels import NAME_TO_ID

# the Cityscapes label ids of the classes MiniCity paints
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


@dataclass(frozen=True)
class Camera:
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
class Patch:
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


def capsule(
    u: np.ndarray, v: np.ndarray, p: tuple[float, float], q: tuple[float, float], radius: float
) -> np.ndarray:
    """Points within ``radius`` of the segment p-q."""
    du, dv = q[0] - p[0], q[1] - p[1]
    length2 = max(du * du + dv * dv, 1e-12)
    t = np.clip(((u - p[0]) * du + (v - p[1]) * dv) / length2, 0.0, 1.0)
    return (u - p[0] - t * du) ** 2 + (v - p[1] - t * dv) ** 2 <= radius * radius


def disk(u: np.ndarray, v: np.ndarray, cu: float, cv: float, radius: float) -> np.ndarray:
    return (u - cu) ** 2 + (v - cv) ** 2 <= radius * radius


def box(u: np.ndarray, v: np.ndarray, u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    return (u >= min(u0, u1)) & (u < max(u0, u1)) & (v >= v0) & (v < v1)


class Canvas:
    """A label map and a material map painted together, plus the table of materials."""

    def __init__(self, height: int, width: int, cam: Camera) -> None:
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

    def frontal(self, u0: float, u1: float, v0: float, v1: float, z: float) -> Patch | None:
        """The rectangle lateral [u0, u1] x height [v0, v1] (metres) of the plane at depth z."""
        cam = self.cam
        s = cam.f / z
        c0, c1 = _pixel_range(cam.xv + s * min(u0, u1), cam.xv + s * max(u0, u1), self.w)
        r0, r1 = _pixel_range(cam.yh + s * (cam.hc - v1), cam.yh + s * (cam.hc - v0), self.h)
        if c0 >= c1 or r0 >= r1:
            return None
        u = (np.arange(c0, c1, dtype=np.float32) + 0.5 - cam.xv) / s
        v = cam.hc - (np.arange(r0, r1, dtype=np.float32) + 0.5 - cam.yh) / s
        return Patch(r0, r1, c0, c1, u[None, :], v[:, None], 1.0 / s, None)

    def side(self, lateral: float, z0: float, z1: float, v0: float, v1: float) -> Patch | None:
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
        return Patch(r0, r1, c0, c1, z[None, :], v, (1.0 / s)[None, :], inside)

    def put(self, p: Patch, mask: np.ndarray | None, label: int, mat: int | np.ndarray) -> None:
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
