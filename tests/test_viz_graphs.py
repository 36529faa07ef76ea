"""Graph views: affinities and assignments against hand computations, captured inputs, figures."""

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

# an extra: without matplotlib this file is skipped (see tests/test_viz.py)
pytest.importorskip(
    "matplotlib", reason="the figures need matplotlib (pip install -e .[notebooks])"
)
from matplotlib.figure import Figure  # noqa: E402

from dgcn import models
from dgcn.training import split_change
from dgcn.viz import graphs


def _affinity_by_hand(module: models.CoordinateGCN, x: torch.Tensor, node: tuple[int, int]):
    """delta(v_i) . Psi(v_j) for every node j, from the module's weights, written out."""
    d = module.downsample_rate
    v = F.avg_pool2d(x, d, d, ceil_mode=True)[0]  # [D, h', w']
    rows = v.flatten(1).T  # [N', D]: one node per row
    delta = rows @ module.query.weight[:, :, 0, 0].T + module.query.bias
    psi = rows @ module.key.weight[:, :, 0, 0].T + module.key.bias
    i = node[0] * v.shape[2] + node[1]
    return (psi @ delta[i]).view(v.shape[1:])


def test_coordinate_affinity_is_a_row_of_delta_psi():
    module = models.CoordinateGCN(8, downsample=4, pooling="avg").double()
    x = torch.randn(1, 8, 10, 13, dtype=torch.float64)  # 3 x 4 nodes, partial borders
    affinity = graphs.coordinate_affinity(module, x, (6, 9))  # node (1, 2)
    assert affinity.shape == (3, 4)
    torch.testing.assert_close(affinity, _affinity_by_hand(module, x, (1, 2)))
    last = graphs.coordinate_affinity(module, x, (9, 12))  # the partial corner node (2, 3)
    torch.testing.assert_close(last, _affinity_by_hand(module, x, (2, 3)))


def test_coordinate_affinity_in_image_coordinates():
    module = models.CoordinateGCN(8, downsample=2).double()
    x = torch.randn(1, 8, 9, 9, dtype=torch.float64)
    # image 33 x 33 -> features 9 x 9 (align_corners): image pixel 16 is feature pixel 4
    by_image = graphs.coordinate_affinity(module, x, (16, 32), image_size=(33, 33))
    torch.testing.assert_close(by_image, graphs.coordinate_affinity(module, x, (4, 8)))
    torch.testing.assert_close(by_image, _affinity_by_hand(module, x, (2, 4)))


def test_feature_pixel_follows_align_corners():
    # 128 x 256 image, 16 x 32 feature: feature position u sits at image pixel u * 127 / 15
    assert graphs.feature_pixel((0, 0), (128, 256), (16, 32)) == (0, 0)
    assert graphs.feature_pixel((127, 255), (128, 256), (16, 32)) == (15, 31)
    assert graphs.feature_pixel((59, 74), (128, 256), (16, 32)) == (7, 9)  # 6.97, 9.00
    assert graphs.feature_pixel((3, 4), (7, 9), (1, 1)) == (0, 0)


def test_node_of_pixel_for_strided_convs_is_the_nearest_centre():
    module = models.CoordinateGCN(8, downsample=4, pooling="conv")
    # stride-2 3x3 convs (padding 1) twice: node i is centred on pixel 4 i
    assert graphs.node_of_pixel(module, (0, 0), (3, 3)) == 0
    assert graphs.node_of_pixel(module, (5, 2), (3, 3)) == 1 * 3 + 1
    assert graphs.node_of_pixel(module, (7, 11), (3, 3)) == 2 * 3 + 2  # clipped to the grid
    x = torch.randn(1, 8, 9, 9)
    assert graphs.coordinate_affinity(module, x, (4, 4)).shape == (3, 3)


def test_coordinate_affinity_restores_the_mode_and_rejects_other_modules():
    module = models.CoordinateGCN(8, downsample=2).train()
    graphs.coordinate_affinity(module, torch.randn(1, 8, 4, 4), (0, 0))
    assert module.training
    with pytest.raises(TypeError):
        graphs.coordinate_affinity(
            models.OfficialCoordinateGCN(8, 2), torch.randn(1, 8, 4, 4), (0, 0)
        )
    with pytest.raises(ValueError):
        graphs.coordinate_affinity(module, torch.randn(2, 8, 4, 4), (0, 0))


def test_feature_assignment_is_the_1x1_conv():
    module = models.FeatureGCN(16)
    x = torch.randn(1, 16, 5, 7)
    weight = module.to_nodes.weight[:, :, 0, 0]  # [D2, D]
    expected = torch.einsum("kd,dhw->khw", weight, x[0])
    assignment = graphs.feature_assignment(module, x)
    assert assignment.shape == (4, 5, 7)
    torch.testing.assert_close(assignment, expected)


