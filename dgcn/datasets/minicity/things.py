"""The things of a MiniCity scene: materials and painters of every object.

Buildings, walls, fences and hedges along the street, trees, pedestrians, riders on bicycles or
motorcycles, cars (rear and side views), trucks, buses and trains, poles with street lamps,
traffic signs and traffic lights, and void clutter. Each painter draws an object placed in
metres into a :class:`~dgcn.datasets.minicity.drawing.Canvas`, labels and materials together.

The look-alike classes of :mod:`dgcn.datasets.minicity.scene` share their materials here on
purpose: buildings and walls the facade colours and joints (:func:`facade_pattern`); trucks,
buses and trains one body drawn by one painter (:func:`big_vehicle`); persons and riders the
clothes and skin colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dgcn.datasets.minicity.drawing import (
    BICYCLE,
    BUILDING,
    CAR,
    FENCE,
    LIGHT,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    SIGN,
    STATIC,
    VEGETATION,
    WALL,
    Canvas,
    Patch,
    box,
    capsule,
    disk,
)
from dgcn.datasets.minicity.traffic import BIG_HEIGHT

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
BIG_BODY = (204, 190, 122)  # trucks, buses and trains: one body colour
_FLOOR_H = 3.5  # ground-floor height of a building (no windows below)


@dataclass
class Shared:
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


def facade_pattern(
    p: Patch, plain: int, joint: int, glass: int, windows: bool, period: float
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


def facade_materials(cv: Canvas, rng: np.random.Generator) -> tuple[tuple[int, int], ...]:
    """The facade materials of a scene: every palette colour, jittered, plain and with joints."""
    out = []
    for colour in _FACADES:
        base = np.clip(np.array(colour, dtype=float) + rng.uniform(-12, 12, 3), 0, 255)
        plain = cv.material(tuple(base), grain=5.0, blotch=0.06)
        out.append((plain, cv.material(tuple(base * 0.78), grain=5.0, blotch=0.06)))
    return tuple(out)


def facade(sh: Shared, rng: np.random.Generator) -> tuple[int, int]:
    return sh.facades[int(rng.integers(len(sh.facades)))]


def building_side(
    cv: Canvas,
    rng: np.random.Generator,
    sh: Shared,
    sign: int,
    dist: float,
    z0: float,
    z1: float,
    depth: float,
) -> None:
    """A building along the street: its side facade from z0 to z1 and its front face at z0."""
    height = float(rng.uniform(8.0, 28.0))
    plain, joint = facade(sh, rng)
    period = float(rng.uniform(2.6, 4.0))
    front = cv.frontal(sign * dist, sign * (dist + depth), 0.0, height, z0)
    if front is not None:
        cv.put(front, None, BUILDING, facade_pattern(front, plain, joint, sh.glass, True, period))
    face = cv.side(sign * dist, z0, z1, 0.0, height)
    if face is not None:
        cv.put(face, None, BUILDING, facade_pattern(face, plain, joint, sh.glass, True, period))


def tree(
    cv: Canvas,
    rng: np.random.Generator,
    sh: Shared,
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
    cv.put(p, box(p.u, p.v, x - half, x + half, 0.0, trunk_h + crown_r), VEGETATION, sh.trunk)
    crown = np.zeros(p.shape, dtype=bool)
    for _ in range(int(rng.integers(3, 7))):
        cu = x + rng.uniform(-0.6, 0.6) * crown_r
        cvv = trunk_h + crown_r + rng.uniform(-0.35, 0.6) * crown_r
        crown |= disk(p.u, p.v, cu, cvv, crown_r * rng.uniform(0.5, 0.8))
    cv.put(p, crown, VEGETATION, leaves)


def person(cv: Canvas, rng: np.random.Generator, x: float, z: float) -> None:
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
    legs = capsule(p.u, p.v, (x - 0.05 * h, 0.5 * h), (x - 0.05 * h - stride, r), r)
    legs |= capsule(p.u, p.v, (x + 0.05 * h, 0.5 * h), (x + 0.05 * h + stride, r), r)
    cv.put(p, legs, PERSON, trousers)
    torso = box(p.u, p.v, x - 0.13 * h, x + 0.13 * h, 0.47 * h, 0.82 * h)
    torso |= capsule(p.u, p.v, (x - 0.15 * h, 0.8 * h), (x - 0.17 * h, 0.5 * h), r * 0.8)
    torso |= capsule(p.u, p.v, (x + 0.15 * h, 0.8 * h), (x + 0.17 * h, 0.5 * h), r * 0.8)
    cv.put(p, torso, PERSON, shirt)
    head = disk(p.u, p.v, x, 0.9 * h, max(0.065 * h, 0.5 * p.pz))
    head |= box(p.u, p.v, x - 0.03 * h, x + 0.03 * h, 0.8 * h, 0.86 * h)
    cv.put(p, head, PERSON, skin)


def two_wheeler(cv: Canvas, rng: np.random.Generator, sh: Shared, x: float, z: float) -> None:
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
        tyres = disk(u, v, *rear, wheel_r) | disk(u, v, *front, wheel_r)
        hubs = disk(u, v, *rear, 0.5 * wheel_r) | disk(u, v, *front, 0.5 * wheel_r)
        cv.put(p, tyres & ~hubs, MOTORCYCLE, sh.tyre)
        cv.put(
            p,
            hubs & ~disk(u, v, *rear, 0.35 * wheel_r) & ~disk(u, v, *front, 0.35 * wheel_r),
            MOTORCYCLE,
            sh.metal,
        )
        body = ((u - x) / 0.62) ** 2 + ((v - 0.58) / 0.2) ** 2 <= 1.0
        body |= capsule(u, v, (x - d * 0.45, seat_h), (x + d * 0.15, 0.78), 0.08)
        body |= capsule(u, v, front, (x + d * 0.5, 1.0), max(0.04, 0.5 * pz))
        cv.put(p, body, MOTORCYCLE, paint)
        seat, handle, pedal = (x - d * 0.2, seat_h), (x + d * 0.45, 1.0), (x + d * 0.1, 0.35)
    else:
        wheel_r, base, seat_h = 0.34, 0.52, 0.9
        frame_mat = cv.material(_CAR_COLORS[rng.integers(len(_CAR_COLORS))], grain=4.0)
        rear, front = (x - d * base, wheel_r), (x + d * base, wheel_r)
        ring = max(0.045, pz)
        rings = disk(u, v, *rear, wheel_r) & ~disk(u, v, *rear, wheel_r - ring)
        rings |= disk(u, v, *front, wheel_r) & ~disk(u, v, *front, wheel_r - ring)
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
            frame |= capsule(u, v, a, b, thin)
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
    legs = capsule(u, v, hip, knee, limb) | capsule(u, v, knee, pedal, limb)
    cv.put(p, legs, RIDER, trousers)
    torso = capsule(u, v, hip, shoulder, max(0.14, 0.5 * pz))
    torso |= capsule(u, v, shoulder, handle, max(0.05, 0.5 * pz))
    cv.put(p, torso, RIDER, shirt)
    cv.put(p, disk(u, v, shoulder[0] + d * 0.06, shoulder[1] + 0.2, max(0.11, pz)), RIDER, skin)


def car_rear(cv: Canvas, rng: np.random.Generator, sh: Shared, x: float, z: float) -> None:
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
        box(u, v, x - hw, x - hw + 0.28, 0.0, 0.4) | box(u, v, x + hw - 0.28, x + hw, 0.0, 0.4),
        CAR,
        sh.tyre,
    )
    body = box(u, v, x - hw, x + hw, 0.3, 0.95)
    t = np.clip((v - 0.95) / (roof - 0.95), 0.0, 1.0)
    cabin = (np.abs(u - x) <= hw * (0.92 - 0.2 * t)) & (v >= 0.95) & (v < roof)
    cv.put(p, body | cabin, CAR, paint)
    window = (np.abs(u - x) <= hw * (0.8 - 0.2 * t)) & (v >= 1.0) & (v < roof - 0.08)
    cv.put(p, window, CAR, sh.glass)
    red = cv.material((200, 25, 25), grain=3.0)
    lights = box(u, v, x - hw + 0.05, x - hw + 0.3, 0.7, 0.85)
    lights |= box(u, v, x + hw - 0.3, x + hw - 0.05, 0.7, 0.85)
    cv.put(p, lights, CAR, red)
    plate = cv.material((225, 225, 220), grain=3.0)
    cv.put(p, box(u, v, x - 0.26, x + 0.26, 0.45, 0.57), CAR, plate)


def car_side(cv: Canvas, rng: np.random.Generator, sh: Shared, x0: float, z: float) -> None:
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
        wheels |= disk(u, v, cu, 0.33, 0.33)
        hubs |= disk(u, v, cu, 0.33, 0.15)
    cv.put(p, wheels, CAR, sh.tyre)
    cv.put(p, hubs, CAR, sh.metal)


def big_vehicle(cv: Canvas, sh: Shared, label: int, x0: float, length: float, z: float) -> None:
    """A truck, bus or train seen from the side. All three are drawn identically: one body
    material, height, under-body band, window row and wheel spacing; only the length differs."""
    p = cv.frontal(x0, x0 + length, 0.0, BIG_HEIGHT, z)
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


def pole(
    cv: Canvas, sh: Shared, x: float, z: float, height: float, arm: float = 0.0
) -> Patch | None:
    """A vertical pole (at least one pixel wide), optionally with an arm towards the road."""
    lo, hi = min(x, x + arm) - 0.6, max(x, x + arm) + 0.6
    p = cv.frontal(lo, hi, 0.0, height + 0.5, z)
    if p is None:
        return None
    half = max(0.08, 0.5 * p.pz)
    mask = box(p.u, p.v, x - half, x + half, 0.0, height)
    if arm:
        mask |= capsule(p.u, p.v, (x, height), (x + arm, height + 0.3), half * 0.8)
        mask |= box(p.u, p.v, x + arm - 0.35, x + arm + 0.35, height + 0.15, height + 0.4)
    cv.put(p, mask, POLE, sh.metal)
    return p


def sign_post(cv: Canvas, rng: np.random.Generator, sh: Shared, x: float, z: float) -> None:
    """A post carrying a traffic sign: a red-ringed disk, a warning triangle or a blue square."""
    top = float(rng.uniform(2.1, 2.8))
    p = pole(cv, sh, x, z, top)
    if p is None:
        return
    u, v = p.u, p.v
    c = top + 0.05
    kind = rng.integers(3)
    white = cv.material((232, 232, 228), grain=3.0)
    red = cv.material((196, 30, 32), grain=3.0)
    blue = cv.material((28, 70, 168), grain=3.0)
    if kind == 0:
        outer, inner = disk(u, v, x, c, 0.36), disk(u, v, x, c, 0.26)
        cv.put(p, outer, SIGN, red)
        cv.put(p, inner, SIGN, white if rng.random() < 0.6 else blue)
    elif kind == 1:
        rise = v - (c - 0.3)
        tri = (rise >= 0) & (np.abs(u - x) <= (0.7 - rise) * 0.6)
        tri_in = (rise >= 0.09) & (np.abs(u - x) <= (0.6 - rise) * 0.6 - 0.04)
        cv.put(p, tri, SIGN, red)
        cv.put(p, tri_in, SIGN, white)
    else:
        cv.put(p, box(u, v, x - 0.32, x + 0.32, c - 0.3, c + 0.34), SIGN, blue)
        cv.put(p, box(u, v, x - 0.08, x + 0.08, c - 0.2, c + 0.2), SIGN, white)


def light_post(cv: Canvas, rng: np.random.Generator, sh: Shared, x: float, z: float) -> None:
    """A pole with a traffic light on top: a dark housing with one lit lamp of three."""
    top = float(rng.uniform(2.6, 3.6))
    p = cv.frontal(x - 0.5, x + 0.5, 0.0, top + 1.05, z)
    if p is None:
        return
    pole(cv, sh, x, z, top)
    u, v = p.u, p.v
    housing = cv.material((34, 34, 38), grain=3.0)
    cv.put(p, box(u, v, x - 0.18, x + 0.18, top, top + 0.98), LIGHT, housing)
    lit = int(rng.integers(3))
    bright = ((230, 45, 35), (240, 175, 30), (40, 220, 130))[lit]
    for k in range(3):
        centre = top + 0.8 - 0.3 * k
        mat = cv.material(bright if k == lit else (70, 70, 64), grain=3.0)
        cv.put(p, disk(u, v, x, centre, max(0.1, 0.5 * p.pz)), LIGHT, mat)


def litter_bin(cv: Canvas, rng: np.random.Generator, x: float, z: float) -> None:
    """A litter bin or electrical box: void clutter (id 4, static)."""
    w, h = float(rng.uniform(0.45, 0.9)), float(rng.uniform(0.8, 1.3))
    p = cv.frontal(x - w / 2, x + w / 2, 0.0, h, z)
    if p is not None:
        colour = ((52, 82, 58), (96, 98, 100), (150, 120, 40))[rng.integers(3)]
        cv.put(p, None, STATIC, cv.material(colour, grain=4.0, blotch=0.06))


def fence_side(
    cv: Canvas, rng: np.random.Generator, lateral: float, z0: float, z1: float, height: float
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


def wall_side(
    cv: Canvas,
    rng: np.random.Generator,
    sh: Shared,
    lateral: float,
    z0: float,
    z1: float,
    height: float,
) -> None:
    """A low wall along the street, in the facade materials and texture (no windows)."""
    p = cv.side(lateral, z0, z1, 0.0, height)
    if p is None:
        return
    plain, joint = facade(sh, rng)
    cv.put(p, None, WALL, facade_pattern(p, plain, joint, sh.glass, False, 3.0))


def hedge_side(
    cv: Canvas,
    rng: np.random.Generator,
    sh: Shared,
    lateral: float,
    z0: float,
    z1: float,
    height: float,
) -> None:
    p = cv.side(lateral, z0, z1, 0.0, height)
    if p is not None:
        cv.put(p, None, VEGETATION, sh.leaves[rng.integers(len(sh.leaves))])
