"""The architecture diagram: the shapes it writes are those of a plain forward of the model."""

import re

import pytest
import torch

# an extra: without matplotlib this file is skipped (see tests/test_viz.py)
pytest.importorskip(
    "matplotlib", reason="the figures need matplotlib (pip install -e .[notebooks])"
)
from matplotlib.figure import Figure  # noqa: E402

from dgcn import models, viz  # noqa: E402
from dgcn.viz import architecture  # noqa: E402

SHAPE = re.compile(r"(\d+(?:×\d+)+)$")


def written_shapes(fig: Figure) -> dict[str, tuple[int, ...]]:
    """{stage: shape without the batch} read back from the texts of the figure."""
    found = {}
    for text in fig.axes[0].texts:
        if text.get_gid():
            match = SHAPE.search(text.get_text())
            assert match, f"no shape in {text.get_text()!r}"
            assert text.get_gid() not in found, f"{text.get_gid()} written twice"
            found[text.get_gid()] = tuple(int(n) for n in match.group(1).split("×"))
    return found


def plain_forward_shapes(model: models.DGCNet, size: tuple[int, int]) -> dict[str, tuple]:
    """Every stage, computed by calling the modules one after the other (no hooks)."""
    parameter = next(model.parameters())
    x = torch.randn(1, 3, *size, device=parameter.device, dtype=parameter.dtype)
    backbone, head = model.backbone, model.head
    official = isinstance(head, models.DualGCNHead)
    shapes = {"input": x.shape}
    model.eval()
    with torch.no_grad():
        h = x
        for name in ("stem", "layer1", "layer2", "layer3", "layer4"):
            h = getattr(backbone, name)(h)
            shapes[name] = h.shape
        layer4 = h
        graph_in = head.reduce(layer4) if official else layer4
        if official:
            shapes["reduce"] = graph_in.shape
        else:
            shapes["head_in"] = layer4.shape
        graph = head.graph
        coordinate, feature = graph.coordinate, graph.feature
        nodes = coordinate.downsample(graph_in)
        shapes["coord_nodes"] = nodes.shape
        inner = coordinate.query.out_channels
        if official:  # the authors' message is channels x nodes
            shapes["coord_message"] = (1, inner, nodes.shape[2] * nodes.shape[3])
        else:
            shapes["coord_message"] = (1, inner, *nodes.shape[2:])
        shapes["coord_out"] = coordinate(graph_in).shape
        assign = feature.to_nodes(graph_in)
        features = feature.to_features(graph_in)
        shapes["feature_assign"], shapes["feature_features"] = assign.shape, features.shape
        v_f = torch.bmm(assign.flatten(2), features.flatten(2).transpose(1, 2))  # nodes x feats
        shapes["feature_nodes"] = v_f.shape
        shapes["feature_out"] = feature(graph_in).shape
        merged = graph(graph_in)
        shapes["graph"] = merged.shape
        if official:
            projected = head.project(merged)
            shapes["project"] = projected.shape
            shapes["concat"] = torch.cat([layer4, projected], 1).shape
        shapes["logits"] = head(layer4).shape
        shapes["out"] = model(x)["out"].shape
        model.train()  # the auxiliary output exists in training mode only
        shapes["aux_out"] = model(x)["aux"].shape
        shapes["aux"] = model.aux_head(backbone(x)["aux"]).shape
        model.eval()
    return {key: tuple(shape)[1:] for key, shape in shapes.items()}


@pytest.mark.parametrize("preset", ["dgcnet_official_micro", "dgcnet_paper_micro"])
def test_micro_diagram_writes_the_shapes_of_a_plain_forward(preset):
    torch.manual_seed(0)
    model = models.build_model(preset)
    size = (70, 130)  # not multiples of 8: the rounding of every stage shows
    expected = plain_forward_shapes(model, size)
    fig = viz.architecture_diagram(model, size)
    assert isinstance(fig, Figure)
    assert written_shapes(fig) == expected


@pytest.mark.parametrize("preset", ["dgcnet_official_r101", "dgcnet_paper_r101"])
def test_meta_r101_diagram_writes_the_shapes_of_a_plain_forward(preset):
    with torch.device("meta"):
        model = models.build_model(preset)
    expected = plain_forward_shapes(model, (832, 832))
    fig = viz.architecture_diagram(preset, (832, 832))  # built by name, on the meta device
    shapes = written_shapes(fig)
    assert shapes == expected
    # by hand: the deep stem's ceil-mode max-pool gives 105 at 832 (docs/reference/
    # official_dgcnet.md), torchvision's stem 104; d = 8 makes 14x14 and 13x13 nodes
    side, grid = (105, 14) if preset == "dgcnet_official_r101" else (104, 13)
    assert shapes["layer4"] == (2048, side, side)
    assert shapes["coord_nodes"][-2:] == (grid, grid)
    assert shapes["out"] == (19, 832, 832)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert f"{grid}×{grid} grid" in texts and preset in texts


