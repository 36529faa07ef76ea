"""One MiniCity scene: the generative rules and the classes only context tells apart.

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
  (27), buses (28) and trains (31) crossing side-on on the cross street (mixed in one image in
  version 2, see below); persons (24) on the sidewalks and on the crossing; riders (25) on bicycles
  (33) or motorcycles (32); poles (17): street lamps, posts carrying traffic signs (20) and traffic
  lights (19) at the crossing corners; sidewalk trees (21); void clutter such as bins (4).
* some scenes keep the **ego vehicle** (1) as a curved hood at the bottom, and some a black
  **unlabeled** (0) border, so ignore handling is exercised.

The image is rendered from a material per pixel (a colour, a per-pixel grain and a soft blotchy
variation), then lit: a global gain (0.8-1.2), colour cast and offset, and Gaussian sensor
noise. Across the images the layout varies (horizon, focal length, road, sidewalk and terrain
widths, building heights and colours, gaps, the cross street, the number, kind, place and size
of every object), so a network has to generalise rather than memorise.

About 13 of the 19 evaluated classes appear in a typical image; over 200 images all 19 do.

Deliberately ambiguous classes
------------------------------
Three groups share their local appearance exactly and differ only by long-range context, so a
model with global context (DGCNet's graph reasoning) has something to gain over a local one:

1. **road vs sidewalk**: one asphalt material, same colour, grain and blotches. A sidewalk is a
   strip running along the facades (and along the cross street); the road is the central region
   between the two sidewalks, widening towards the camera.
2. **truck vs bus vs train**: one body material, the same height (3.2 m), under-body band,
   window row (period 1.6 m) and wheel spacing (4 m). Only the overall length tells them apart:
   a truck is 5.5-8 m, a bus 10.5-13.5 m, a train spans most of the image width. In version 1 a
   train appears without trucks or buses, so "is there a train in this image" settles every
   vehicle of the image; version 2 removes that shortcut (below).
3. **building vs wall**: walls use the facade colours and the facade's plain ground-floor
   texture (the same joints). A building is tall, reaches the top of the image or the sky and
   has windows higher up; a wall is a low strip (0.5-1.8 m) with hedges and trees behind it.

Persons and riders also share clothes and skin materials: a rider is recognised by the bicycle
or motorcycle under it.

Versions
--------
``GENERATOR_VERSION`` is recorded in ``minicity.json``; every version stays reproducible byte for
byte (``generate_scene(..., version=1)``, ``dgcn make-minicity --generator-version 1``,
``data.minicity_version: 1``), so the tables made on older data can be rebuilt.

* **Version 1** (the first edition): the rules above, with a train never beside a truck or a bus.
* **Version 2** (the default): the big vehicles are ambiguous per object, not per image. Every image
  with a cross street holds two different big-vehicle classes, one on each lane (two depths): half
  the time a train (on the far lane) and a truck or a bus, otherwise a truck and a bus; in 40 % of
  the lanes a second truck or bus follows 2-6 m behind the first. Trucks and buses are placed wholly
  inside the image where they fit. An image-level vector ("a train and a truck are in this image")
  no longer says which object is which, and an object's length in pixels alone does not either (the
  two lanes and the cross street's depth, 16-40 m, change the scale): its length against its height
  (3.2 m for all three) does, which needs the object's whole extent. Road vs sidewalk and building
  vs wall were already decided per region in version 1 (where a strip runs relative to the facades;
  low walls beside tall buildings on the same street) and are unchanged. Everything else is drawn as
  in version 1, from the same random stream up to the crossing traffic (the draws after it differ).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from dgcn.datasets.minicity.drawing import (
    BUILDING,
    BUS,
    EGO,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    TRAIN,
    TRUCK,
    UNLABELED,
    VEGETATION,
    Camera,
    Canvas,
)
from dgcn.datasets.minicity.things import (
    BIG_BODY,
    Shared,
    big_vehicle,
    building_side,
    car_rear,
    car_side,
    facade,
    facade_materials,
    facade_pattern,
    fence_side,
    hedge_side,
    light_post,
    litter_bin,
    person,
    pole,
    sign_post,
    tree,
    two_wheeler,
    wall_side,
)
from dgcn.datasets.minicity.traffic import (
    BigVehicle,
    big_length,
    mixed_traffic,
    place,
    train_span,
)

#: the generator's version, recorded in ``minicity.json`` and checked before a MiniCity on disk
#: is reused
GENERATOR_VERSION = 2
#: the versions the generator can still draw (every version stays reproducible)
VERSIONS = (1, 2)
#: the three groups of look-alike classes that only long-range context tells apart (above)
CONTEXT_CLASSES = ("road", "sidewalk", "building", "wall", "truck", "bus", "train")
#: the share of the scenes with a cross street, and its distance from the camera (m)
CROSSING_SHARE = 0.85
CROSS_STREET_DEPTH = (16.0, 40.0)
# kinds of stretches along the facade line, and their probabilities
_SEGMENTS = ("building", "wall", "fence", "trees")
_SEGMENT_P = (0.58, 0.22, 0.12, 0.08)


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
    rng: np.random.Generator,
    height: int = 128,
    width: int = 256,
    version: int = GENERATOR_VERSION,
    *,
    vehicles: list[BigVehicle] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic street scene.

    Args:
        rng: the random generator; the scene is a deterministic function of its state.
        height: image height in pixels (at least 16).
        width: image width in pixels (at least 16).
        version: the generator's rules, one of :data:`VERSIONS` (1 rebuilds the first
            edition's data byte for byte; 2, the default, mixes the big vehicles).
        vehicles: a list to which every truck, bus and train of the scene is appended, as a
            :class:`~dgcn.datasets.minicity.traffic.BigVehicle` (its class, depth, length and
            box in pixels), in the order placed; the scene is the same with or without it.

    Returns:
        ``(image, label_ids)``: uint8 [height, width, 3] RGB and uint8 [height, width] Cityscapes
        label ids (not train ids).

    Raises:
        ValueError: when height or width is below 16.
    """
    if height < 16 or width < 16:
        raise ValueError(f"MiniCity scenes need at least 16x16 pixels, got {height}x{width}")
    if version not in VERSIONS:
        raise ValueError(f"MiniCity generator version must be one of {VERSIONS}, got {version!r}")
    h, w = int(height), int(width)
    cam = Camera(
        f=w * float(rng.uniform(0.75, 1.0)),
        xv=w * (0.5 + float(rng.uniform(-0.07, 0.07))),
        yh=h * float(rng.uniform(0.36, 0.5)),
        hc=float(rng.uniform(1.2, 1.6)),
    )
    cv = Canvas(h, w, cam)
    facades = facade_materials(cv, rng)
    grey = float(rng.uniform(78, 128))
    sh = Shared(
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
        big_body=cv.material(BIG_BODY, grain=5.0, blotch=0.03),
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
    crossing = rng.random() < CROSSING_SHARE
    zx = float(rng.uniform(*CROSS_STREET_DEPTH))
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
            plain, joint = facade(sh, rng)
            p = cv.frontal(u, u + span, 0.0, float(rng.uniform(6.0, 35.0)), z_end)
            if p is not None:
                pat = facade_pattern(p, plain, joint, sh.glass, True, rng.uniform(2.6, 4.0))
                cv.put(p, None, BUILDING, pat)
        else:
            tree(cv, rng, sh, u + span / 2, z_end - 1.0, rng.uniform(2, 4), rng.uniform(3, 6))
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
                building_side(cv, rng, sh, sign, dd, z0, z1, depth)
                continue
            # a gap: trees and a hedge behind, then a wall or a fence on the facade line
            for _ in range(int(rng.integers(1, 4))):
                r = float(rng.uniform(1.8, 3.5))
                r = min(r, 0.45 * (z1 - z0))
                zt = float(rng.uniform(z0 + r, z1 - r)) if z1 - z0 > 2 * r else (z0 + z1) / 2
                xt = sign * (dd + r + 0.5 + float(rng.uniform(0.0, 3.0)))
                tree(cv, rng, sh, xt, zt, float(rng.uniform(2.0, 4.0)), r)
            if kind != "trees":
                hedge_side(cv, rng, sh, sign * (dd + 0.6), z0, z1, float(rng.uniform(1.2, 2.6)))
            if kind == "wall":
                wall_side(cv, rng, sh, sign * dd, z0, z1, float(rng.uniform(0.6, 1.8)))
            elif kind == "fence":
                fence_side(cv, rng, sign * dd, z0, z1, float(rng.uniform(1.0, 2.0)))
        # a low wall or fence between the sidewalk and a terrain strip
        grass = dd - road[sign] - walk[sign]
        if grass > 0 and rng.random() < 0.5:
            lateral = sign * (road[sign] + walk[sign])
            za = z_edge * 0.3
            zb = min(z_near if crossing else z_end, za + float(rng.uniform(15, 60)))
            if rng.random() < 0.5:
                wall_side(cv, rng, sh, lateral, za, zb, float(rng.uniform(0.5, 1.0)))
            else:
                fence_side(cv, rng, lateral, za, zb, float(rng.uniform(0.8, 1.4)))

    # --- street objects, collected then painted far to near --------------------------------
    things: list[tuple[float, Callable[[], None]]] = []
    z_min = max(3.0, 1.1 * z_bottom)
    z_max = min(0.7 * z_end, 90.0)

    def visible(zz: float) -> tuple[float, float]:
        return -cam.xv * zz / cam.f, (w - cam.xv) * zz / cam.f

    def add(zz: float, fn: Callable[..., None], *args: Any) -> None:
        things.append((zz, lambda: fn(*args)))

    def add_vehicle(zz: float, label: int, x0: float, length: float) -> None:
        add(zz, big_vehicle, cv, sh, label, x0, length, zz)
        if vehicles is not None:
            vehicles.append(BigVehicle.seen(cam, label, zz, x0, length))

    def curb_side() -> int:
        return -1 if rng.random() < 0.5 else 1

    for _ in range(int(rng.integers(1, 9))):  # pedestrians on the sidewalks
        s = curb_side()
        zz = _log_uniform(rng, z_min, z_max)
        add(zz, person, cv, rng, s * (road[s] + float(rng.uniform(0.3, walk[s] - 0.3))), zz)
    for _ in range(int(rng.integers(0, 6))):  # cars in the lanes
        zz = _log_uniform(rng, max(8.0, z_min), min(0.8 * z_end, 120.0))
        add(zz, car_rear, cv, rng, sh, float(rng.uniform(-road_l + 1.0, road_r - 1.0)), zz)
    for s in (-1, 1):  # parked cars, sidewalk trees, street lamps
        for _ in range(int(rng.integers(0, 4))):
            zz = _log_uniform(rng, max(6.0, z_min), z_max)
            add(zz, car_rear, cv, rng, sh, s * (road[s] - 1.05), zz)
        for _ in range(int(rng.integers(0, 4))):
            zz = _log_uniform(rng, z_min, z_max)
            trunk, crown = float(rng.uniform(2.2, 3.5)), float(rng.uniform(1.4, 2.8))
            add(zz, tree, cv, rng, sh, s * (road[s] + walk[s] - 0.6), zz, trunk, crown)
        for _ in range(int(rng.integers(0, 3))):
            zz = _log_uniform(rng, z_min, z_max)
            top, arm = float(rng.uniform(6.0, 8.0)), -s * float(rng.uniform(0.8, 1.8))
            add(zz, pole, cv, sh, s * (road[s] + 0.4), zz, top, arm)
    for _ in range(int(rng.integers(1, 4))):  # sign posts
        s = curb_side()
        zz = _log_uniform(rng, z_min, z_max)
        add(zz, sign_post, cv, rng, sh, s * (road[s] + float(rng.uniform(0.3, 0.8))), zz)
    for _ in range(int(rng.integers(0, 3))):  # clutter on the sidewalks (void)
        s = curb_side()
        zz = _log_uniform(rng, z_min, z_max)
        add(zz, litter_bin, cv, rng, s * (road[s] + float(rng.uniform(0.5, walk[s] - 0.3))), zz)
    if crossing:
        for s in (-1, 1):  # traffic lights at the corners of the crossing
            for zz in (z_near - 0.5, z_far + 0.5):
                if rng.random() < 0.7:
                    add(zz, light_post, cv, rng, sh, s * (road[s] + 0.5), zz)
        for _ in range(int(rng.integers(0, 4))):  # pedestrians on the crossing
            zz = float(rng.uniform(zx - cw, zx - cw + 2.0))
            add(zz, person, cv, rng, float(rng.uniform(-road_l, road_r)), zz)
        lanes = (zx - cw / 2 - 1.2, zx + cw / 2 - 1.2)  # side faces of crossing traffic
        if version >= 2:
            for zz, label, x0, length in mixed_traffic(rng, lanes, visible):
                add_vehicle(zz, label, x0, length)
        elif rng.random() < 0.3:  # a train, on its own
            zz = lanes[int(rng.integers(2))]
            add_vehicle(zz, TRAIN, *train_span(rng, *visible(zz)))
        else:
            for _ in range(int(rng.integers(0, 3))):
                zz = lanes[int(rng.integers(2))]
                lo, hi = visible(zz)
                label = TRUCK if rng.random() < 0.5 else BUS
                length = big_length(rng, label)
                add_vehicle(zz, label, place(rng, lo, hi, length)[0], length)
        for _ in range(int(rng.integers(0, 3))):
            zz = lanes[int(rng.integers(2))] + 0.3
            lo, hi = visible(zz)
            add(zz, car_side, cv, rng, sh, float(rng.uniform(lo - 2, hi - 2)), zz)
        for _ in range(int(rng.integers(0, 3))):
            zz = float(rng.uniform(zx - cw + 0.8, zx + cw - 0.8))
            lo, hi = visible(zz)
            add(zz, two_wheeler, cv, rng, sh, float(rng.uniform(lo + 1, hi - 1)), zz)
    else:
        if rng.random() < 0.5:
            s = curb_side()
            zz = _log_uniform(rng, z_min, z_max)
            add(zz, light_post, cv, rng, sh, s * (road[s] + 0.5), zz)
        for _ in range(int(rng.integers(0, 2))):
            zz = _log_uniform(rng, max(6.0, z_min), z_max)
            add(zz, two_wheeler, cv, rng, sh, float(rng.uniform(-road_l + 1, road_r - 1)), zz)

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


def _render(cv: Canvas, rng: np.random.Generator, sky: int, sky_rows: int) -> np.ndarray:
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
