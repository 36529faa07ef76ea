"""Marks on a scene (dgcn.viz.regions): the vehicles' tags, the regions' outlines, the figure."""

import numpy as np
import pytest

pytest.importorskip(
    "matplotlib", reason="the figures need matplotlib (pip install -e .[notebooks])"
)
from matplotlib.patches import Rectangle  # noqa: E402

from dgcn import viz  # noqa: E402
from dgcn.datasets.labels import NAME_TO_ID  # noqa: E402
from dgcn.datasets.minicity.traffic import BIG_HEIGHT, BigVehicle  # noqa: E402

TRUCK, BUS, TRAIN = NAME_TO_ID["truck"], NAME_TO_ID["bus"], NAME_TO_ID["train"]


def vehicle(label, depth, left, right, length, top=20.0, bottom=40.0):
    return BigVehicle(label, depth, 0.0, length, (left, top, right, bottom))


def test_vehicle_tags_give_the_lane_and_the_length_in_pixels_and_heights():
    near = vehicle(TRUCK, 20.0, 10.0, 74.0, 6.4)  # 64 px; 6.4 m / 3.2 m = 2.0 heights
    far = vehicle(BUS, 30.0, 80.0, 117.0, 12.5, top=25, bottom=35)
    cut = vehicle(TRAIN, 30.0, -40.0, 100.0, 30.0, top=25, bottom=35)
    marks = viz.regions.vehicle_marks([near, far, cut], width=128)
    assert [m.text for m in marks] == [
        "truck (near lane)\n64 px = 2.0 heights",
        f"bus (far lane)\n37 px = {12.5 / BIG_HEIGHT:.1f} heights",
        "train (far lane)\ncut by the border",
    ]
    assert [m.side for m in marks] == ["below", "above", "above"]
    assert marks[0].at == (10.0, 40.0) and marks[1].at == (80.0, 25) and marks[2].at[0] == 0.0
    assert [m.colour for m in marks] == [
        viz.regions.VEHICLE_COLOURS[n] for n in ("truck", "bus", "train")
    ]
    assert all(m.box is not None and m.mask is None for m in marks)
    (alone,) = viz.regions.vehicle_marks([near], width=128)  # one depth: no lane to name
    assert alone.text == "truck\n64 px = 2.0 heights"


def test_class_outlines_keep_the_large_regions_and_tag_the_largest():
    target = np.full((20, 30), 5)
    target[2:7, 2:12] = 0  # 50 pixels
    target[10:20, 15:25] = 0  # 100 pixels: the largest
    target[0:2, 25:30] = 0  # 10 pixels: too small
    target[12:14, 0:5] = 1  # 10 pixels of another class: too small, no mark
    marks = viz.regions.class_outlines(
        target, {0: "road", 1: "sidewalk"}, {0: (1, 2, 3), 1: (4, 5, 6)}
    )
    (road,) = marks
    expected = np.zeros_like(target, dtype=bool)
    expected[2:7, 2:12] = expected[10:20, 15:25] = True
    assert road.text == "road" and road.colour == (1, 2, 3) and road.side == "on"
    assert np.array_equal(road.mask, expected)
    col, row = (int(c - 0.5) for c in road.at)
    assert 10 <= row < 20 and 15 <= col < 25  # in the largest region, near its centre
    assert abs(row - 14.5) <= 1 and abs(col - 19.5) <= 1


def test_tags_stay_inside_the_image_and_off_each_other():
    boxes = [(30.0, 30.0, 60.0, 50.0), (35.0, 30.0, 65.0, 50.0), (40.0, 31.0, 70.0, 50.0)]
    marks = [
        viz.regions.Mark(f"truck {k}\nlong tag", (0, 0, 0), box=b, at=(b[0], b[1]), side="above")
        for k, b in enumerate(boxes)
    ]
    spots = viz.regions._tag_spots(marks, (100, 128), fontsize=9.0, points_per_pixel=1.35)
    scale = 9.0 / 1.35  # the font size in image pixels; a tag's size, estimated as the module does
    w, h = 0.55 * scale * len("long tag") + 0.5 * scale, 1.25 * scale * 2 + 0.5 * scale
    rects = [(x, y, x + w, y + h) for x, y in spots]
    for i, a in enumerate(rects):
        assert 0 <= a[0] and a[2] <= 128 and 0 <= a[1] and a[3] <= 100 + 1e-9
        for b in rects[:i]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    assert spots[0] == (30.0, 30.0 - h)  # the first goes where it was asked


def test_marked_scenes_draws_the_marks_on_the_image_and_their_lines_on_the_label():
    rgb = np.zeros((32, 64, 3), dtype=np.uint8)
    target = np.zeros((32, 64), dtype=np.int64)
    target[20:] = 1
    boxes = viz.regions.vehicle_marks([vehicle(TRUCK, 20.0, 4.0, 36.0, 6.4, 5, 21)], width=64)
    outlines = viz.regions.class_outlines(target, {1: "sidewalk"}, {1: (250, 220, 0)})
    fig = viz.regions.marked_scenes([("a", rgb, target, boxes), ("b", rgb, target, outlines)])
    assert fig.dpi <= 100 and fig.get_figwidth() == viz.regions.BOOK_WIDTH
    (a_image, a_label), (b_image, b_label) = np.reshape(fig.axes, (2, 2))
    assert [type(p) for p in a_image.patches] == [Rectangle] == [type(p) for p in a_label.patches]
    assert [t.get_text() for t in a_image.texts] == ["truck\n32 px = 2.0 heights"]
    assert len(a_label.texts) == len(b_label.texts) == 0
    assert [t.get_text() for t in b_image.texts] == ["sidewalk"]
    assert b_image.collections and b_label.collections  # the contour
    assert a_image.get_title() == "a" and a_label.get_title() == viz.regions.LABEL_TITLE
    with pytest.raises(ValueError, match="at least one row"):
        viz.regions.marked_scenes([])
