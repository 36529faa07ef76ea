"""The inspector: its arrays against re-computations, its figures against hand counts, its widget
built without a frontend, and its static fallback."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

# matplotlib is an extra (`.[notebooks]`): without it this file is skipped (see tests/test_viz.py)
pytest.importorskip(
    "matplotlib", reason="the figures need matplotlib (pip install -e .[notebooks])"
)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.legend import Legend  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from dgcn import evaluation, models  # noqa: E402
from dgcn.checkpoint import load_for_inference  # noqa: E402
from dgcn.viz import inspector  # noqa: E402
from dgcn.viz.inspector import InspectorData, InspectorState  # noqa: E402
from dgcn.viz.palette import CORRECT_COLOR, WRONG_COLOR  # noqa: E402

CHECKPOINT = (
    Path(__file__).resolve().parent.parent / "experiments/checkpoints/minicity-dgcnet-paper.pt"
)
ROAD, SIDEWALK, CAR = 0, 1, 13


def small_data() -> InspectorData:
    """Two 4 x 6 images with hand-made ground truth and predictions (no graphs)."""
    targets = np.array(
        [
            [
                [0, 0, 0, 1, 1, 1],
                [0, 0, 0, 1, 1, 1],
                [13, 13, 0, 0, 1, 255],
                [13, 13, 0, 0, 255, 255],
            ],
            np.full((4, 6), 2),
        ]
    )
    preds = np.array(
        [
            [
                [0, 0, 1, 1, 1, 1],  # one road pixel predicted as sidewalk
                [0, 0, 0, 1, 0, 1],  # one sidewalk pixel predicted as road
                [13, 0, 0, 0, 1, 1],  # one car pixel as road; (2, 5) is not scored
                [13, 13, 0, 0, 1, 13],  # both of these are not scored either
            ],
            np.full((4, 6), 2),
        ]
    )
    rng = np.random.default_rng(0)
    return InspectorData(
        images=rng.integers(0, 256, (2, 4, 6, 3), dtype=np.uint8),
        targets=targets,
        preds=preds,
        errors=(preds != targets) & (targets != 255),
    )


def texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def drawn(fig: Figure, title: str) -> np.ndarray:
    """The first picture drawn in the axes with this title."""
    axes = [ax for ax in fig.findobj(Axes) if ax.get_title() == title]
    assert axes, f"no axes titled {title!r}"
    return np.asarray(axes[0].images[0].get_array())


def test_iou_of_a_class_is_the_hand_count():
    data = small_data()
    # road: truth at 10 pixels, predicted at 11 scored ones, both at 9 -> IoU 9 / (10 + 11 - 9)
    info = inspector.describe(data, InspectorState(image=0, highlight=ROAD))
    assert (info["intersection"], info["union"]) == (9, 12)
    assert info["iou"] == pytest.approx(9 / 12)
    # sidewalk: truth at 7, predicted at 7 scored pixels (those at (2, 5) and (3, 4) are not
    # scored), both at 6 -> 6 / 8
    info = inspector.describe(data, InspectorState(image=0, highlight=SIDEWALK))
    assert (info["intersection"], info["union"]) == (6, 8)
    # car: truth 4, predicted 3 scored (the one at (3, 5) is not scored), both 3 -> 3 / 4
    info = inspector.describe(data, InspectorState(image=0, highlight=CAR))
    assert info["iou"] == pytest.approx(3 / 4)
    # 21 scored pixels, 3 wrong
    assert info["errors"] == 3 and info["accuracy"] == pytest.approx(18 / 21)
    absent = inspector.describe(data, InspectorState(image=1, highlight=CAR))
    assert absent["union"] == 0 and np.isnan(absent["iou"])


def test_reported_iou_equals_a_plain_count_on_every_class():
    data = small_data()
    target, pred = data.targets[0], data.preds[0]
    for k in range(19):
        scored = target != 255
        inter = int(((target == k) & (pred == k) & scored).sum())
        union = int((((target == k) | (pred == k)) & scored).sum())
        fig = inspector.render(data, InspectorState(image=0, highlight=k))
        if union:
            assert f"IoU {inter / union:.1%} ({inter} / {union} px)" in texts(fig)
        else:
            assert "in neither ground truth nor prediction" in texts(fig)


def test_error_panel_is_red_exactly_where_wrong():
    data = small_data()
    fig = inspector.render(data, InspectorState(image=0, opacity=1.0))
    errors = drawn(fig, "errors")
    target, pred = data.targets[0], data.preds[0]
    wrong = (pred != target) & (target != 255)
    assert np.array_equal(np.all(errors == WRONG_COLOR, axis=-1), wrong)
    right = (pred == target) & (target != 255)
    assert np.array_equal(np.all(errors == CORRECT_COLOR, axis=-1), right)
    assert np.all(errors[target == 255] == 0)
    # opacity 0: every panel is the image itself
    for name, picture in inspector.layers(data, InspectorState(image=0, opacity=0.0)).items():
        assert np.array_equal(picture, data.images[0]), name


def test_highlight_dims_every_other_pixel():
    data = small_data()
    plain = inspector.layers(data, InspectorState(image=0, opacity=1.0))
    lit = inspector.layers(data, InspectorState(image=0, opacity=1.0, highlight=ROAD))
    for name, mask in (("ground truth", data.targets[0]), ("prediction", data.preds[0])):
        keep = mask == ROAD
        assert np.array_equal(lit[name][keep], plain[name][keep])
        dimmed = np.rint(plain[name][~keep].astype(np.float32) * inspector.DIM)
        assert np.array_equal(lit[name][~keep], dimmed.astype(np.uint8))
    assert np.array_equal(lit["image"], plain["image"])


def test_layers_follow_the_toggles_and_bad_states_fail():
    data = small_data()
    fig = inspector.render(data, InspectorState(show=("prediction", "image")))
    titles = [ax.get_title() for ax in fig.findobj(Axes) if ax.get_title()]
    assert titles == ["image", "prediction"]  # drawn in LAYERS order
    with pytest.raises(ValueError, match="layers"):
        inspector.render(data, InspectorState(show=("depth",)))
    with pytest.raises(ValueError, match="outside"):
        inspector.render(data, InspectorState(pixel=(4, 0)))
    with pytest.raises(ValueError, match="image 2"):
        inspector.describe(data, InspectorState(image=2))
    with pytest.raises(ValueError, match="opacity"):
        inspector.render(data, InspectorState(opacity=1.5))


@pytest.fixture(scope="module")
def trained():
    """The committed MiniCity DGCNet (paper head) on two random 64 x 128 images."""
    model, _ = load_for_inference(CHECKPOINT)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 64, 128, generator=generator)
    masks = torch.randint(0, 19, (2, 64, 128), generator=generator)
    masks[:, :5] = 255
    return model, images, masks, inspector.compute(model, images, masks, batch_size=1)


def test_compute_against_plain_recomputations(trained):
    model, images, masks, data = trained
    with torch.no_grad():
        logits = model(images)["out"]
    assert np.array_equal(data.preds, logits.argmax(1).numpy())
    assert np.array_equal(data.errors, ((data.preds != masks.numpy()) & (masks.numpy() != 255)))
    assert data.images.shape == (2, 64, 128, 3) and data.images.dtype == np.uint8

    # the graph input X, caught by hand, and A_S = delta(V_S) Psi(V_S)^T, V_S = avg-pool_d(X)
    graph = model.head.graph
    caught = []
    handle = graph.register_forward_pre_hook(lambda _m, args: caught.append(args[0]))
    with torch.no_grad():
        model(images[1:])
    handle.remove()
    x = caught[0][0]  # [D, h, w]
    coordinate = graph.coordinate
    d = coordinate.downsample_rate
    v = F.avg_pool2d(x[None], d, d, ceil_mode=True)[0]
    nodes = v.flatten(1).T  # [N', D]
    delta = nodes @ coordinate.query.weight[:, :, 0, 0].T + coordinate.query.bias
    psi = nodes @ coordinate.key.weight[:, :, 0, 0].T + coordinate.key.bias
    torch.testing.assert_close(
        torch.from_numpy(data.affinity[1]), delta @ psi.T, rtol=1e-4, atol=1e-3
    )
    assert data.node_grid == tuple(v.shape[1:])
    # H_F = phi(X), a bias-free 1x1 conv
    phi = graph.feature.to_nodes.weight[:, :, 0, 0]
    torch.testing.assert_close(
        torch.from_numpy(data.assignment[1]), torch.einsum("kc,chw->khw", phi, x)
    )
    # image pixel (y, x) -> feature position round(y (h - 1) / (H - 1)) -> node (fy // d, fx // d)
    h, w = x.shape[1:]
    for y, x_ in [(0, 0), (63, 127), (20, 45), (37, 100)]:
        fy, fx = round(y * (h - 1) / 63), round(x_ * (w - 1) / 127)
        assert data.pixel_feature[y, x_] == fy * w + fx
        assert data.pixel_node[y, x_] == (fy // d) * data.node_grid[1] + fx // d


def test_predictions_by_another_test_mode_keep_the_whole_image_graphs(trained):
    model, images, masks, data = trained
    slid = inspector.compute(model, images, masks, mode="slide", tile=64, overlap=1 / 3)
    with torch.no_grad():
        expected = evaluation.predict(model, images, mode="slide", tile=64, overlap=1 / 3)
    assert np.array_equal(slid.preds, expected.argmax(1).numpy())
    np.testing.assert_allclose(slid.affinity, data.affinity, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(slid.assignment, data.assignment, rtol=1e-5, atol=1e-5)


def test_graph_panels_show_the_pixels_node_row(trained):
    _, _, _, data = trained
    state = InspectorState(image=1, pixel=(30, 70), opacity=1.0)
    info = inspector.describe(data, state)
    fig = inspector.render(data, state)
    heat = np.asarray(
        [ax for ax in fig.findobj(Axes) if ax.get_title().startswith("A_S row")][0]
        .images[1]
        .get_array()
    )
    row = data.affinity[1, info["node"]]
    assert heat.shape == (64, 128)
    assert np.allclose(heat, row[data.pixel_node])
    column = data.assignment[1].reshape(data.assignment.shape[1], -1)[:, data.pixel_feature[30, 70]]
    assert info["feature_node"] == int(np.argmax(np.abs(column)))
    assert f"H_F of feature node {info['feature_node']}" in texts(fig)


def test_static_figure_stacks_the_states(trained):
    _, _, _, data = trained
    states = [InspectorState(image=0), InspectorState(image=1, highlight=ROAD, pixel=(10, 10))]
    fig = inspector.static_figure(data, states)
    assert isinstance(fig, Figure)
    assert "image 0" in texts(fig) and "image 1" in texts(fig) and "road: IoU" in texts(fig)
    assert inspector.png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_widget_builds_and_follows_its_controls_without_a_frontend(trained):
    pytest.importorskip("ipywidgets")
    _, _, _, data = trained
    box = inspector.inspector(data)
    controls = box.controls
    first = box.children[3].value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    controls["image"].value = 1
    controls["highlight"].value = CAR
    controls["show errors"].value = False
    controls["graphs"].value = True
    controls["y"].value, controls["x"].value = 12, 34
    assert box.current_state() == InspectorState(
        image=1, show=("image", "ground truth", "prediction"), highlight=CAR, pixel=(12, 34)
    )
    assert box.children[3].value != first
    expected = inspector.describe(data, box.current_state())
    assert f"<code>union</code>: {expected['union']}" in box.children[4].value
    controls["highlight"].value = -1  # "none"
    assert box.current_state().highlight is None
    assert "<code>union</code>" not in box.children[4].value


def test_without_a_kernel_the_widget_shows_one_line_on_what_to_run(trained):
    """A saved notebook shows a widget's text/plain form where nothing renders widgets (GitHub,
    nbviewer): one line that says what to run, not ``VBox(children=(HBox(...``."""
    widgets = pytest.importorskip("ipywidgets")
    box = inspector.inspector(trained[3])
    bundle = box._repr_mimebundle_()
    assert bundle["text/plain"] == inspector.NO_KERNEL_NOTE == repr(box)
    assert "Jupyter" in bundle["text/plain"] and "\n" not in bundle["text/plain"]
    assert len(inspector.NO_KERNEL_NOTE) <= 110  # ipywidgets cuts the text form there
    assert "application/vnd.jupyter.widget-view+json" in bundle  # a kernel still shows it
    assert isinstance(box, widgets.VBox) and "VBox(children" in repr(widgets.VBox(box.children))


def test_without_ipywidgets_the_static_figure_is_returned(trained, monkeypatch):
    _, _, _, data = trained
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    states = [InspectorState(image=0), InspectorState(image=1)]
    fig = inspector.inspector(data, static_states=states)
    assert isinstance(fig, Figure) and "image 1" in texts(fig)


def test_the_baseline_has_no_graph_views():
    model = models.build_model("fcn_micro")  # structure only: nothing learned is shown
    images, masks = torch.randn(1, 3, 64, 64), torch.zeros(1, 64, 64, dtype=torch.long)
    data = inspector.compute(model, images, masks)
    assert data.affinity is None and data.assignment is None
    fig = inspector.render(data, InspectorState(pixel=(3, 3)))
    assert "A_S row" not in texts(fig)


def test_an_images_miou_is_the_mean_over_the_classes_it_shows():
    data = small_data()
    for index in range(len(data)):
        target, pred = data.targets[index], data.preds[index]
        scored = target != 255
        ious = []
        for k in np.union1d(np.unique(target[scored]), np.unique(pred[scored])):
            truth, guess = (target == k) & scored, (pred == k) & scored
            ious.append((truth & guess).sum() / (truth | guess).sum())
        assert inspector.image_miou(data, index) == pytest.approx(np.mean(ious))


# --- class names, not train ids; the widget's sliders and its reused figures; the split


def names_by_train_id() -> dict[int, str]:
    """{train id: name} read from the label table itself, not from CLASS_NAMES."""
    from dgcn.datasets.labels import LABELS

    return {label.train_id: label.name for label in LABELS if label.train_id != 255}


def test_a_pixel_and_the_legend_are_reported_by_class_name():
    data = small_data()
    names = names_by_train_id()
    # pixel (0, 2): truth road, predicted sidewalk; (2, 5): not scored, predicted sidewalk
    info = inspector.describe(data, InspectorState(image=0, pixel=(0, 2)))
    assert (info["target"], info["pred"]) == (names[ROAD], names[SIDEWALK]) == ("road", "sidewalk")
    assert (info["target_id"], info["pred_id"]) == (ROAD, SIDEWALK)
    unscored = inspector.describe(data, InspectorState(image=0, pixel=(2, 5)))
    assert (unscored["target"], unscored["pred"]) == ("not scored", "sidewalk")
    html = inspector.readout(info)
    assert "<code>target</code>: road" in html and "<code>pred</code>: sidewalk" in html
    assert "_id" not in html  # the ids stay out of the readout
    # the legend: the classes of image 0's scored truth and its prediction, by name, in order
    fig = inspector.render(data, InspectorState(image=0, highlight=CAR))
    (legend,) = fig.findobj(Legend)
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [names[k] for k in (ROAD, SIDEWALK, CAR)] == ["road", "sidewalk", "car"]
    bold = [t.get_text() for t in legend.get_texts() if t.get_fontweight() == "bold"]
    assert bold == ["car"]  # the highlighted class
    (legend,) = inspector.render(data, InspectorState(image=1)).findobj(Legend)
    assert [t.get_text() for t in legend.get_texts()] == ["building"]
    # no ground truth or prediction shown: no legend
    assert not inspector.render(data, InspectorState(show=("image", "errors"))).findobj(Legend)


def test_the_graph_row_names_the_classes_and_labels_its_colour_bars(trained):
    _, _, _, data = trained
    state = InspectorState(image=0, pixel=(30, 70))
    info = inspector.describe(data, state)
    names = names_by_train_id()
    text = texts(inspector.render(data, state))
    predicted = names[int(data.preds[0, 30, 70])]
    truth = names[int(data.targets[0, 30, 70])] if data.targets[0, 30, 70] != 255 else None
    assert f"pixel (y=30, x=70): predicted {predicted}" in text
    assert truth is None or f"(truth: {truth})" in text
    assert info["pred"] == predicted
    assert inspector.AFFINITY_LABEL in text and inspector.ASSIGNMENT_LABEL in text


def test_the_widget_names_its_classes_and_redraws_its_sliders_on_release(trained):
    widgets = pytest.importorskip("ipywidgets")
    _, _, _, data = trained
    box = inspector.inspector(data, state=InspectorState(pixel=(10, 20)))
    controls = box.controls
    labels = [label for label, _ in controls["highlight"].options]
    assert labels == ["none", *[names_by_train_id()[k] for k in range(19)]]
    sliders = [c for c in controls.values() if isinstance(c, widgets.widgets.widget_int._Int)]
    sliders += [c for c in controls.values() if isinstance(c, widgets.FloatSlider)]
    assert {id(c) for c in sliders} >= {id(controls[n]) for n in ("opacity", "y", "x")}
    assert all(not c.continuous_update for c in sliders)
    assert "<code>pred</code>: " + inspector.describe(data, box.current_state())["pred"] in (
        box.children[4].value
    )


def _artists_of(fig: Figure) -> dict:
    """What a drawn inspector figure shows, read back from its artists."""
    axes = [ax for ax in fig.findobj(Axes) if ax.get_title()]
    shown = {ax.get_title(): [np.asarray(im.get_array()) for im in ax.images] for ax in axes}
    bars = [ax for ax in axes if ax.get_title().startswith("its projection")]
    return {
        "titles": sorted(ax.get_title() for ax in axes),
        "images": shown,
        "limits": [float(v) for ax in axes for im in ax.images[1:] for v in im.get_clim()],
        "bars": [p.get_height() for p in bars[0].patches] if bars else [],
        "suptitles": sorted(
            t.get_text() for t in fig.findobj(Text) if t.get_text().startswith(("image ", "pixel"))
        ),
        "legend": [[t.get_text() for t in leg.get_texts()] for leg in fig.findobj(Legend)],
    }


def test_the_widgets_reused_figure_shows_what_a_new_one_shows(trained):
    _, _, _, data = trained
    canvas = inspector.Canvas(data)
    states = [
        InspectorState(image=0, highlight=ROAD, pixel=(10, 10)),
        InspectorState(image=1, highlight=CAR, pixel=(40, 100), opacity=0.3),
        InspectorState(image=0, pixel=(63, 127)),
    ]
    for state in states:  # one layout: the first drawing's figure, updated twice
        reused = canvas.figure(state)
        fresh = inspector.render(data, state)
        got, expected = _artists_of(reused), _artists_of(fresh)
        assert got["titles"] == expected["titles"] and got["suptitles"] == expected["suptitles"]
        assert got["legend"] == expected["legend"]
        for title, pictures in expected["images"].items():
            for picture, drawn_picture in zip(pictures, got["images"][title], strict=True):
                np.testing.assert_array_equal(drawn_picture, picture)
        assert got["limits"] == pytest.approx(expected["limits"])
        np.testing.assert_allclose(got["bars"], expected["bars"])
    assert len(canvas._figures) == 1
    # a state shown before: its PNG again, nothing drawn
    first = canvas.png(states[0])
    draws = canvas.draws
    canvas.png(states[1])
    assert canvas.png(states[0]) == first and canvas.draws == draws + 1


def test_the_split_modules_import_without_matplotlib_and_agree():
    import subprocess

    modules = ["dgcn.viz.inspector_compute", "dgcn.viz.inspector_draw", "dgcn.viz.inspector_canvas"]
    code = (
        "import sys\n"
        f"for name in {modules + ['dgcn.viz.inspector']!r}:\n"
        "    __import__(name)\n"
        "assert 'matplotlib' not in sys.modules, 'imported at import time'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CHECKPOINT.parents[2])
    from dgcn.viz import inspector_canvas, inspector_compute, inspector_draw

    # what dgcn.viz.inspector offered before the split, still there, from the module of its stage
    before = {"DIM", "LAYERS", "InspectorData", "InspectorState", "compute", "describe"}
    before |= {"image_miou", "inspector", "layers", "png", "render", "static_figure"}
    assert before <= set(inspector.__all__)
    stages = (inspector_compute, inspector_draw, inspector_canvas)
    for name in inspector.__all__:
        homes = [m for m in stages if name in m.__all__]
        assert name in {"inspector", "readout", "NO_KERNEL_NOTE"} or len(homes) == 1, name
        for module in homes:
            assert getattr(inspector, name) is getattr(module, name), name
