"""Colours and figures: shapes, the palette by hand, and PNGs written to disk."""

import numpy as np
import pytest
import torch
from PIL import Image

# matplotlib is an extra (`.[notebooks]`): without it this file is skipped, not an error that
# stops the collection (benchmarks/gpu_session.sh runs on machines with only the core install)
pytest.importorskip(
    "matplotlib", reason="the figures need matplotlib (pip install -e .[notebooks])"
)
from matplotlib.figure import Figure  # noqa: E402

from dgcn import viz
from dgcn.datasets.labels import CLASS_NAMES
from dgcn.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD


def test_colorize_by_hand():
    ids = torch.tensor([[0, 13, 255], [18, 19, 2]])
    colors = viz.colorize(ids)
    assert colors.shape == (2, 3, 3) and colors.dtype == np.uint8
    assert tuple(colors[0, 0]) == (128, 64, 128)  # road
    assert tuple(colors[0, 1]) == (0, 0, 142)  # car
    assert tuple(colors[0, 2]) == (0, 0, 0)  # ignore
    assert tuple(colors[1, 0]) == (119, 11, 32)  # bicycle
    assert tuple(colors[1, 1]) == (0, 0, 0)  # not a train id
    assert tuple(colors[1, 2]) == (70, 70, 70)  # building
    assert np.array_equal(viz.colorize(ids.numpy().astype(np.uint8)), colors)


def test_denormalize_inverts_the_imagenet_normalisation():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    normalised = ((rgb / 255.0 - mean) / std).transpose(2, 0, 1).astype(np.float32)
    back = viz.denormalize(torch.from_numpy(normalised))
    assert back.shape == (5, 7, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 1


def test_overlay_blends_and_keeps_ignored_pixels():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    mask = np.array([[0, 255], [13, 0]])
    assert np.array_equal(viz.overlay(image, mask, alpha=0.0), image)
    full = viz.overlay(image, mask, alpha=1.0)
    assert tuple(full[0, 0]) == (128, 64, 128) and tuple(full[1, 0]) == (0, 0, 142)
    assert tuple(full[0, 1]) == (100, 100, 100)
    half = viz.overlay(image, mask, alpha=0.5)
    assert tuple(half[0, 0]) == (114, 82, 114)  # (100 + 128) / 2, (100 + 64) / 2, ...


def test_error_map_colours():
    pred = np.array([[0, 1, 2]])
    target = np.array([[0, 2, 255]])
    errors = viz.error_map(pred, target)
    assert errors.shape == (1, 3, 3) and errors.dtype == np.uint8
    correct, wrong, ignored = errors[0]
    assert correct[0] == correct[1] == correct[2] and 0 < correct[0] < 128  # dark grey
    assert wrong[0] > 200 and wrong[1] < 60 and wrong[2] < 60  # red
    assert tuple(ignored) == (0, 0, 0)


def test_legend_has_a_swatch_per_class():
    fig = viz.legend()
    assert isinstance(fig, Figure) and fig.dpi <= 100
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == list(CLASS_NAMES)


def _batch(n=3, h=16, w=24, k=19):
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, h, w, generator=gen)
    targets = torch.randint(0, k, (n, h, w), generator=gen)
    targets[:, :2] = 255
    preds = torch.randint(0, k, (n, h, w), generator=gen)
    return images, targets, preds


def test_prediction_grid_has_four_panels_per_row():
    images, targets, preds = _batch(3)
    fig = viz.prediction_grid(images, targets, preds, titles=["a", "b", "c"])
    assert isinstance(fig, Figure) and len(fig.axes) == 12 and fig.dpi <= 100
    assert fig.axes[0].get_title() == "a"
    assert fig.axes[1].get_title() == "ground truth"
    # the errors panel shows the error map; its title gives the share of correct pixels
    shown = fig.axes[3].images[0].get_array()
    assert np.array_equal(np.asarray(shown), viz.error_map(preds[0], targets[0]))
    valid = targets[0] != 255
    acc = ((preds[0] == targets[0]) & valid).sum().item() / valid.sum().item()
    assert f"{acc:.1%}" in fig.axes[3].get_title()
    short = viz.prediction_grid(list(images), targets, preds, max_rows=2)
    assert len(short.axes) == 8


