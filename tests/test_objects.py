"""The big-vehicle object score: connected components and the majority vote per object."""

import pytest
import torch
from helpers import flood_components, plain_object_counts

from dgcn.datasets.labels import CLASS_NAMES
from dgcn.evaluation.objects import BIG_VEHICLES, MIN_PIXELS, ObjectScore, label_components

VEHICLES = [CLASS_NAMES.index(name) for name in BIG_VEHICLES]  # 14, 15, 16


def expected_components(labels, classes):
    """label_components by a flood fill: ids in the order of each component's first pixel."""
    expected = torch.full(labels.shape, -1, dtype=torch.int64)
    for n, pixels in enumerate(flood_components(labels, classes)):
        for b, i, j in pixels:
            expected[b, i, j] = n
    return expected


def blobs(batch, height, width, cell, generator):
    """Random labels of 0, the three vehicles and 255 on a coarse grid, upsampled: big,
    irregular same-class regions that touch each other, as well as single pixels."""
    choices = torch.tensor([0, 14, 15, 16, 255])
    coarse = choices[
        torch.randint(0, 5, (batch, height // cell, width // cell), generator=generator)
    ]
    labels = coarse.repeat_interleave(cell, 1).repeat_interleave(cell, 2)
    speckle = torch.rand(labels.shape, generator=generator) < 0.05
    noise = choices[torch.randint(0, 5, labels.shape, generator=generator)]
    return torch.where(speckle, noise, labels)


@pytest.mark.parametrize("cell", [1, 3, 5])
def test_components_equal_a_flood_fill_on_random_masks(cell):
    generator = torch.Generator().manual_seed(cell)
    labels = blobs(3, 30, 40, cell, generator)
    found = label_components(labels, VEHICLES)
    assert torch.equal(found, expected_components(labels, set(VEHICLES)))
    only_bus = label_components(labels.to(torch.uint8), [15])
    assert torch.equal(only_bus, expected_components(labels, {15}))


def test_a_winding_component_is_one_object():
    """A serpentine of one class (its ends far apart along the path) and a ring around a
    pixel of another class: the slow cases of label propagation."""
    snake = torch.zeros(1, 21, 23, dtype=torch.int64)
    snake[0, ::2] = 14  # rows joined at alternating ends
    for i in range(1, 21, 2):
        snake[0, i, 22 if i % 4 == 1 else 0] = 14
    ring = torch.full((1, 21, 23), 15)
    ring[0, 1:-1, 1:-1] = 16
    ring[0, 2:-2, 2:-2] = 0
    labels = torch.cat([snake, ring])
    found = label_components(labels, VEHICLES)
    assert torch.equal(found, expected_components(labels, set(VEHICLES)))
    assert found[0].unique().tolist() == [-1, 0] and found[1].unique().tolist() == [-1, 1, 2]


def test_two_vehicles_side_by_side_one_right_one_wrong():
    masks = torch.zeros(1, 8, 12, dtype=torch.int64)
    preds = torch.zeros(1, 8, 12, dtype=torch.int64)
    masks[0, 1:5, 0:5] = 14  # a truck (20 px) touching a bus (20 px): two objects
    masks[0, 1:5, 5:10] = 15
    masks[0, 6:8, 10:12] = 16  # a train of 4 px: below MIN_PIXELS, not counted
    masks[0, 0, :] = 255
    preds[0, 1:5, 0:5] = 14
    preds[0, 1:3, 0:4] = 15  # 8 of the truck's 20 px called bus: 12 truck, still right
    preds[0, 1:5, 5:10] = 13  # the bus called car but for 6 px: wrong
    preds[0, 1:3, 5:8] = 15
    preds[0, 6:8, 10:12] = 16
    score = ObjectScore().update(preds, masks)
    assert score.summary() == {
        "object_accuracy": 0.5,
        "per_class": {"truck": 1.0, "bus": 0.0, "train": None},
        "counts": {"truck": [1, 1], "bus": [0, 1], "train": [0, 0]},
    }
    assert ObjectScore(min_pixels=4).update(preds, masks).summary()["counts"]["train"] == [1, 1]
    tie = preds.clone()
    tie[0, 1:5, 0:5] = 15
    tie[0, 1:3, 0:5] = 14  # the truck: 10 px truck, 10 px bus, a tie is not right
    assert ObjectScore().update(tie, masks).summary()["counts"]["truck"] == [0, 1]


def test_score_equals_a_plain_recount_over_batches():
    generator = torch.Generator().manual_seed(0)
    masks = blobs(6, 32, 48, 4, generator)
    other = blobs(6, 32, 48, 8, generator).clamp(max=18)  # whole regions called wrong
    keep = torch.rand(masks.shape, generator=generator) < 0.5
    preds = torch.where(keep, masks.clamp(max=18), other)
    score = ObjectScore()
    for i in range(0, 6, 4):  # two batches, objects never span them
        score.update(preds[i : i + 4], masks[i : i + 4])
    expected = plain_object_counts(preds, masks, set(VEHICLES), MIN_PIXELS)
    counts = score.summary()["counts"]
    assert counts == {name: expected[c] for name, c in zip(BIG_VEHICLES, VEHICLES, strict=True)}
    right, total = sum(r for r, _ in counts.values()), sum(t for _, t in counts.values())
    assert total > 10 and 0 < right < total
    assert score.summary()["object_accuracy"] == pytest.approx(right / total)


def test_bad_inputs_name_the_cause():
    with pytest.raises(ValueError, match="same shape"):
        ObjectScore().update(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5))
    with pytest.raises(ValueError, match=r"outside \[0, 19\)"):
        ObjectScore().update(torch.full((1, 4, 4), 19), torch.full((1, 4, 4), 14))
    with pytest.raises(ValueError, match="unknown class 'lorry'"):
        ObjectScore(classes=("lorry",))
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        label_components(torch.zeros(4, 4), VEHICLES)
    assert ObjectScore().update(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4)).summary() == {
        "object_accuracy": None,
        "per_class": dict.fromkeys(BIG_VEHICLES),
        "counts": {name: [0, 0] for name in BIG_VEHICLES},
    }
