"""PASCAL Context: the class table, the label mapping, the loader (both settings, both label
layouts), the converter, check-data's errors and a training run on a synthetic tree."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dgcn.cli import main
from dgcn.config import load_config
from dgcn.datasets import PascalContext, build_dataset, prepare_data
from dgcn.datasets.pascal_context import (
    CLASS_NAMES_59,
    CLASS_NAMES_60,
    CLASSES_59,
    OFFICIAL_ORDER_IDS,
    ORIGINAL_IDS,
    PALETTE_60,
    convert_pascal_context,
    full_to_context_lut,
    full_to_train_lut,
    make_synthetic_pascal_context,
)
from dgcn.datasets.pascal_context import dataset as pc_dataset
from dgcn.datasets.transforms import RandomScaleCrop, as_tv
from dgcn.errors import ConfigError, DatasetError

# the 59 benchmark classes with their line in the 459-class labels.txt, written out here on
# their own (from docs/reference/pascal_context.md, section 5), in alphabetical order
EXPECTED = """
aeroplane 2, bag 9, bed 18, bedclothes 19, bench 22, bicycle 23, bird 25, boat 31, book 33,
bottle 34, building 44, bus 45, cabinet 46, car 59, cat 65, ceiling 68, chair 72, cloth 80,
computer 85, cow 98, cup 104, curtain 105, dog 113, door 115, fence 144, floor 158, flower 159,
food 162, grass 187, ground 189, horse 207, keyboard 220, light 232, motorbike 258,
mountain 259, mouse 260, person 284, plate 295, platform 296, pottedplant 308, road 324,
rock 326, sheep 347, shelves 349, sidewalk 354, sign 355, sky 360, snow 366, sofa 368,
table 397, track 415, train 416, tree 420, truck 424, tvmonitor 427, wall 440, water 445,
window 454, wood 458
"""


def expected_classes() -> list[tuple[int, str]]:
    pairs = [item.split() for item in EXPECTED.replace("\n", " ").split(",")]
    return [(int(number), name) for name, number in pairs]


def test_the_59_classes_are_the_reference_list_in_ascending_id_order():
    expected = expected_classes()
    assert len(expected) == 59
    assert list(CLASSES_59) == expected
    assert list(ORIGINAL_IDS) == sorted(ORIGINAL_IDS)
    assert list(CLASS_NAMES_59) == sorted(CLASS_NAMES_59)  # ascending id = alphabetical
    assert CLASS_NAMES_60 == ("background", *CLASS_NAMES_59)
    # the official 59_labels.txt order: the same ids, VOC's 20 classes first
    assert sorted(OFFICIAL_ORDER_IDS) == list(ORIGINAL_IDS) and OFFICIAL_ORDER_IDS[:3] == (
        2,
        23,
        25,
    )
    assert PALETTE_60.shape == (60, 3) and len({tuple(c) for c in PALETTE_60}) == 60


def test_the_mapping_of_the_459_ids_in_both_settings():
    ids = np.arange(460)
    to59, to60, context = (
        full_to_train_lut(59)[ids],
        full_to_train_lut(60)[ids],
        full_to_context_lut(),
    )
    inside = np.isin(ids, ORIGINAL_IDS)
    for k, original in enumerate(ORIGINAL_IDS):
        assert (to59[original], to60[original], context[original]) == (k, k + 1, k + 1)
    assert (to59[~inside] == 255).all() and (to60[~inside] == 0).all()
    assert to59[0] == 255 and to60[0] == 0  # unlabeled is background


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A synthetic tree (6 train, 3 val images of 96x128, .mat labels); copy before changing."""
    pytest.importorskip("scipy")
    root = tmp_path_factory.mktemp("pc") / "pascal-context"
    assert make_synthetic_pascal_context(root) == {"train": 6, "val": 3}
    return root


@pytest.fixture
def tree(pristine, tmp_path):
    root = tmp_path / "pascal-context"
    shutil.copytree(pristine, root)
    return root


def voc(root: Path) -> Path:
    return root / "VOCdevkit" / "VOC2010"


def raw_ids(root: Path, image_id: str) -> np.ndarray:
    from scipy.io import loadmat

    return loadmat(str(voc(root) / "trainval" / f"{image_id}.mat"))["LabelMap"]


def test_the_synthetic_labels_use_the_459_id_space(pristine):
    label = np.concatenate([raw_ids(pristine, f"2008_{i:06d}").ravel() for i in range(9)])
    assert label.dtype == np.uint16 and label.max() <= 459
    assert np.isin(label, ORIGINAL_IDS).any() and (~np.isin(label, ORIGINAL_IDS)).any()
    lines = (voc(pristine) / "labels.txt").read_text().splitlines()
    assert len(lines) == 459 and lines[1] == "2: aeroplane" and lines[457] == "458: wood"