def test_iou_bars_order_and_reference():
    per_class = {"car": 0.9, "road": 0.95, "sidewalk": None}
    fig = viz.iou_bars(per_class, title="run")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["road", "sidewalk", "car"]
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([95.0, 0.0, 90.0])
    assert "92.5" in ax.get_title()  # mIoU over the classes with a value
    with_ref = viz.iou_bars(per_class, reference={"road": 98.0, "car": 94.0})
    assert len(with_ref.axes[0].patches) == 6


def test_confusion_heatmap_is_row_normalised():
    matrix = torch.tensor([[8, 2, 0], [0, 0, 0], [1, 1, 2]])
    for log in (True, False):
        fig = viz.confusion_heatmap(matrix, ["a", "b", "c"], log=log)
        assert isinstance(fig, Figure)
        shown = np.ma.filled(fig.axes[0].images[0].get_array(), 0.0)
        expected = [[0.8, 0.2, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]]
        assert np.allclose(shown, expected)


def test_training_curves_panels():
    records = [{"iteration": i, "loss": 2.0 / i, "loss_main": 1.5 / i, "lr": 0.01 * (1 - i / 50)}
               for i in range(1, 50)]  # fmt: skip
    records += [{"iteration": 25, "miou": 0.31}, {"iteration": 49, "miou": 0.42}]
    fig = viz.training_curves(records)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    loss_ax, lr_ax, miou_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["loss", "loss_main"]
    assert len(loss_ax.get_lines()[0].get_xdata()) == 49
    assert np.allclose(miou_ax.get_lines()[0].get_ydata(), [31.0, 42.0])  # the fractions in %
    assert miou_ax.get_ylabel() == "validation mIoU (%)"
    assert len(viz.training_curves(records[:49]).axes) == 2  # no evaluation yet
    assert len(viz.training_curves([]).axes) == 1


def test_save_figure_writes_a_small_png(tmp_path):
    fig = viz.training_curves([{"iteration": 1, "loss": 1.0}, {"iteration": 2, "loss": 0.5}])
    path = viz.save_figure(fig, tmp_path / "sub" / "curves.png", dpi=300)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        width, height = im.size
    # 4 x 3 inches at the capped 100 dpi
    assert (width, height) == (400, 300)
    assert [p.name for p in path.parent.iterdir()] == ["curves.png"]


def test_a_dataset_palette_colours_every_class_of_that_dataset():
    context = viz.dataset_palette("pascal-context")
    assert context.shape == (59, 3) and viz.dataset_palette("pascal-context-60").shape == (60, 3)
    assert np.array_equal(viz.dataset_palette("minicity"), viz.dataset_palette("cityscapes"))
    ids = np.array([[0, 18, 40, 255]])
    coloured = viz.colorize(ids, context)
    assert np.array_equal(coloured[0, :3], context[[0, 18, 40]])
    assert not coloured[0, 3].any()  # ignore stays black
    assert not viz.colorize(ids)[0, 2].any()  # the Cityscapes palette has no id 40
    blended = viz.overlay(np.zeros((1, 4, 3), np.uint8), ids, alpha=1.0, palette=context)
    assert np.array_equal(blended[0, 2], context[40])
    with pytest.raises(ValueError, match="palette"):
        viz.colorize(ids, np.zeros((3, 4), np.uint8))


def test_dgcn_predict_colours_a_pascal_context_model_with_its_palette(tmp_path):
    from dgcn.config import load_config
    from dgcn.evaluation import predict
    from dgcn.models import build_model
    from dgcn.viz.prediction_pngs import Sample, predict_images

    cfg = load_config("pascal-context-official", ["eval.precision=fp32"])
    torch.manual_seed(0)
    model = build_model("dgcnet_paper_micro", num_classes=59).eval()
    image = torch.randn(3, 64, 96)
    target = torch.randint(0, 59, (64, 96))
    grid = predict_images(model, cfg, [Sample("a", image, target)], tmp_path)
    # the preset's test mode (a 480 tile on this 64 x 96 image: padded, as the authors)
    pred = predict(model, image[None], cfg.eval).argmax(1)[0].numpy()
    written = np.asarray(Image.open(tmp_path / "a_pred.png").convert("RGB"))
    assert np.array_equal(written, viz.dataset_palette("pascal-context")[pred])
    assert (pred >= 19).any()  # ids the Cityscapes palette would have drawn black
    assert grid is not None and grid.exists()