def test_full_frame_of_the_authors_network():
    shapes = architecture.architecture_shapes("dgcnet_official_r101", (1024, 2048))
    assert shapes["layer4"] == (1, 2048, 129, 257)  # docs/reference/official_dgcnet.md
    assert shapes["concat"] == (1, 2560, 129, 257)
    assert shapes["coord_nodes"] == (1, 512, 17, 33)  # 129 -> 65 -> 33 -> 17, 257 -> ... 33
    assert shapes["feature_nodes"] == (1, 128, 256)


def test_shapes_leave_the_model_as_it_was():
    model = models.build_model("dgcnet_paper_micro").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    architecture.architecture_shapes(model, (64, 128))
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_other_heads_and_single_graphs_draw():
    for name, options in [
        ("dgcnet_official_micro", {"graphs": "feature"}),
        ("dgcnet_paper_micro", {"graphs": "coordinate", "aux": False}),
        ("dgcnet_official_micro", {"graphs": "none"}),
        ("fcn_micro", {}),
    ]:
        model = models.build_model(name, **options)
        shapes = written_shapes(viz.architecture_diagram(model, (64, 128)))
        assert shapes["out"] == (19, 64, 128)
        assert ("aux" in shapes) == options.get("aux", True)


def test_rejects_what_is_not_a_dgcnet():
    with pytest.raises(TypeError, match="DGCNet"):
        viz.architecture_diagram(models.DualGCN(8), (32, 32))


#: what the diagram drew before its boxes and arrows became tables (the same models at 70x130):
#: (preset, options, boxes, arrows)
DRAWN_BEFORE = [
    ("dgcnet_official_micro", {}, 19, 20),
    ("dgcnet_paper_micro", {}, 18, 19),
    ("dgcnet_official_micro", {"graphs": "feature"}, 16, 16),
    ("dgcnet_official_micro", {"graphs": "coordinate"}, 16, 16),
    ("dgcnet_paper_micro", {"graphs": "coordinate", "aux": False}, 13, 13),
    ("dgcnet_paper_micro", {"graphs": "feature"}, 15, 15),
    ("dgcnet_official_micro", {"graphs": "none"}, 12, 12),
    ("dgcnet_paper_micro", {"graphs": "none"}, 11, 10),
    ("fcn_micro", {}, 11, 10),
    ("dgcnet_official_micro", {"graphs": "ppm"}, 13, 13),
    ("dgcnet_paper_micro", {"graphs": "global-pool"}, 12, 11),
    ("dgcnet_paper_micro", {"graphs": "non-local", "aux": False}, 10, 9),
]
#: and the titles of the boxes of both full heads, in drawing order
TITLES_BEFORE = {
    "dgcnet_official_micro": [
        *("input image", "stem", "layer1", "layer2", "layer3", "layer4"),
        *("auxiliary head", "upsample (aux loss)", "reduce (conva)"),
        *("coordinate nodes (2×3 grid)", "coordinate graph conv", "coordinate output"),
        *("feature projections", "feature graph (nodes × features)", "feature output"),
        *("fuse (final)", "project (convb)", "concat [X; project] + classifier", "upsample"),
    ],
    "dgcnet_paper_micro": [
        *("input image", "stem", "layer1", "layer2", "layer3", "layer4"),
        *("auxiliary head", "upsample (aux loss)", "X: the backbone feature"),
        *("coordinate nodes (2×3 grid)", "coordinate graph conv", "coordinate output"),
        *("feature projections", "feature graph (nodes × features)", "feature output"),
        *("sum", "classifier (FCNHead)", "upsample"),
    ],
}


@pytest.mark.parametrize(("preset", "options", "boxes", "arrows"), DRAWN_BEFORE)
def test_the_tables_draw_every_box_and_arrow_drawn_before(preset, options, boxes, arrows):
    from matplotlib.text import Annotation

    fig = viz.architecture_diagram(models.build_model(preset, **options), (70, 130))
    ax = fig.axes[0]
    assert len(ax.patches) == boxes
    assert sum(isinstance(text, Annotation) for text in ax.texts) == arrows
    if preset in TITLES_BEFORE and not options:
        bold = [text.get_text() for text in ax.texts if text.get_fontweight() == "bold"]
        assert bold[:-1] == TITLES_BEFORE[preset]  # the last one is the figure's title


def test_the_shapes_are_measured_in_models_profile():
    assert architecture.architecture_shapes is models.profile.architecture_shapes
    assert architecture.format_shape((1, 2048, 105, 105)) == "2048×105×105"