@pytest.mark.parametrize("classes", [59, 60])
def test_the_loader_maps_the_mat_ids_in_both_settings(pristine, classes):
    dataset = PascalContext(pristine, "val", classes=classes)
    assert len(dataset) == 3 and dataset.label_format == "mat"
    assert dataset.list_file.parent.name == "SegmentationContext"
    image, mask = dataset[1]
    assert image.shape == (3, 96, 128) and image.dtype == torch.float32
    expected = full_to_train_lut(classes)[raw_ids(pristine, "2008_000007")]
    assert torch.equal(mask, torch.from_numpy(expected).long())
    assert dataset.image_path(1).name == "2008_000007.jpg"


def test_the_main_lists_serve_when_there_are_no_context_lists_and_a_list_file_wins(tmp_path):
    pytest.importorskip("scipy")
    root = tmp_path / "pc"
    make_synthetic_pascal_context(root, train=2, val=1, lists=("Main",))
    assert PascalContext(root, "train").list_file.parent.name == "Main"
    listing = tmp_path / "mine.txt"
    listing.write_text("2008_000002\n")
    dataset = PascalContext(root / "VOCdevkit", "whatever", split_file=listing)
    assert [p.name for p in map(dataset.image_path, range(len(dataset)))] == ["2008_000002.jpg"]


def test_the_converter_writes_the_loaders_values_and_the_loader_then_reads_the_pngs(tree, capsys):
    mats = {i: [PascalContext(tree, "val", classes=c)[i][1] for c in (59, 60)] for i in range(3)}
    assert main(["convert-pascal-context", "--root", str(tree), "--quiet"]) == 0
    assert "9 labels as PNG" in capsys.readouterr().out
    folder = voc(tree) / "SegmentationClassContext"
    assert sorted(p.name for p in folder.iterdir()) == [f"2008_{i:06d}.png" for i in range(9)]
    png = np.asarray(Image.open(folder / "2008_000004.png"))
    assert png.dtype == np.uint8 and png.ndim == 2
    assert np.array_equal(png, full_to_context_lut()[raw_ids(tree, "2008_000004")])
    for classes in (59, 60):
        dataset = PascalContext(tree, "val", classes=classes)
        assert dataset.label_format == "png"
        for i in range(3):
            assert torch.equal(dataset[i][1], mats[i][classes - 59])