def test_context_cost_figure_draws_every_module_on_log_axes(tmp_path):
    records = [
        {"module": m, "size": s, "pixels": n, "cpu_seconds": t, "cpu_peak_mib": c,
         "bf16_activation_mib": b}
        for m, s, n, t, c, b in [
            ("both", "small", 100, 0.01, 2.0, 1.0),
            ("both", "large", 1000, 0.1, 20.0, 10.0),
            ("non-local", "small", 100, 0.02, 3.0, 2.0),
            ("non-local", "large", 1000, None, None, 200.0),  # not measured on the CPU
        ]
    ]  # fmt: skip
    fig = viz.context_cost_figure(records, "tiny")
    axes = fig.axes
    assert len(axes) == 3
    for ax in axes:
        assert ax.get_xscale() == ax.get_yscale() == "log" and ax.get_ylabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:2] == ["both", "non-local"] and any("N²" in t for t in labels)
    lines = {line.get_label(): line for line in axes[1].get_lines()}
    assert list(lines["non-local"].get_xdata()) == [100]  # the missing value is left out
    assert list(lines["non-local"].get_ydata()) == [3.0]
    assert list(axes[2].get_lines()[1].get_ydata()) == [2.0, 200.0]
    path = viz.save_figure(fig, tmp_path / "cost.png")
    assert Image.open(path).size[0] > 0


def test_gain_bars_groups_the_series_and_hatches_the_extra_rows(tmp_path):
    nan = float("nan")
    series = [
        ("paper", [3.6, 4.1, nan], None, "0.35"),
        ("ours", [1.5, None, 0.1], [0.1, 0.6, 0.4], "tab:orange"),
    ]
    rows, extra = ["a", "b", "control"], [False, False, True]
    fig = viz.gain_bars(series, rows, extra, (1.1, "best"), title="t")
    (ax,) = fig.axes
    bars = [p for p in ax.patches if p.get_width() == pytest.approx(viz.ablation.WIDTH)]
    assert len(bars) == 5  # two per ordinary row, the last series' alone on the extra row
    centres = sorted(round(b.get_x() + b.get_width() / 2, 3) for b in bars)
    assert centres == [-0.135, 0.135, 0.865, 1.135, 2.0]  # side by side; the extra one centred
    hatched = [b for b in bars if b.get_hatch()]
    assert len(hatched) == 1 and hatched[0].get_x() + hatched[0].get_width() / 2 == 2.0
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("n/a") == 1 and {"+3.6", "+4.1", "+1.5", "+0.1"} <= set(texts)
    assert "n/a" not in texts[:2]  # the paper's missing value sits on the extra row: not drawn
    lines = {tuple(line.get_xdata()): line for line in ax.get_lines() if line.get_label()}
    assert (1.5, 1.5) in lines  # the grey line between the ordinary and the extra rows
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["best", "paper", "ours", "ours: controls, rival"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "control"]
    assert ax.get_title() == "t" and ax.get_ylim()[1] > 1.4 * 4.1  # room for the labels
    assert Image.open(viz.save_figure(fig, tmp_path / "gains.png")).size[0] > 0
    with pytest.raises(ValueError, match="after the ordinary"):
        viz.gain_bars(series, ["x", "y", "z"], [True, False, False])
    with pytest.raises(ValueError, match="2 values for 3 rows"):
        viz.gain_bars([("short", [1.0, 2.0], None, "k")], ["x", "y", "z"], [False] * 3)


def test_range_bars_draw_a_range_or_a_number_on_one_axis():
    labels = ["re-run", "paper"]
    fig = viz.range_bars(labels, [80.3, 75.2], [80.4, 75.2], 60, 85, "mIoU")
    (ax,) = fig.axes
    grey, blue = ax.patches[:2], ax.patches[2:]
    assert [round(p.get_width(), 6) for p in grey] == [20.3, 15.2] and grey[0].get_x() == 60
    assert [round(p.get_width(), 6) for p in blue] == [0.1, 0.0]  # a single number: no range
    assert [t.get_text() for t in ax.texts] == ["80.3 to 80.4", "75.2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert ax.get_xlim() == (60, 85) and ax.get_xlabel() == "mIoU"
    assert ax.yaxis_inverted()  # the first label on top
