"""Label table, the Cityscapes loader and its errors, joint transforms."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision.transforms.v2 import InterpolationMode

from dgcn.cli import main
from dgcn.config import load_config
from dgcn.datasets import Cityscapes, check_tree
from dgcn.datasets.build import build_dataset, data_transforms
from dgcn.datasets.labels import CLASS_NAMES, LABELS, PALETTE, id_to_train_id, id_to_train_id_lut
from dgcn.datasets.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    Normalize,
    PadTo,
    RandomHorizontalFlip,
    RandomScaleCrop,
    as_tv,
)
from dgcn.errors import DatasetError

# the official Cityscapes labelId -> trainId map, written out by hand
OFFICIAL = {
    0: 255,
    1: 255,
    2: 255,
    3: 255,
    4: 255,
    5: 255,
    6: 255,
    7: 0,
    8: 1,
    9: 255,
    10: 255,
    11: 2,
    12: 3,
    13: 4,
    14: 255,
    15: 255,
    16: 255,
    17: 5,
    18: 255,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    29: 255,
    30: 255,
    31: 16,
    32: 17,
    33: 18,
    -1: 255,
}


def test_id_to_train_id_matches_the_official_table():
    assert {lb.id: lb.train_id for lb in LABELS} == OFFICIAL
    assert id_to_train_id(-1) == 255
    lut = id_to_train_id_lut()
    assert all(lut[i] == t for i, t in OFFICIAL.items() if i >= 0)
    assert (lut[34:] == 255).all()


def test_label_table_matches_torchvision():
    theirs = {
        c.id: (c.name, 255 if c.train_id == -1 else c.train_id, c.color)
        for c in torchvision.datasets.Cityscapes.classes
    }
    ours = {lb.id: (lb.name, lb.train_id, lb.color) for lb in LABELS}
    assert ours == theirs
    assert len(CLASS_NAMES) == 19 and CLASS_NAMES[0] == "road" and CLASS_NAMES[-1] == "bicycle"
    assert PALETTE.shape == (19, 3) and tuple(PALETTE[13]) == (0, 0, 142)


def write_sample(root: Path, split: str, city: str, n: int, size=(32, 48), ids=(7, 8, 26)):
    image_dir = root / "leftImg8bit" / split / city
    label_dir = root / "gtFine" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    stem = f"{city}_{n:06d}_000019"
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
        image_dir / f"{stem}_leftImg8bit.png"
    )
    label = rng.choice(np.array(ids, dtype=np.uint8), size=size)
    Image.fromarray(label).save(label_dir / f"{stem}_gtFine_labelIds.png")
    return image_dir / f"{stem}_leftImg8bit.png", label_dir / f"{stem}_gtFine_labelIds.png"


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "cs"
    for i in range(3):
        write_sample(root, "train", "aachen", i)
    write_sample(root, "val", "lindau", 0)
    return root


def test_loader_items_shapes_dtypes_and_train_ids(tree):
    data = Cityscapes(tree, "train")
    assert len(data) == 3
    assert [p.name for p, _ in data.samples] == sorted(p.name for p, _ in data.samples)
    image, mask = data[0]
    assert image.shape == (3, 32, 48) and image.dtype == torch.float32
    assert mask.shape == (32, 48) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) <= {0, 1, 13}  # road, sidewalk, car
    raw = np.array(Image.open(data.samples[0][1]))
    assert torch.equal(mask, torch.from_numpy(id_to_train_id_lut()[raw]).long())
    pixel = np.array(Image.open(data.samples[0][0]))[0, 0] / 255.0
    expected = (pixel - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(image[:, 0, 0].numpy(), expected, atol=1e-5)


def test_check_tree_counts(tree, capsys):
    assert check_tree(tree, progress=False) == {"train": 3, "val": 1}
    assert main(["check-data", "--root", str(tree), "--quiet"]) == 0
    assert "train" in capsys.readouterr().out


def expect_error(root, pattern, split="train"):
    with pytest.raises(DatasetError, match=pattern):
        Cityscapes(root, split)[0]


def test_missing_root(tmp_path):
    expect_error(tmp_path / "nowhere", "does not exist.*make-minicity")


def test_zips_not_extracted(tmp_path):
    (tmp_path / "leftImg8bit_trainvaltest.zip").write_bytes(b"PK")
    expect_error(tmp_path, "leftImg8bit_trainvaltest.zip but no leftImg8bit/.*unzip")


def test_gtfine_missing(tree):
    import shutil

    shutil.rmtree(tree / "gtFine")
    expect_error(tree, "has no gtFine/ folder")


def test_image_without_label(tree):
    image, label = write_sample(tree, "train", "bremen", 7)
    label.unlink()
    expect_error(tree, f"image {image} has no label")


def test_label_without_image(tree):
    image, label = write_sample(tree, "train", "bremen", 7)
    image.unlink()
    expect_error(tree, f"label {label} has no image")


def test_label_ids_outside_the_table(tree):
    write_sample(tree, "train", "aachen", 0, ids=(7, 200))
    expect_error(tree, r"ids \[200\] outside the Cityscapes table")


def test_corrupt_png(tree):
    image, _ = write_sample(tree, "train", "aachen", 0)
    image.write_bytes(image.read_bytes()[:60])
    expect_error(tree, f"cannot decode image {image}: it is a damaged PNG")


@pytest.mark.parametrize(
    "content, cause",
    [
        (b"", "it is empty"),
        (b"GIF89a not a png at all", "it is not a PNG or JPEG file"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "it is a damaged PNG"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "it is a damaged JPEG"),
    ],
)
def test_an_undecodable_image_is_named_in_our_words(tmp_path, content, cause):
    from dgcn.datasets.cityscapes import read_image, read_label, read_photo

    path = tmp_path / "x.png"
    path.write_bytes(content)
    for read in (read_image, read_label, read_photo):
        with pytest.raises(DatasetError) as info:
            read(path)
        message = str(info.value)
        assert message.startswith("cannot decode ") and f"{path}: {cause}" in message
        # the decoder's own text (its C++ file, "Content is not png") stays behind --debug
        assert ".cpp" not in message and "decode_png" not in message
        assert info.value.__cause__ is not None


def test_our_decodes_silence_torchvisions_deprecation_only_while_they_run(tmp_path):
    """Reading images neither shows torchvision's decode deprecation warning nor leaves a
    filter behind: the user's own call of the deprecated decoder still warns."""
    import warnings

    from dgcn.datasets.cityscapes import DECODE_DEPRECATION, read_image, read_label, read_photo

    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(path)
    label = tmp_path / "l.png"
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(label)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        assert read_image(path).shape == read_photo(path).shape == (3, 4, 6)
        assert read_label(label).shape == (4, 6)
        assert warnings.filters == before
        assert not [w for w in caught if DECODE_DEPRECATION in str(w.message)]
        torchvision.io.decode_png(torchvision.io.read_file(str(path)))
    version = tuple(int(part) for part in torchvision.__version__.split("+")[0].split(".")[:2])
    if version >= (0, 29):  # the decoders are deprecated from 0.29 on
        assert [w for w in caught if DECODE_DEPRECATION in str(w.message)]