def test_the_converter_refuses_to_overwrite_and_replaces_with_overwrite(tree, tmp_path, capsys):
    out = tmp_path / "out"
    convert_pascal_context(tree, out, progress=False)
    marker = out / "SegmentationClassContext" / "2008_000000.png"
    marker.write_bytes(b"old")
    before = hashes(tmp_path)
    assert main(["convert-pascal-context", "--root", str(tree), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err
    assert hashes(tmp_path) == before
    convert_pascal_context(tree, out, overwrite=True, progress=False)
    assert marker.read_bytes() != b"old" and sorted(p.name for p in out.iterdir()) == [
        "SegmentationClassContext"
    ]


def test_an_interrupted_conversion_leaves_the_tree_as_it_was(tree, monkeypatch):
    from dgcn.datasets.pascal_context import convert

    before = hashes(tree)
    calls = []

    def failing(path):
        calls.append(path)
        if len(calls) == 4:
            raise DatasetError(f"label {path} is broken")
        return pc_dataset.loadmat_label(path)

    monkeypatch.setattr(convert, "loadmat_label", failing)
    with pytest.raises(DatasetError, match="is broken"):
        convert_pascal_context(tree, progress=False)
    assert hashes(tree) == before and not list(voc(tree).glob(".*"))
    assert PascalContext(tree, "train").label_format == "mat"


def test_check_data_reports_the_lists_and_the_labels(tree, capsys):
    root = str(voc(tree))  # the VOC2010 folder, as the README writes the root
    assert main(["check-data", "--dataset", "pascal-context", "--root", root, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "SegmentationContext/train.txt" in out and "mat (" in out
    assert "train            6 images" in out and "val              3 images" in out


def break_tree(root: Path, case: str) -> str:
    """Damage ``root`` one way; returns a part of the message that must name the cause."""
    folder = voc(root)
    if case == "labels_tar":
        shutil.rmtree(folder / "trainval")
        (folder / "trainval.tar.gz").write_bytes(b"")
        return "trainval.tar.gz is not extracted"
    if case == "images_tar":
        shutil.rmtree(root / "VOCdevkit")
        (root / "VOCtrainval_03-May-2010.tar").write_bytes(b"")
        return "VOCtrainval_03-May-2010.tar is not extracted"
    if case == "no_label":
        (folder / "trainval" / "2008_000002.mat").unlink()
        return "2008_000002.jpg has no label"
    if case == "bad_ids":
        from scipy.io import savemat

        label = raw_ids(root, "2008_000001").copy()
        label[0, :3] = 460, 461, 999
        savemat(str(folder / "trainval" / "2008_000001.mat"), {"LabelMap": label})
        return "holds ids [460, 461, 999] outside the table"
    if case == "size":
        Image.new("RGB", (64, 48)).save(folder / "JPEGImages" / "2008_000006.jpg")
        return "is 64x48 but its label"
    if case == "empty":
        (folder / "ImageSets" / "SegmentationContext" / "val.txt").write_text("\n")
        return "split 'val' is empty"
    shutil.rmtree(root)
    return "does not exist"


@pytest.mark.parametrize(
    "case", ["labels_tar", "images_tar", "no_label", "bad_ids", "size", "empty", "no_root"]
)
def test_check_data_errors_are_one_line_naming_the_cause(tree, case, capsys):
    expected = break_tree(tree, case)
    before = hashes(tree.parent)
    assert main(["check-data", "--dataset", "pascal-context", "--root", str(tree), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert hashes(tree.parent) == before


def test_the_converted_layout_is_checked_too(tree, capsys):
    convert_pascal_context(tree, progress=False)
    png = voc(tree) / "SegmentationClassContext" / "2008_000003.png"
    Image.fromarray(np.full((96, 128), 60, np.uint8)).save(png)
    assert main(["check-data", "--dataset", "pascal-context", "--root", str(tree), "--quiet"]) == 2
    assert "values [60] outside 0..59" in capsys.readouterr().err


def test_the_configs_pick_the_loader_and_check_the_classes(pristine, tmp_path):
    cfg = load_config("pascal-context-official", [f"data.root={pristine}"])
    assert cfg.num_classes == 59 and cfg.data.base_size == 520
    dataset = build_dataset(cfg.data, "val", train=False)
    assert isinstance(dataset, PascalContext) and dataset.classes == 59
    assert dataset.class_names == CLASS_NAMES_59
    cfg60 = load_config(
        "pascal-context-official", [f"data.root={pristine}", "data.dataset=pascal-context-60"]
    )
    assert cfg60.num_classes == 60  # follows the dataset
    assert build_dataset(cfg60.data, "val", train=False).class_names == CLASS_NAMES_60
    with pytest.raises(ConfigError, match="set model.num_classes=60"):
        load_config(
            "pascal-context-official", ["data.dataset=pascal-context-60", "model.num_classes=59"]
        )
    cfg.data.root = str(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="check-data --dataset pascal-context"):
        prepare_data(cfg.data)


def test_base_size_scales_relative_to_a_long_side():
    torch.manual_seed(0)
    image, mask = as_tv(torch.zeros(3, 100, 200, dtype=torch.uint8), torch.zeros(100, 200))
    crop = RandomScaleCrop((400, 400), [0.5], base_size=300)  # long side 150
    out, out_mask = crop(image, mask)
    assert out.shape[-2:] == out_mask.shape[-2:] == (75, 150)


@pytest.mark.slow
def test_the_official_preset_trains_on_a_cpu_on_the_synthetic_tree(pristine, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--config", "pascal-context-official", "--quiet", "--run-dir", str(run)]
    opts = [
        f"data.root={pristine}",
        "train.iterations=2",
        "model.name=dgcnet_official_micro",
        "model.overrides.pretrained=null",
        "data.crop_size=[64,64]",
        "data.base_size=128",
        "data.workers=0",
        "train.batch_size=2",
        "train.threads=1",
        "eval.tile=64",
    ]
    assert main([*argv, "--opt", *opts]) == 0
    assert "pascal-context-official: mIoU" in capsys.readouterr().out
    assert (run / "last.pt").is_file() and (run / "summary.json").is_file()


def test_without_scipy_the_mat_labels_are_one_line_naming_the_extra(pristine, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scipy.io", None)  # the import now fails
    dataset = PascalContext(pristine, "val")
    with pytest.raises(DatasetError, match=r"needs scipy: pip install 'dgcn\[pascal\]'"):
        dataset[0]
