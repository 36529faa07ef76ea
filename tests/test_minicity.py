"""MiniCity: determinism, the Cityscapes layout, class coverage and the designed ambiguities."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgcn.config import load_config
from dgcn.datasets import cityscapes
from dgcn.datasets.labels import LABELS, NAME_TO_ID, NUM_CLASSES, VALID_IDS, id_to_train_id_lut
from dgcn.datasets.minicity import (
    DEFAULT_ROOT,
    GENERATOR_VERSION,
    ensure_minicity,
    generate_scene,
    make_minicity,
)
from dgcn.errors import DatasetError

SMALL = {"height": 64, "width": 128, "progress": False}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _id_colours() -> np.ndarray:
    lut = np.zeros((256, 3), dtype=np.uint8)
    for label in LABELS:
        if label.id >= 0:
            lut[label.id] = label.color
    return lut


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, np.ndarray]]:
    """240 small scenes, shared by the statistics tests."""
    return [generate_scene(np.random.default_rng([7, i]), 64, 128) for i in range(240)]


def test_the_cpu_preset_uses_the_default_root() -> None:
    data = load_config("minicity-cpu").data
    assert data.dataset == "minicity" and data.root == DEFAULT_ROOT


def test_a_minicity_of_another_generator_version_is_not_reused(tmp_path: Path) -> None:
    root = ensure_minicity(tmp_path / "mini", train=1, val=1, **SMALL)
    marker = json.loads((root / "minicity.json").read_text())
    assert marker["version"] == GENERATOR_VERSION
    before = _mtimes(root)
    older = {**marker, "version": GENERATOR_VERSION - 1}
    (root / "minicity.json").write_text(json.dumps(older))
    asked = "holds MiniCity of generator version 1, version 2 is asked for: remove"
    with pytest.raises(DatasetError, match=asked):
        ensure_minicity(root, train=1, val=1, **SMALL)
    with pytest.raises(DatasetError, match="differing: counts, height, version, width"):
        ensure_minicity(root)  # without parameters: the defaults, never the stale files
    before["minicity.json"] = _mtimes(root)["minicity.json"]
    assert _mtimes(root) == before


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    counts = make_minicity(a, train=3, val=2, test=1, seed=0, **SMALL)
    assert counts == {"train": 3, "val": 2, "test": 1}
    make_minicity(b, train=3, val=2, test=1, seed=0, **SMALL)
    files_a = _files(a)
    assert len(files_a) == 6 * 3 + 1
    assert files_a == _files(b)
    make_minicity(c, train=3, val=2, test=1, seed=1, **SMALL)
    files_c = _files(c)
    assert files_c.keys() == files_a.keys()
    images = [k for k in files_a if k.endswith("_leftImg8bit.png")]
    assert all(files_a[k] != files_c[k] for k in images)


def test_files_do_not_depend_on_the_counts(tmp_path: Path) -> None:
    make_minicity(tmp_path / "few", train=2, val=1, **SMALL)
    make_minicity(tmp_path / "more", train=5, val=3, **SMALL)
    few, more = _files(tmp_path / "few"), _files(tmp_path / "more")
    shared = [k for k in few if k != "minicity.json"]
    assert shared and all(few[k] == more[k] for k in shared)


def test_cityscapes_layout(tmp_path: Path) -> None:
    counts = make_minicity(tmp_path, train=4, val=2, test=2, seed=3, **SMALL)
    colours = _id_colours()
    cities: dict[str, set[str]] = {}
    for split, n in counts.items():
        images = sorted((tmp_path / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
        assert len(images) == n
        cities[split] = {p.parent.name for p in images}
        for image_path in images:
            city = image_path.parent.name
            stem = image_path.name[: -len("_leftImg8bit.png")]
            name_city, seq, frame = stem.split("_")
            assert name_city == city and len(seq) == 6 and frame == "000019"
            label_dir = tmp_path / "gtFine" / split / city
            label_path = label_dir / f"{stem}_gtFine_labelIds.png"
            colour_path = label_dir / f"{stem}_gtFine_color.png"
            with Image.open(image_path) as im, Image.open(label_path) as lb:
                with Image.open(colour_path) as co:
                    assert (im.mode, lb.mode, co.mode) == ("RGB", "L", "RGB")
                    assert im.size == lb.size == co.size == (128, 64)
                    ids = np.asarray(lb)
                    colour = np.asarray(co)
            assert set(np.unique(ids).tolist()) <= VALID_IDS
            np.testing.assert_array_equal(colour, colours[ids])
    assert not cities["train"] & cities["val"]
    assert not cities["val"] & cities["test"]
    assert not cities["train"] & cities["test"]
    assert len(cities["train"]) >= 2
    marker = json.loads((tmp_path / "minicity.json").read_text())
    assert marker["seed"] == 3 and marker["version"] == GENERATOR_VERSION
    assert marker["counts"] == counts
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_cityscapes_loader_reads_it(tmp_path: Path) -> None:
    make_minicity(tmp_path, train=3, val=1, **SMALL)
    assert len(cityscapes.scan_split(tmp_path, "train")) == 3
    assert len(cityscapes.scan_split(tmp_path, "val")) == 1


def test_every_train_class_appears() -> None:
    lut = id_to_train_id_lut()
    seen: set[int] = set()
    per_image = []
    for i in range(60):
        image, ids = generate_scene(np.random.default_rng([0, 0, i]))
        assert image.shape == (128, 256, 3) and image.dtype == np.uint8
        assert ids.shape == (128, 256) and ids.dtype == np.uint8
        present = {int(t) for t in np.unique(lut[ids]) if t < NUM_CLASSES}
        per_image.append(len(present))
        seen |= present
    assert seen == set(range(NUM_CLASSES))
    assert np.mean(per_image) >= 10  # a scene holds many classes, not one each


def test_void_pixels_appear(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    ego = sum(bool((ids == NAME_TO_ID["ego vehicle"]).any()) for _, ids in scenes)
    unlabeled = sum(bool((ids == NAME_TO_ID["unlabeled"]).any()) for _, ids in scenes)
    assert 0 < ego < len(scenes) and 0 < unlabeled < len(scenes)


def _mean(scenes: list[tuple[np.ndarray, np.ndarray]], name: str) -> np.ndarray:
    """The mean colour of a class, pooled over all pixels of all scenes."""
    total, count = np.zeros(3), 0
    for image, ids in scenes:
        mask = ids == NAME_TO_ID[name]
        total += image[mask].sum(0)
        count += int(mask.sum())
    assert count > 0, name
    return total / count


def test_road_and_sidewalk_look_the_same(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    road, sidewalk = _mean(scenes, "road"), _mean(scenes, "sidewalk")
    assert np.abs(road - sidewalk).max() < 2.5
    sky, vegetation = _mean(scenes, "sky"), _mean(scenes, "vegetation")
    assert np.abs(sky - vegetation).max() > 60


def _body_means(scenes: list[tuple[np.ndarray, np.ndarray]], name: str) -> np.ndarray:
    """[images, 3]: the mean body-paint colour of a class in every image that shows it."""
    out = []
    for image, ids in scenes:
        # the body paint only: no windows, wheels or under-body band
        mask = (ids == NAME_TO_ID[name]) & (image.astype(np.int32).sum(-1) > 300)
        if mask.sum() >= 20:
            out.append(image[mask].mean(0))
    assert len(out) >= 10, name
    return np.array(out)


def test_truck_bus_and_train_look_the_same(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    # within one image (same lighting) a truck and a bus have the same paint
    diffs = []
    for image, ids in scenes:
        bright = image.astype(np.int32).sum(-1) > 300
        truck = (ids == NAME_TO_ID["truck"]) & bright
        bus = (ids == NAME_TO_ID["bus"]) & bright
        if truck.sum() >= 20 and bus.sum() >= 20:
            diffs.append(np.abs(image[truck].mean(0) - image[bus].mean(0)).max())
    assert len(diffs) >= 3 and np.median(diffs) < 5
    # across images (lighting varies by +-20 %) the three classes have the same mean paint: no
    # difference above 3.5 standard errors (about 4 levels each at 240 scenes)
    means = {name: _body_means(scenes, name) for name in ("truck", "bus", "train")}
    for a in means.values():
        for b in means.values():
            diff = np.abs(a.mean(0) - b.mean(0))
            stderr = np.sqrt(a.var(0) / len(a) + b.var(0) / len(b))
            assert diff.max() < 15 and (diff / stderr).max() < 3.5
    # ordinary classes differ clearly
    car = _mean(scenes, "car")
    assert np.abs(car - means["bus"].mean(0)).max() > 30


def test_buses_are_longer_than_trucks(scenes: list[tuple[np.ndarray, np.ndarray]]) -> None:
    def aspect(name: str) -> float:
        ratios = []
        for _, ids in scenes:
            mask = ids == NAME_TO_ID[name]
            if mask.sum() < 30:
                continue
            cols, rows = np.nonzero(mask.any(0))[0], np.nonzero(mask.any(1))[0]
            ratios.append((cols[-1] - cols[0] + 1) / (rows[-1] - rows[0] + 1))
        return float(np.median(ratios))

    assert aspect("truck") < aspect("bus") < aspect("train")


def test_second_call_does_not_rewrite(tmp_path: Path) -> None:
    make_minicity(tmp_path, train=2, val=1, **SMALL)
    before = _mtimes(tmp_path)
    assert make_minicity(tmp_path, train=2, val=1, **SMALL) == {"train": 2, "val": 1, "test": 0}
    assert _mtimes(tmp_path) == before


def test_other_parameters_need_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "mc"
    make_minicity(out, train=2, val=1, **SMALL)
    with pytest.raises(DatasetError, match="overwrite") as info:
        make_minicity(out, train=2, val=1, seed=5, **SMALL)
    assert str(out) in str(info.value) and "--out" in str(info.value)
    counts = make_minicity(out, train=1, val=1, seed=5, overwrite=True, **SMALL)
    assert counts == {"train": 1, "val": 1, "test": 0}
    assert len(list((out / "leftImg8bit" / "train").glob("*/*.png"))) == 1
    assert json.loads((out / "minicity.json").read_text())["seed"] == 5


def test_refuses_a_folder_that_is_not_minicity(tmp_path: Path) -> None:
    (tmp_path / "leftImg8bit" / "train" / "aachen").mkdir(parents=True)
    with pytest.raises(DatasetError, match=str(tmp_path)):
        make_minicity(tmp_path, train=1, val=0, **SMALL)


def test_interrupted_generation_is_redone(tmp_path: Path) -> None:
    make_minicity(tmp_path, train=3, val=1, **SMALL)
    reference = _files(tmp_path)
    next(tmp_path.glob("leftImg8bit/train/*/*.png")).unlink()
    (tmp_path / "minicity.json").unlink()
    make_minicity(tmp_path, train=3, val=1, **SMALL)
    assert _files(tmp_path) == reference


def test_ensure_minicity(tmp_path: Path) -> None:
    root = ensure_minicity(tmp_path / "mini", train=2, val=1, **SMALL)
    assert root == tmp_path / "mini" and (root / "minicity.json").is_file()
    before = _mtimes(root)
    assert ensure_minicity(root) == root  # any finished MiniCity is reused as it is
    assert _mtimes(root) == before


def test_full_size_scene() -> None:
    image, ids = generate_scene(np.random.default_rng(0), 1024, 2048)
    assert image.shape == (1024, 2048, 3) and image.dtype == np.uint8
    assert ids.shape == (1024, 2048) and ids.dtype == np.uint8
    assert set(np.unique(ids).tolist()) <= VALID_IDS


def test_too_small_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_scene(np.random.default_rng(0), 8, 8)
    with pytest.raises(DatasetError):
        make_minicity(tmp_path, train=-1)


def test_version_1_is_rebuilt_byte_for_byte() -> None:
    # the sha256 of the first edition's scenes (images and labels, seeds [0, split, i]), taken
    # from the generator before version 2 existed: the v1 tables can still be rebuilt
    digest = hashlib.sha256()
    for split in range(3):
        for i in range(4):
            image, ids = generate_scene(np.random.default_rng([0, split, i]), 128, 256, version=1)
            digest.update(image.tobytes())
            digest.update(ids.tobytes())
    assert digest.hexdigest() == "49bf7086e9eba9f5f7f865d4ff58369f803bcf38e1a9479e9cd07902c8d51427"


def _big_classes(ids: np.ndarray, least: int = 30) -> set[str]:
    return {n for n in ("truck", "bus", "train") if (ids == NAME_TO_ID[n]).sum() >= least}


def test_version_2_mixes_the_big_vehicles_in_one_image() -> None:
    mixed = {1: 0, 2: 0}
    with_train = {1: 0, 2: 0}
    for version in (1, 2):
        for i in range(120):
            _, ids = generate_scene(np.random.default_rng([5, i]), 64, 128, version=version)
            found = _big_classes(ids)
            mixed[version] += len(found) >= 2
            with_train[version] += "train" in found and len(found) >= 2
    assert with_train[1] == 0  # v1: a train is alone, the image-level shortcut
    assert mixed[2] >= 0.5 * 120 and with_train[2] >= 0.2 * 120


def test_version_2_pixel_length_alone_does_not_tell_a_truck_from_a_bus() -> None:
    # per object (a run of columns of one class in one image): lengths in pixels overlap across
    # images, the length over the height does not
    lengths: dict[str, list[float]] = {"truck": [], "bus": []}
    aspects: dict[str, list[float]] = {"truck": [], "bus": []}
    for i in range(200):
        _, ids = generate_scene(np.random.default_rng([9, i]), 128, 256)
        for name in lengths:
            mask = ids == NAME_TO_ID[name]
            if mask.sum() < 60 or mask[:, 0].any() or mask[:, -1].any():
                continue  # absent, or cut by the image border
            cols = np.nonzero(mask.any(0))[0]
            if cols[-1] - cols[0] + 1 != len(cols):
                continue  # two objects of the class in the image
            rows = np.nonzero(mask.any(1))[0]
            lengths[name].append(len(cols))
            aspects[name].append(len(cols) / (rows[-1] - rows[0] + 1))
    assert len(lengths["truck"]) >= 20 and len(lengths["bus"]) >= 20

    def best_split(values: dict[str, list[float]]) -> float:
        """The accuracy of the best threshold "truck below, bus above"."""
        truck, bus = np.asarray(values["truck"]), np.asarray(values["bus"])
        return max(
            ((truck < t).sum() + (bus >= t).sum()) / (len(truck) + len(bus))
            for t in np.concatenate([truck, bus])
        )

    # occluders (cars, the near lane's vehicle) cut some masks short, so neither split is
    # perfect; the length over the height still separates them far better
    assert best_split(aspects) > best_split(lengths) + 0.1


def test_an_unknown_generator_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="version must be one of"):
        make_minicity(tmp_path / "x", train=1, val=0, version=3, **SMALL)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="version must be one of"):
        generate_scene(np.random.default_rng(0), 32, 32, version=0)


def test_version_2_is_unchanged_by_its_named_rules_and_the_vehicle_record() -> None:
    # the sha256 of version 2's scenes (seeds [0, split, i]) taken before the traffic's numbers
    # were named (``traffic.TRUCK_LENGTH``, ...) and ``vehicles=`` existed
    digests = [hashlib.sha256(), hashlib.sha256()]
    for split in range(3):
        for i in range(6):
            plain = generate_scene(np.random.default_rng([0, split, i]), 128, 256)
            recorded = generate_scene(np.random.default_rng([0, split, i]), 128, 256, vehicles=[])
            for digest, (image, ids) in zip(digests, (plain, recorded), strict=True):
                digest.update(image.tobytes())
                digest.update(ids.tobytes())
    expected = "1bc657c230686fdb3cba81817b20a60850a6e2ff9dc16d1089a16a878edeeea6"
    assert [d.hexdigest() for d in digests] == [expected, expected]


@pytest.mark.parametrize("version", [1, 2])
def test_the_recorded_big_vehicles_are_the_drawn_ones(version: int) -> None:
    from dgcn.datasets.minicity import traffic

    lengths = {"truck": traffic.TRUCK_LENGTH, "bus": traffic.BUS_LENGTH}
    rows, cols = np.mgrid[0:64, 0:128] + 0.5  # pixel centres, as the camera counts them
    seen = 0
    for i in range(60):
        vehicles: list[traffic.BigVehicle] = []
        _, ids = generate_scene(np.random.default_rng([3, i]), 64, 128, version, vehicles=vehicles)
        for name in ("truck", "bus", "train"):
            boxes = np.zeros(ids.shape, dtype=bool)
            for v in (v for v in vehicles if v.name == name):
                left, top, right, bottom = v.box
                boxes |= (cols >= left) & (cols < right) & (rows >= top) & (rows < bottom)
            assert not ((ids == NAME_TO_ID[name]) & ~boxes).any(), (i, name)  # all inside one
            seen += bool((ids == NAME_TO_ID[name]).any())
        for v in vehicles:
            left, top, right, bottom = v.box
            assert (right - left) / (bottom - top) == pytest.approx(v.length / traffic.BIG_HEIGHT)
            if v.name in lengths:
                assert lengths[v.name][0] <= v.length <= lengths[v.name][1]
    assert seen >= 30