def test_feature_assignment_of_the_official_branch_uses_eval_bn():
    module = models.OfficialFeatureGCN(16).train()
    conv, bn = module.to_nodes
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.normal_()
    bn.bias.data.normal_()
    before = bn.running_mean.clone()
    x = torch.randn(1, 16, 5, 7)
    rows = torch.einsum("kd,dhw->khw", conv.weight[:, :, 0, 0], x[0])
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    expected = (rows - bn.running_mean[:, None, None]) * scale[:, None, None]
    expected = expected + bn.bias[:, None, None]
    torch.testing.assert_close(graphs.feature_assignment(module, x), expected)
    assert module.training and torch.equal(bn.running_mean, before)  # no statistics updated


def test_capture_graph_input_of_the_paper_head_is_layer4():
    model = models.build_model("dgcnet_paper_micro").train()
    images = torch.randn(1, 3, 64, 96)
    graph, features = graphs.capture_graph_input(model, images)
    assert graph is model.head.graph
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        expected = model.backbone(images)["out"]
    assert features.shape == (1, 128, 8, 12)
    torch.testing.assert_close(features, expected)


def test_capture_graph_input_of_the_official_head_is_the_reduction():
    model = models.build_model("dgcnet_official_micro").eval()
    images = torch.randn(1, 3, 64, 64)
    graph, features = graphs.capture_graph_input(model, images)
    assert graph is model.head.graph
    with torch.no_grad():
        expected = model.head.reduce(model.backbone(images)["out"])
    torch.testing.assert_close(features, expected)


def test_capture_graph_input_rejects_the_baseline():
    with pytest.raises(ValueError, match="no graph"):
        graphs.capture_graph_input(models.build_model("fcn_micro"), torch.randn(1, 3, 32, 32))


def test_reprojection_norms_finds_the_bn_closing_each_graph():
    paper = models.build_model("dgcnet_paper_micro")
    norms = graphs.reprojection_norms(paper)
    assert list(norms) == ["coordinate", "feature"]
    assert norms["coordinate"] is paper.head.graph.coordinate.reproject[1]
    assert norms["feature"] is paper.head.graph.feature.reproject[1]
    official = graphs.reprojection_norms(models.build_model("dgcnet_official_micro"))
    assert all(isinstance(bn, torch.nn.BatchNorm2d) for bn in official.values())
    assert list(official) == ["coordinate", "feature"]
    assert graphs.reprojection_norms(models.build_model("fcn_micro")) == {}
    feature_only = models.DualGCN(16, graphs="feature")
    assert list(graphs.reprojection_norms(feature_only)) == ["feature"]
    module = models.CoordinateGCN(8, downsample=2)
    assert graphs.reprojection_norms(module) == {"coordinate": module.reproject[1]}


def _random_bn(bn: torch.nn.BatchNorm2d) -> None:
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)


def test_reprojection_inputs_keeps_what_the_bn_receives():
    module = models.CoordinateGCN(8, downsample=2).double().eval()
    _random_bn(module.reproject[1])
    x = torch.randn(2, 8, 6, 10, dtype=torch.float64)
    with torch.no_grad(), graphs.reprojection_inputs(module) as seen:
        out = module(x)
        module(x[:1])
    assert [tuple(t.shape) for t in seen["coordinate"]] == [(2, 8, 3, 5), (1, 8, 3, 5)]
    # BN of what was kept, upsampled: the module's output, so it was the BN's input
    with torch.no_grad():
        normed = module.reproject[1](seen["coordinate"][0])
        again = F.interpolate(normed, size=(6, 10), mode="bilinear", align_corners=True)
    torch.testing.assert_close(again, out)
    assert not module.reproject[1]._forward_pre_hooks  # removed after the block


def test_reprojection_inputs_divides_the_sums_before_the_bn():
    torch.manual_seed(0)
    block = models.DualGCN(16, downsample=2).double().eval()
    for bn in graphs.reprojection_norms(block).values():
        _random_bn(bn)
    x = torch.randn(1, 16, 8, 12, dtype=torch.float64)
    with torch.no_grad(), graphs.reprojection_inputs(block, divide_by=4) as seen:
        divided = block(x)
    # the same as a copy whose reprojection convs (linear, before the BN) are divided by 4
    scaled = copy.deepcopy(block)
    for branch in (scaled.coordinate, scaled.feature):
        with torch.no_grad():
            branch.reproject[0].weight /= 4
    with torch.no_grad(), graphs.reprojection_inputs(scaled) as plain:
        expected = scaled(x)
    torch.testing.assert_close(divided, expected)
    for name in ("coordinate", "feature"):  # what is kept is the divided input
        torch.testing.assert_close(seen[name][0], plain[name][0])
    with pytest.raises(ValueError, match="divide_by"):
        with graphs.reprojection_inputs(block, divide_by=0):
            pass


