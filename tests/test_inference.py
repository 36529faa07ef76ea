"""Whole, sliding-window and multi-scale inference; evaluate() and the labelIds export."""

import fnmatch
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dgcn.config import EvalConfig
from dgcn.evaluation import (
    evaluate,
    forward_pixels,
    predict,
    predict_multiscale,
    predict_slide,
    predict_whole,
    save_label_png,
    sliding_windows,
)
from dgcn.models import build_model


class PixelModel(nn.Module):
    """A 1x1 convolution: translation- and flip-equivariant, so windows change nothing."""

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x):
        return {"out": self.conv(x)}


class WindowMeanModel(nn.Module):
    """Logits [mean of the whole input, 0] at every pixel: each window gives its own value."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3), keepdim=True).expand(-1, 1, *x.shape[-2:])
        return {"out": torch.cat([m, torch.zeros_like(m)], dim=1)}


class ConstantModel(nn.Module):
    """The same logits everywhere, whatever the input."""

    def __init__(self):
        super().__init__()
        self.logits = nn.Parameter(torch.randn(1, 4, 1, 1))

    def forward(self, x):
        return {"out": self.logits.expand(x.shape[0], -1, *x.shape[-2:])}


class TinyNet(nn.Module):
    """A small CNN that is neither translation- nor flip-equivariant (stride, padding, a global
    term), so a window or a flip changes its output."""

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.classifier = nn.Conv2d(8, num_classes, 3, padding=1)
        self.context = nn.Linear(8, num_classes)

    def forward(self, x):
        f = torch.relu(self.down(x))
        logits = self.classifier(f) + self.context(f.mean((2, 3)))[:, :, None, None]
        return {"out": F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=True)}


@pytest.fixture(scope="module")
def fcn():
    torch.manual_seed(0)
    return build_model("fcn_r18", num_classes=5).eval()


@pytest.fixture
def tiny():
    return TinyNet().eval()


def test_probs_are_float32_softmax_at_input_size(tiny):
    images = torch.randn(2, 3, 48, 64)
    probs = predict_whole(tiny, images)
    assert probs.shape == (2, 5, 48, 64) and probs.dtype == torch.float32
    assert torch.allclose(probs.sum(1), torch.ones(2, 48, 64), atol=1e-5)
    with torch.no_grad():
        expected = tiny(images)["out"].softmax(1)
    assert torch.allclose(probs, expected, atol=1e-6)


def test_windows_of_an_odd_size_by_hand():
    # 70 x 95, tile 32, overlap 1/3: stride = ceil(32 * 2/3) = 22
    # rows: ceil((70-32)/22)+1 = 3 starting 0, 22, 44 -> last shifted back to 38..70
    # cols: ceil((95-32)/22)+1 = 4 starting 0, 22, 44, 66 -> last shifted back to 63..95
    rows = [(0, 32), (22, 54), (38, 70)]
    cols = [(0, 32), (22, 54), (44, 76), (63, 95)]
    expected = [(y1, y2, x1, x2) for y1, y2 in rows for x1, x2 in cols]
    assert sliding_windows((70, 95), tile=32, overlap=1 / 3) == expected
    # a tile larger than the image in one dimension: the one window there spans the image
    # (predict_slide pads it to the tile)
    assert sliding_windows((64, 96), tile=64, overlap=1 / 3) == [(0, 64, 0, 64), (0, 64, 32, 96)]
    assert sliding_windows((20, 30), tile=(40, 10), overlap=0.0) == [
        (0, 20, 0, 10),
        (0, 20, 10, 20),
        (0, 20, 20, 30),
    ]
    assert sliding_windows((64, 64), tile=832, overlap=1 / 3) == [(0, 64, 0, 64)]


@pytest.mark.parametrize("average", ["logits", "probs"])
def test_slide_with_the_images_size_is_exactly_whole(fcn, average):
    images = torch.randn(1, 3, 32, 40)
    probs = predict_slide(fcn, images, tile=(32, 40), overlap=1 / 3, average=average)
    assert torch.equal(probs, predict_whole(fcn, images))


@pytest.mark.parametrize("average", ["logits", "probs"])
def test_a_larger_tile_pads_the_image_as_the_authors(fcn, average):
    """A tile larger than the image in a dimension: the image zero-padded at the bottom and the
    right up to the tile, predicted, the prediction cropped back; not the whole image."""
    images = torch.randn(1, 3, 32, 40)
    whole = predict_whole(fcn, images)
    for tile in (40, (64, 200), 832):
        th, tw = (tile, tile) if isinstance(tile, int) else tile
        padded = F.pad(images, (0, max(tw - 40, 0), 0, max(th - 32, 0)))
        expected = predict_whole(fcn, padded)[..., :32, :40]
        probs = predict_slide(fcn, images, tile=tile, overlap=1 / 3, average=average)
        torch.testing.assert_close(probs, expected, rtol=0, atol=1e-7, msg=str(tile))
        assert (probs - whole).abs().max() > 1e-3, tile  # the network sees the padding
    # channels_last images (the CUDA fast path) are padded alike
    last = images.contiguous(memory_format=torch.channels_last)
    probs = predict_slide(fcn, last, tile=40, overlap=1 / 3, average=average)
    expected = predict_slide(fcn, images, tile=40, overlap=1 / 3, average=average)
    torch.testing.assert_close(probs, expected, rtol=0, atol=1e-6)


# the windows of 70 x 95 with tile 32 and overlap 1/3, listed by hand in the test above
ROWS, COLS = [(0, 32), (22, 54), (38, 70)], [(0, 32), (22, 54), (44, 76), (63, 95)]


def sigmoid(m: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-m))  # softmax([m, 0])[0]


def test_slide_averages_the_windows_logits_by_hand():
    """The authors' sliding window: each window's logits, averaged where windows overlap; the
    class is the argmax of that mean (we return its softmax)."""
    images = 30 * torch.randn(2, 3, 70, 95)  # window means of about +-0.5: softmax not linear
    probs = predict_slide(WindowMeanModel(), images, tile=32, overlap=1 / 3, average="logits")
    x = images.numpy().astype(np.float64)
    total = np.zeros((2, 70, 95))  # the logit of class 0 (class 1's is 0 in every window)
    count = np.zeros((70, 95))
    for y1, y2 in ROWS:
        for x1, x2 in COLS:
            total[:, y1:y2, x1:x2] += x[:, :, y1:y2, x1:x2].mean(axis=(1, 2, 3))[:, None, None]
            count[y1:y2, x1:x2] += 1
    assert (count > 0).all()
    expected = sigmoid(total / count)
    assert np.allclose(probs[:, 0].numpy(), expected, atol=1e-6)
    assert np.allclose(probs[:, 1].numpy(), 1 - expected, atol=1e-6)
    # the mean of probabilities is another number where windows with different logits overlap
    other = predict_slide(WindowMeanModel(), images, tile=32, overlap=1 / 3, average="probs")
    assert not torch.allclose(other, probs, atol=1e-4)


def test_slide_averages_the_windows_probabilities_by_hand():
    images = torch.randn(2, 3, 70, 95)
    probs = predict_slide(WindowMeanModel(), images, tile=32, overlap=1 / 3, average="probs")
    x = images.numpy().astype(np.float64)
    total = np.zeros((2, 70, 95))
    count = np.zeros((70, 95))
    for y1, y2 in ROWS:
        for x1, x2 in COLS:
            m = x[:, :, y1:y2, x1:x2].mean(axis=(1, 2, 3))
            total[:, y1:y2, x1:x2] += sigmoid(m)[:, None, None]
            count[y1:y2, x1:x2] += 1
    expected = total / count
    assert np.allclose(probs[:, 0].numpy(), expected, atol=1e-6)
    assert np.allclose(probs[:, 1].numpy(), 1 - expected, atol=1e-6)


@pytest.mark.parametrize("average", ["logits", "probs"])
@pytest.mark.parametrize("size,tile", [((70, 95), 32), ((64, 96), 64), ((33, 17), (8, 16))])
def test_slide_equals_whole_for_a_pixelwise_model(size, tile, average):
    model = PixelModel().eval()
    images = torch.randn(2, 3, *size)
    probs = predict_slide(model, images, tile=tile, overlap=1 / 3, average=average)
    assert probs.shape == (2, 5, *size)
    assert torch.isfinite(probs).all()  # every pixel covered (count > 0)
    assert torch.allclose(probs, predict_whole(model, images), atol=1e-6)


@pytest.mark.parametrize("average", ["logits", "probs"])
def test_multiscale_single_scale_no_flip_is_exactly_whole(fcn, average):
    images = torch.randn(1, 3, 32, 48)
    probs = predict_multiscale(
        fcn, images, scales=[1.0], flip=False, tile=None, overlap=1 / 3, average=average
    )
    assert torch.equal(probs, predict_whole(fcn, images))


@pytest.mark.parametrize("average", ["logits", "probs"])
def test_multiscale_flip_on_a_flip_equivariant_model_is_whole(average):
    model = PixelModel().eval()
    images = torch.randn(2, 3, 40, 56)
    options = {"scales": [1.0], "flip": True, "average": average}
    probs = predict_multiscale(model, images, tile=None, overlap=0, **options)
    assert torch.allclose(probs, predict_whole(model, images), atol=1e-6)
    # with the sliding window at each scale too
    tiled = predict_multiscale(model, images, tile=24, overlap=1 / 3, **options)
    assert torch.allclose(tiled, predict_whole(model, images), atol=1e-6)


@pytest.mark.parametrize("average", ["logits", "probs"])
def test_multiscale_of_a_constant_model_is_constant(average):
    model = ConstantModel().eval()
    images = torch.randn(1, 3, 40, 56)
    probs = predict_multiscale(
        model,
        images,
        scales=(0.5, 0.75, 1.25, 1.75),
        flip=True,
        tile=None,
        overlap=0,
        average=average,
    )
    assert torch.allclose(probs, predict_whole(model, images), atol=1e-6)


def resized_views(model, images, transform):
    """The four views of scales (0.5, 1) x flip of a 64 x 96 image, each resized back and
    passed through ``transform`` (the identity for logits, the softmax for probabilities)."""
    with torch.no_grad():

        def view(x):
            small = F.interpolate(x, size=(32, 48), mode="bilinear", align_corners=True)
            v = model(small)["out"]
            return transform(F.interpolate(v, size=(64, 96), mode="bilinear", align_corners=True))

        return [
            view(images),
            view(images.flip(-1)).flip(-1),
            transform(model(images)["out"]),
            transform(model(images.flip(-1))["out"]).flip(-1),
        ]


def test_multiscale_is_the_mean_of_resized_views(tiny):
    """A model whose forward takes no ``size`` (TinyNet returns its input's size): each view's
    output is resized to the image, then averaged."""
    images = torch.randn(1, 3, 64, 96)
    options = {"scales": (0.5, 1.0), "flip": True, "tile": None, "overlap": 0}
    # the authors': the views' logits averaged, then the softmax
    probs = predict_multiscale(tiny, images, average="logits", **options)
    logits = resized_views(tiny, images, lambda v: v)
    assert torch.allclose(probs, (sum(logits) / 4).softmax(1), atol=1e-5)
    # the option: the views' probabilities averaged
    probs = predict_multiscale(tiny, images, average="probs", **options)
    views = resized_views(tiny, images, lambda v: v.softmax(1))
    assert torch.allclose(probs, sum(views) / 4, atol=1e-5)
    assert not torch.allclose((sum(logits) / 4).softmax(1), sum(views) / 4, atol=1e-4)
    # the views really differ for this model, so a dropped view would be caught
    assert not torch.allclose(views[0], views[2], atol=1e-3)
    assert not torch.allclose(views[2], views[3], atol=1e-3)


class SizeSpy(TinyNet):
    """A TinyNet whose forward takes ``size``, as DGCNet's, and records what it is asked."""

    def forward(self, x, size=None):
        self.asked.append((tuple(x.shape[-2:]), size))
        logits = super().forward(x)["out"]
        return {"out": logits if size is None else F.interpolate(logits, size=size)}


def test_a_model_that_takes_size_is_asked_for_the_views_size():
    model = SizeSpy().eval()
    images = torch.randn(1, 3, 40, 56)
    model.asked = []
    predict(model, images, mode="multiscale", scales=(0.5, 1.25), flip=True)
    # every view whole, its logits asked for at the image's size: resized once, from the model
    assert model.asked == [((20, 28), (40, 56))] * 2 + [((50, 70), (40, 56))] * 2
    model.asked = []
    predict(model, images, mode="slide", tile=32)  # each window at its own (the tile's) size
    assert model.asked and all(seen == (32, 32) == size for seen, size in model.asked)


def test_a_wrapped_model_that_takes_size_is_still_asked_for_it():
    """DataParallel (as DDP) shows only ``*args, **kwargs``: the wrapped model's forward
    decides, so a wrapped DGCNet is resized once too."""
    model = SizeSpy().eval()
    model.asked = []
    predict(
        torch.nn.DataParallel(model), torch.randn(1, 3, 40, 56), mode="multiscale", scales=(0.5,)
    )
    assert model.asked == [((20, 28), (40, 56))]


def test_forward_pixels_counts_the_networks_input():
    frame = (1024, 2048)
    assert forward_pixels(frame, mode="whole") == 1024 * 2048
    assert forward_pixels(frame, mode="slide", flip=True) == 2 * 8 * 832**2  # 2 x 4 windows
    sides = [(768, 1536), (1024, 2048), (1280, 2560), (1536, 3072), (1792, 3584)]
    assert forward_pixels(frame, mode="multiscale") == sum(h * w for h, w in sides)
    # 3 + 8 + 10 + 18 + 18 windows, each a full tile (the 768 rows of scale 0.75 padded)
    assert forward_pixels(frame, mode="multiscale", scale_tile=832) == 57 * 832**2
    assert forward_pixels((45, 70), mode="multiscale", scales=[0.5]) == 22 * 35  # as zoom


def test_predict_dispatches_and_rejects_unknown_modes(tiny):
    images = torch.randn(1, 3, 48, 48)
    whole = predict_whole(tiny, images)
    assert torch.equal(predict(tiny, images, mode="whole"), whole)
    assert torch.equal(predict(tiny, images, mode="slide", tile=48), whole)
    padded = predict(tiny, images, mode="slide", tile=64)  # zeros below and right, cropped
    assert not torch.allclose(padded, whole, atol=1e-3)
    assert torch.equal(predict(tiny, images, mode="multiscale", tile=None, scales=[1.0]), whole)
    # multi-scale predicts every scale whole whatever the tile, and slides eval.scale_tile
    scales = (0.5, 1.0)
    multi = predict(tiny, images, mode="multiscale", tile=32, scales=scales)
    assert torch.equal(multi, predict(tiny, images, mode="multiscale", tile=None, scales=scales))
    slid = predict(tiny, images, mode="multiscale", scale_tile=32, scales=scales)
    options = {"scales": scales, "flip": False, "overlap": 1 / 3, "average": "logits"}
    assert torch.equal(slid, predict_multiscale(tiny, images, tile=32, **options))
    assert not torch.allclose(slid, multi, atol=1e-3)
    small = predict(tiny, images, mode="slide", tile=32)
    assert torch.equal(small, predict_slide(tiny, images, tile=32, overlap=1 / 3, average="logits"))
    probs = predict(tiny, images, mode="slide", tile=32, average="probs")
    assert torch.equal(probs, predict_slide(tiny, images, tile=32, overlap=1 / 3, average="probs"))
    assert not torch.equal(small, whole)  # really went through windows
    with pytest.raises(ValueError, match="unknown inference mode"):
        predict(tiny, images, mode="sliding")
    with pytest.raises(ValueError):
        predict(tiny, images, mode="slide", tile=None)
    with pytest.raises(ValueError, match="average must be one of logits, probs"):
        predict(tiny, images, mode="slide", tile=32, average="mean")


def _confusion(preds: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    keep = target != 255
    np.add.at(m, (target[keep], preds[keep]), 1)
    return m


def test_evaluate_counts_every_batch_and_restores_the_mode():
    model = PixelModel().train()
    gen = torch.Generator().manual_seed(3)
    batches = []
    for _ in range(3):
        images = torch.randn(2, 3, 12, 20, generator=gen)
        masks = torch.randint(0, 5, (2, 12, 20), generator=gen)
        masks[torch.rand(masks.shape, generator=gen) < 0.25] = 255
        batches.append((images, masks))
    cm = evaluate(model, batches, num_classes=5, progress=False)
    assert model.training
    with torch.no_grad():
        preds = torch.cat([model(x)["out"].argmax(1) for x, _ in batches]).numpy()
    target = torch.cat([m for _, m in batches]).numpy()
    assert np.array_equal(cm.matrix.numpy(), _confusion(preds, target, 5))


# the official Cityscapes trainId -> labelId map, written out by hand
TRAIN_TO_LABEL = {0: 7, 1: 8, 2: 11, 3: 12, 4: 13, 5: 17, 6: 19, 7: 20, 8: 21, 9: 22,
                  10: 23, 11: 24, 12: 25, 13: 26, 14: 27, 15: 28, 16: 31, 17: 32, 18: 33,
                  255: 0}  # fmt: skip


def test_save_label_png_writes_label_ids(tmp_path):
    train_ids = np.array([list(TRAIN_TO_LABEL)[:10], list(TRAIN_TO_LABEL)[10:]], dtype=np.int64)
    path = tmp_path / "a" / "b.png"
    save_label_png(torch.from_numpy(train_ids), path)
    with Image.open(path) as im:
        assert im.mode == "L" and im.size == (10, 2)
        written = np.array(im)
    assert written.tolist() == [[TRAIN_TO_LABEL[t] for t in row] for row in train_ids.tolist()]
    assert os.listdir(path.parent) == ["b.png"]


class SignModel(nn.Module):
    """19 classes: road (train id 0) where channel 0 > 0, car (13) where it is < 0."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 19, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.fill_(-100.0)
            self.conv.bias[0] = 0
            self.conv.bias[13] = 0
            self.conv.weight[0, 0] = 10.0
            self.conv.weight[13, 0] = -10.0

    def forward(self, x):
        return {"out": self.conv(x)}


def _sign_images():
    a = torch.ones(3, 8, 12)
    b = torch.ones(3, 8, 12)
    b[:, :, 6:] = -1
    c = -torch.ones(3, 8, 12)
    return [a, b, c]


STEMS = [
    ("frankfurt", "frankfurt_000000_000294"),
    ("frankfurt", "frankfurt_000001_000019"),
    ("munster", "munster_000000_000019"),
]


def _find_prediction(export_dir: Path, city: str, seq: str, frame: str) -> list[str]:
    # what cityscapesscripts' evalPixelLevelSemanticLabeling does for each ground-truth file
    pattern = f"{city}_{seq}_{frame}*.png"
    return [
        os.path.join(root, f)
        for root, _, files in os.walk(export_dir)
        for f in fnmatch.filter(files, pattern)
    ]


def test_evaluate_exports_label_id_pngs_for_the_cityscapes_script(tmp_path):
    images = _sign_images()
    masks = [torch.zeros(8, 12, dtype=torch.int64)] * 3
    batches = [(torch.stack(images[:2]), torch.stack(masks[:2])), (images[2][None], masks[2][None])]
    paths = [
        tmp_path / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png" for city, stem in STEMS
    ]
    export = tmp_path / "results"
    cm = evaluate(SignModel(), batches, progress=False, export_dir=export, image_paths=paths)
    assert cm.matrix[0, 0] == 8 * 12 + 8 * 6 and cm.matrix[0, 13] == 8 * 6 + 8 * 12
    expected = [np.full((8, 12), 7), np.concatenate([np.full((8, 6), 7), np.full((8, 6), 26)], 1)]
    expected.append(np.full((8, 12), 26))
    for (city, stem), values in zip(STEMS, expected, strict=True):
        found = _find_prediction(export, *stem.split("_"))
        assert len(found) == 1
        assert Path(found[0]) == export / city / f"{stem}_leftImg8bit.png"
        with Image.open(found[0]) as im:
            assert im.mode == "L"
            assert np.array_equal(np.array(im), values)
    assert sum(len(files) for _, _, files in os.walk(export)) == 3  # no temporary files left


class PathDataset(Dataset):
    def __init__(self, root: Path):
        self.root = root

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return _sign_images()[i], torch.zeros(8, 12, dtype=torch.int64)

    def image_path(self, i):
        city, stem = STEMS[i]
        return self.root / city / f"{stem}_leftImg8bit.png"


def test_export_reads_paths_from_an_unshuffled_dataset(tmp_path):
    export = tmp_path / "results"
    loader = DataLoader(PathDataset(tmp_path), batch_size=2)
    evaluate(SignModel(), loader, progress=False, export_dir=export)
    with Image.open(export / "munster" / "munster_000000_000019_leftImg8bit.png") as im:
        assert (np.array(im) == 26).all()
    shuffled = DataLoader(PathDataset(tmp_path), batch_size=2, shuffle=True)
    with pytest.raises(ValueError, match="image_paths"):
        evaluate(SignModel(), shuffled, progress=False, export_dir=export)
    with pytest.raises(ValueError, match="image_paths"):
        evaluate(SignModel(), loader, progress=False, export_dir=export, image_paths=["x.png"])


def test_the_defaults_live_in_the_eval_config_only(tiny):
    images = torch.randn(1, 3, 48, 64)
    assert torch.equal(predict(tiny, images), predict(tiny, images, EvalConfig()))
    # keyword options replace the config's fields; the config itself is left as it was
    config = EvalConfig(mode="slide", tile=32)
    flipped = predict(tiny, images, config, flip=True)
    expected = predict_multiscale(
        tiny, images, scales=(1.0,), flip=True, tile=32, overlap=1 / 3, average="logits"
    )
    assert torch.equal(flipped, expected) and config.flip is False
    with pytest.raises(TypeError, match="unknown inference option 'tiles'"):
        predict(tiny, images, tiles=32)
    # below the entry points every option is keyword-only and has no default
    for function in (sliding_windows, predict_slide, predict_multiscale):
        options = list(inspect.signature(function).parameters.values())[2:]
        options = options if function is not sliding_windows else options[-2:]
        assert options and all(p.kind is p.KEYWORD_ONLY for p in options), function
        assert all(p.default is p.empty for p in options), function


def test_evaluation_imports_nothing_above_it():
    code = (
        "import sys, dgcn.evaluation; "
        "print(sorted(m for m in sys.modules if m.startswith(('dgcn.training', 'dgcn.viz', "
        "'dgcn.reproduce', 'dgcn.cli'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


CHECKPOINTS = Path(__file__).resolve().parent.parent / "experiments" / "checkpoints"


@pytest.fixture(scope="module")
def minicity_val(tmp_path_factory):
    """8 MiniCity validation images at the committed models' size, 128 x 256."""
    from dgcn.datasets import make_minicity

    root = tmp_path_factory.mktemp("mc-val") / "minicity"
    make_minicity(root, train=0, val=8, height=128, width=256, seed=5, progress=False)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minicity-dgcnet-paper.pt", "minicity-dgcnet-official.pt"])
def test_bf16_autocast_evaluation_tracks_fp32(name, minicity_val):
    """The fast path of ``dgcn evaluate`` on a GPU is autocast (bf16 from Ampere on); on the CPU
    the same code runs in bf16 too: a trained model's sliding-window mIoU moves by less than
    one point and the predictions agree on >= 99 % of the pixels."""
    from dgcn.checkpoint import load_for_inference
    from dgcn.datasets.build import build_dataset

    model, cfg = load_for_inference(CHECKPOINTS / name)
    cfg.data.root = str(minicity_val)
    loader = DataLoader(build_dataset(cfg.data, "val", train=False), batch_size=4)
    options = {"mode": "slide", "tile": 96, "overlap": 1 / 3, "progress": False}
    fp32 = evaluate(model, loader, cfg.eval, precision="fp32", **options)
    bf16 = evaluate(model, loader, cfg.eval, precision="bf16", **options)
    assert abs(bf16.miou() - fp32.miou()) < 0.01, (bf16.miou(), fp32.miou())
    images = torch.cat([x for x, _ in loader])
    p32 = predict(model, images, cfg.eval, mode="slide", tile=96, precision="fp32").argmax(1)
    p16 = predict(model, images, cfg.eval, mode="slide", tile=96, precision="bf16").argmax(1)
    agree = (p32 == p16).float().mean().item()
    assert 0.99 <= agree < 1.0, agree  # < 1: bf16 really ran


def test_precision_resolves_by_device_and_fp16_needs_cuda():
    from dgcn.errors import ConfigError
    from dgcn.precision import autocast_dtype

    assert autocast_dtype("auto", "cpu") is None
    assert autocast_dtype("fp32", "cpu") is None
    assert autocast_dtype("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        autocast_dtype("fp16", "cpu")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):  # before any batch
        evaluate(PixelModel(), [(torch.randn(1, 3, 8, 8), None)], precision="fp16")


class AutocastSpy(PixelModel):
    """A PixelModel that records whether its forward pass ran under autocast, and in what."""

    def forward(self, x):
        self.seen = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        return super().forward(x)


def test_evaluate_runs_the_model_under_the_configs_autocast():
    model = AutocastSpy()
    batches = [(torch.randn(1, 3, 8, 8), torch.zeros(1, 8, 8, dtype=torch.long))]
    evaluate(model, batches, num_classes=5, progress=False, mode="whole", precision="bf16")
    assert model.seen is torch.bfloat16
    evaluate(model, batches, num_classes=5, progress=False, mode="whole")  # auto: fp32 on a CPU
    assert model.seen is None


def test_the_cuda_fast_path_converts_to_channels_last_and_restores():
    """cuda_fast_path only looks at the device's type, so its bookkeeping runs on the CPU."""
    from dgcn.evaluation.loop import cuda_fast_path

    model = TinyNet()
    weight = model.classifier.weight
    with cuda_fast_path(model, torch.device("cuda")):
        assert model.classifier.weight is weight  # the same Parameter (an optimizer holds it)
        assert weight.is_contiguous(memory_format=torch.channels_last)
        assert not weight.is_contiguous()
    assert weight.is_contiguous()
    model.to(memory_format=torch.channels_last)  # a channels_last model stays so
    with cuda_fast_path(model, torch.device("cuda")):
        pass
    assert not weight.is_contiguous()
    with cuda_fast_path(TinyNet(), torch.device("cpu")):  # nothing on a CPU
        pass


@pytest.mark.cuda
def test_cuda_evaluation_runs_the_fast_path_and_tracks_the_cpu(minicity_val):
    """``dgcn evaluate``'s defaults on a GPU (autocast, channels_last) against fp32 on the
    CPU: mIoU within one point; the model's layout is restored afterwards."""
    from dgcn.checkpoint import load_for_inference
    from dgcn.datasets.build import build_dataset

    model, cfg = load_for_inference(CHECKPOINTS / "minicity-dgcnet-official.pt")
    cfg.data.root = str(minicity_val)
    loader = DataLoader(build_dataset(cfg.data, "val", train=False), batch_size=2)
    options = {"mode": "slide", "tile": 96, "progress": False}
    cpu = evaluate(model, loader, cfg.eval, precision="fp32", **options)
    model.cuda()
    formats = []
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    first_conv.register_forward_hook(
        lambda m, args, out: formats.append(
            (
                m.weight.is_contiguous(memory_format=torch.channels_last),
                torch.is_autocast_enabled("cuda"),
            )
        )
    )
    gpu = evaluate(model, loader, cfg.eval, device="cuda", **options)
    assert abs(gpu.miou() - cpu.miou()) < 0.01, (gpu.miou(), cpu.miou())
    assert formats and all(channels_last and autocast for channels_last, autocast in formats)
    assert all(p.is_contiguous() for p in model.parameters())