def test_importing_dgcn_and_reading_an_image_leaves_the_warning_filters_as_they_were(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(path)
    # torch and numpy add their own filters on import: they come first, then dgcn's part
    script = (
        "import sys, warnings; from pathlib import Path; import torch, torchvision.io; "
        "before = list(warnings.filters); import dgcn, dgcn.datasets, dgcn.training; "
        "from dgcn.datasets.cityscapes import read_image; read_image(Path(sys.argv[1])); "
        "sys.exit(warnings.filters != before)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_size_mismatch(tree):
    _, label = write_sample(tree, "train", "aachen", 0)
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(label)
    expect_error(tree, "48x32 but its label .* is 16x16")


def test_colour_label_is_rejected(tree):
    _, label = write_sample(tree, "train", "aachen", 0)
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(label)
    expect_error(tree, "3 channels")


def test_empty_split(tree):
    (tree / "leftImg8bit" / "test").mkdir()
    (tree / "gtFine" / "test").mkdir()
    expect_error(tree, "split 'test' .* is empty", split="test")


def test_cli_check_data_error_is_one_line(tree, capsys):
    write_sample(tree, "train", "aachen", 0, ids=(7, 200))
    before = {p: p.read_bytes() for p in tree.rglob("*.png")}
    assert main(["check-data", "--root", str(tree), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outside the Cityscapes table" in err
    assert before == {p: p.read_bytes() for p in tree.rglob("*.png")}


def pattern(height, width, block):
    rng = np.random.default_rng(1)
    ids = np.array([7, 8, 11, 21, 23, 26], dtype=np.uint8)
    grid = rng.choice(ids, size=(height // block + 1, width // block + 1))
    label = np.kron(grid, np.ones((block, block), np.uint8))[:height, :width]
    image = np.repeat((label * 7)[None], 3, axis=0)
    return torch.from_numpy(image), torch.from_numpy(label.copy())


def decode(image):
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return torch.round((image * std + mean) * 255 / 7)[0].long()


@pytest.mark.parametrize("seed", range(6))
def test_image_and_mask_stay_aligned(seed):
    torch.manual_seed(seed)
    image, label = pattern(96, 160, 8)
    crop = RandomScaleCrop((80, 120), (0.5, 0.7, 1.0, 1.6, 2.1))
    crop.interpolation = InterpolationMode.NEAREST
    t = Compose([crop, RandomHorizontalFlip(), Normalize(), PadTo((80, 120))])
    out_image, out_mask = t(*as_tv(image, label))
    assert out_image.shape == (3, 80, 120) and out_mask.shape == (80, 120)
    valid = out_mask != 255
    assert valid.any()
    assert torch.equal(decode(out_image)[valid], out_mask[valid].long())


def test_bilinear_pipeline_mostly_aligned():
    torch.manual_seed(0)
    image, label = pattern(256, 512, 32)
    pipeline = data_transforms(load_config("minicity-cpu").data, train=True)
    for _ in range(5):
        out_image, out_mask = pipeline(*as_tv(image, label))
        valid = out_mask != 255
        agree = (decode(out_image)[valid] == out_mask[valid].long()).float().mean()
        assert agree > 0.85


@pytest.mark.parametrize(
    ("preset", "crop", "scales"),
    [
        ("cityscapes-official", (832, 832), tuple(round(0.7 + 0.1 * i, 1) for i in range(15))),
        ("cityscapes-paper", (768, 768), (1.0,)),
        ("minicity-cpu", (128, 256), (0.75, 1.0, 1.25, 1.5)),
    ],
)
def test_build_dataset_applies_the_recipe_of_a_config_preset(minicity, preset, crop, scales):
    """build_dataset applies the recipe of the YAML preset's ``data:`` section: crop, scales and
    flip for training, normalisation only for evaluation."""
    data = load_config(preset, {"data": {"root": str(minicity)}}).data
    train = build_dataset(data, "train", train=True)
    steps = train.transforms.transforms
    assert [type(s) for s in steps] == [RandomScaleCrop, RandomHorizontalFlip, Normalize, PadTo]
    assert steps[0].crop_size == steps[3].size == crop and steps[0].scales == scales
    image, mask = train[0]
    assert image.shape == (3, *crop) and mask.shape == crop
    evaluation = build_dataset(data, "val", train=False)
    assert [type(s) for s in evaluation.transforms.transforms] == [Normalize]
    assert evaluation[0][0].shape == (3, 64, 128)  # the whole image of the fixture


def test_crop_pads_mask_with_255_and_image_with_zero():
    image, label = pattern(50, 60, 10)
    t = Compose([RandomScaleCrop((64, 80), (1.0,)), Normalize(), PadTo((64, 80))])
    out_image, out_mask = t(*as_tv(image, label))
    assert (out_mask[50:] == 255).all() and (out_mask[:, 60:] == 255).all()
    assert (out_mask[:50, :60] != 255).all()
    assert (out_image[:, 50:] == 0).all() and (out_image[:, :, 60:] == 0).all()


def test_official_preset_output_size_for_every_scale():
    image, label = pattern(256, 512, 16)
    for scale in (0.7, 1.4, 2.1):
        t = Compose([RandomScaleCrop((200, 300), (scale,)), Normalize(), PadTo((200, 300))])
        out_image, out_mask = t(*as_tv(image, label))
        assert out_image.shape == (3, 200, 300) and out_mask.shape == (200, 300)
        assert out_image.dtype == torch.float32


def test_minicity_cli_round_trip_and_torchvision_reads_the_layout(tmp_path, capsys):
    root = tmp_path / "mc"
    args = ["make-minicity", "--out", str(root), "--train", "3", "--val", "2", "--seed", "1"]
    assert main([*args, "--size", "64", "128"]) == 0
    assert main(["check-data", "--root", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and " 3 images" in out and " 2 images" in out
    ours = Cityscapes(root, "val")
    theirs = torchvision.datasets.Cityscapes(str(root), split="val", target_type="semantic")
    assert len(ours) == len(theirs) == 2
    image, mask = ours[1]
    assert image.shape == (3, 64, 128) and mask.shape == (64, 128)
    index = theirs.images.index(str(ours.image_path(1)))  # torchvision lists unsorted
    raw = np.array(theirs[index][1])
    assert torch.equal(mask, torch.from_numpy(id_to_train_id_lut()[raw]).long())
    # a different seed into the same folder is refused without --overwrite, nothing touched
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.png")}
    assert main(["make-minicity", "--out", str(root), "--train", "3", "--seed", "2"]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert before == {p: p.stat().st_mtime_ns for p in root.rglob("*.png")}