def test_reprojection_inputs_removes_its_hooks_on_an_error():
    model = models.build_model("dgcnet_paper_micro").eval()
    with pytest.raises(RuntimeError):
        with graphs.reprojection_inputs(model, divide_by=2):
            model(torch.randn(1, 5, 32, 32))  # 5 channels: the backbone refuses
    assert all(not bn._forward_pre_hooks for bn in graphs.reprojection_norms(model).values())
    with graphs.reprojection_inputs(models.build_model("fcn_micro")) as seen:
        pass
    assert seen == {}


def test_figures():
    image = np.random.default_rng(0).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    fig = graphs.plot_affinity(image, torch.randn(4, 8), (10, 20))
    assert isinstance(fig, Figure) and fig.dpi <= 100
    centred = graphs.plot_affinity(image, torch.randn(4, 8), (10, 20), limit=3.0)
    shown = centred.axes[1].images[-1]
    assert shown.get_clim() == (-3.0, 3.0) and shown.get_cmap().name == "RdBu_r"
    assert shown.colorbar is not None
    grid = graphs.plot_node_grid(image, (2, 4), 16, (20, 40))  # 32 x 64: 2 x 4 patches of 16
    (cell,) = grid.axes[0].patches
    assert cell.get_xy() == (2 * 16 - 0.5, 1 * 16 - 0.5)  # node (1, 2) holds pixel (20, 40)
    assert "node (1, 2)" in grid.axes[0].get_title()
    chosen = graphs.plot_node_grid(image, (2, 4), 16, (20, 40), node=3)
    assert "node (0, 3)" in chosen.axes[0].get_title()
    fig = graphs.plot_assignment(image, torch.randn(5, 8, 16), nodes=4)
    assert isinstance(fig, Figure) and len([a for a in fig.axes if a.images]) == 4
    assert isinstance(graphs.plot_assignment(image, torch.randn(2, 8, 16)), Figure)  # nodes > D2
    assert isinstance(graphs.adjacency_heatmap(torch.randn(5, 5), "A"), Figure)
    assert isinstance(graphs.adjacency_heatmap(np.eye(40)), Figure)
    with pytest.raises(ValueError):
        graphs.adjacency_heatmap(np.ones((2, 3)))


def test_plot_assignment_picks_the_strongest_nodes():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    maps = torch.zeros(5, 8, 8)
    maps[3] = -2.0  # the largest total |response|, although negative
    maps[1] = 1.0
    fig = graphs.plot_assignment(image, maps, nodes=2)
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles == ["node 3", "node 1"]


def test_every_node_map_and_matrix_panel_has_its_colour_bar():
    image = np.zeros((8, 16, 3), dtype=np.uint8)
    fig = graphs.plot_assignment(image, torch.randn(5, 4, 8), nodes=4)
    maps = [a for a in fig.axes if a.get_title()]
    assert len(maps) == 4 and len(fig.axes) == 6 + 4  # 2 x 3 grid (2 blank) + 4 colour bars
    trained, initial = torch.randn(6, 6), torch.randn(6, 6)
    fig = graphs.plot_matrix_change(trained, initial, "A_F")
    assert len(fig.axes) == 3 + 3
    change = split_change(trained, initial)
    titles = [a.get_title() for a in fig.axes[:3]]
    assert titles[0] == "A_F after training"
    assert f"{100 * change.moved:.1f} %" in titles[1] and f"c = {change.c:.4f}" in titles[2]
    with pytest.raises(ValueError, match="one shape"):
        graphs.plot_matrix_change(torch.ones(2, 2), torch.ones(3, 3))


def test_class_projections_average_each_class_on_the_feature_grid():
    mask = torch.full((4, 8), 255, dtype=torch.long)  # ignored everywhere but two classes
    mask[:2, :4], mask[2:, 4:] = 3, 7
    assignment = torch.arange(2 * 2 * 4, dtype=torch.float32).view(2, 2, 4)
    ids, means = graphs.class_projections(assignment, mask)  # the 4 x 8 mask to 2 x 4 cells
    assert ids == [3, 7]
    torch.testing.assert_close(means[0], assignment[:, :1, :2].flatten(1).mean(1))
    torch.testing.assert_close(means[1], assignment[:, 1:, 2:].flatten(1).mean(1))
    ((distance, first, second),) = graphs.closest_class_pairs(assignment, mask)
    assert (first, second) == (3, 7)
    assert distance == pytest.approx(float((means[0] - means[1]).norm()))
    three = torch.zeros(1, 1, 3)
    three[0, 0] = torch.tensor([0.0, 1.0, 5.0])  # classes 0, 1, 2 at 0, 1 and 5
    found = graphs.closest_class_pairs(three, torch.tensor([[0, 1, 2]]), pairs=2)
    assert found == [(1.0, 0, 1), (4.0, 1, 2)]
    none, empty = graphs.class_projections(assignment, torch.full((4, 8), 255))
    assert none == [] and empty.shape == (0, 2)
    with pytest.raises(ValueError):
        graphs.class_projections(assignment[0], mask)


@pytest.mark.slow
def test_module_does_not_import_matplotlib():
    code = "import sys, dgcn.viz.graphs; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
