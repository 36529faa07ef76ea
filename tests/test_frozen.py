"""Head-only training on a frozen backbone (the CPU ablation's engine) and its pieces."""

import json
import math

import pytest
import torch
from helpers import plain_object_counts, tiny_opts
from torch.utils.data import DataLoader

from dgcn.checkpoint import export_weights, load_checkpoint, load_for_inference, save_checkpoint
from dgcn.cli import main
from dgcn.config import load_config, save_config
from dgcn.datasets.build import build_dataset
from dgcn.errors import CheckpointError, ConfigError
from dgcn.evaluation import evaluate
from dgcn.evaluation.objects import MIN_PIXELS
from dgcn.fileio import file_sha256
from dgcn.models import build_model
from dgcn.models.dual_gcn import GlobalPoolingContext
from dgcn.training.frozen import cache_features, fit_head, subsample
from dgcn.training.runs import train

MODEL = {"downsample": 2, "dilated": False, "aux": False}


@pytest.fixture(scope="module")
def backbone_file(tmp_path_factory):
    """A dgcn checkpoint of an undilated micro DGCNet with random weights (and random BN
    statistics, so that eval-mode features are not trivially normalised)."""
    torch.manual_seed(1)
    model = build_model("dgcnet_official_micro", 19, downsample=2, dilated=False, graphs="none")
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("bb") / "backbone.pt"
    cfg = load_config("minicity-backbone")
    save_checkpoint(
        path, {"model_name": cfg.model.name, "config": cfg.to_dict(), "model": model.state_dict()}
    )
    return path


def frozen_opts(minicity, backbone_file, **extra):
    opts = tiny_opts(minicity, **{"train.iterations": 6, "train.eval_every": 3, **extra})
    return opts + [
        f"frozen.backbone={backbone_file}",
        f"frozen.sha256={file_sha256(backbone_file)}",
    ]


def test_cached_evaluation_equals_whole_image_evaluation_of_the_saved_network(
    minicity, backbone_file, tmp_path
):
    cfg = load_config("minicity-ablation", frozen_opts(minicity, backbone_file))
    cache = cache_features(cfg, progress=False)
    assert len(cache.train) == 2 * 8 and len(cache.val) == 3  # flipped copies appended
    summary = fit_head(cfg, tmp_path / "run", cache, progress=False)
    model, run_cfg = load_for_inference(tmp_path / "run" / "last.pt")
    loader = DataLoader(build_dataset(run_cfg.data, "val", train=False), batch_size=1)
    matrix = evaluate(model, loader, num_classes=19, mode="whole", progress=False)
    assert matrix.summary()["miou"] == pytest.approx(summary["miou"], abs=1e-12)
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert torch.equal(matrix.matrix, torch.tensor(saved["confusion"]))
    # the big-vehicle object score, recounted by a flood fill on the saved network's predictions
    items = list(build_dataset(run_cfg.data, "val", train=False))
    images, masks = torch.stack([im for im, _ in items]), torch.stack([m for _, m in items])
    with torch.no_grad():
        preds = model(images)["out"].argmax(1)
    plain = plain_object_counts(preds, masks, {14, 15, 16}, MIN_PIXELS)
    counts = {"truck": plain[14], "bus": plain[15], "train": plain[16]}
    assert summary["object_counts"] == saved["eval"]["object_counts"] == counts
    total = sum(t for _, t in counts.values())
    assert total > 0, "the tiny MiniCity has no big vehicle to count"
    assert summary["object_accuracy"] == pytest.approx(sum(r for r, _ in counts.values()) / total)
    assert summary["object_per_class"] == saved["eval"]["object_per_class"]


def test_only_the_head_trains_and_the_backbone_is_the_committed_one(
    minicity, backbone_file, tmp_path
):
    cfg = load_config("minicity-ablation", frozen_opts(minicity, backbone_file))
    fit_head(cfg, tmp_path / "run", progress=False)
    saved = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    original = load_checkpoint(backbone_file)["model"]
    backbone_keys = [k for k in saved if k.startswith("backbone.")]
    assert backbone_keys and all(torch.equal(saved[k], original[k]) for k in backbone_keys)
    torch.manual_seed(cfg.train.seed)
    fresh = build_model(cfg.model.name, 19, **cfg.model.overrides).state_dict()
    moved = [k for k in saved if k.startswith("head.") and not torch.equal(saved[k], fresh[k])]
    assert moved, "the head did not train"


def test_features_of_mirrored_images_are_the_mirrored_features_of_an_equivariant_input(
    minicity, backbone_file
):
    cfg = load_config("minicity-ablation", frozen_opts(minicity, backbone_file))
    cache = cache_features(cfg, progress=False)
    n = len(cache.train) // 2
    dataset = build_dataset(cfg.data, "train", train=False)
    image, mask = dataset[2]
    assert torch.equal(cache.train.masks[2], mask.to(torch.uint8))
    assert torch.equal(cache.train.masks[n + 2], mask.flip(-1).to(torch.uint8))
    model, _ = load_for_inference(backbone_file)
    with torch.no_grad():
        expected = model.backbone(image.flip(-1)[None])["out"][0]
    torch.testing.assert_close(cache.train.features[n + 2], expected, rtol=1e-5, atol=1e-5)


def test_bad_inputs_name_the_cause(minicity, backbone_file, tmp_path):
    opts = frozen_opts(minicity, backbone_file)
    wrong_hash = load_config("minicity-ablation", opts + ["frozen.sha256=" + "f" * 64])
    with pytest.raises(CheckpointError, match="SHA-256"):
        fit_head(wrong_hash, tmp_path / "a", progress=False)
    missing = load_config("minicity-ablation", opts + [f"frozen.backbone={tmp_path / 'x.pt'}"])
    with pytest.raises(CheckpointError, match="not found"):
        fit_head(missing, tmp_path / "b", progress=False)
    with_aux = load_config("minicity-ablation", opts + ["model.overrides.aux=true"])
    with pytest.raises(ConfigError, match="aux=false"):
        fit_head(with_aux, tmp_path / "c", progress=False)
    other = load_config("minicity-ablation", opts + ["model.overrides.dilated=true"])
    other.frozen.sha256 = ""
    # same weights shapes, so a dilated config would load silently: the key tells them apart
    assert (
        cache_features(other, progress=False).key
        != cache_features(load_config("minicity-ablation", opts), progress=False).key
    )
    with pytest.raises(ConfigError, match="cannot be resumed"):
        train(load_config("minicity-ablation", opts), tmp_path / "d", resume=True)
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_a_diverging_head_is_an_error_and_nothing_is_saved(minicity, backbone_file, tmp_path):
    cfg = load_config(
        "minicity-ablation", frozen_opts(minicity, backbone_file, **{"train.lr": 1e6})
    )
    assert (
        main(
            [
                "train",
                "--config",
                str_config(cfg, tmp_path),
                "--quiet",
                "--run-dir",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "r" / "last.pt").exists()


def str_config(cfg, tmp_path):
    path = tmp_path / "cfg.yaml"
    save_config(cfg, path)
    return str(path)


def test_export_keeps_weights_and_config_only(minicity, backbone_file, tmp_path, capsys):
    cfg = load_config("minicity-ablation", frozen_opts(minicity, backbone_file))
    fit_head(cfg, tmp_path / "run", progress=False)
    target = tmp_path / "model.pt"
    assert (
        main(["export", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--out", str(target)])
        == 0
    )
    assert file_sha256(target) in capsys.readouterr().out
    state = load_checkpoint(target)
    assert set(state) == {"format", "model_name", "config", "iteration", "model"}
    model, _ = load_for_inference(target)
    assert model.head.graph.__class__.__name__ == "DualGCN"  # the preset's paper head
    with pytest.raises(CheckpointError, match="checkpoint itself"):
        export_weights(target, target)


def _train_bn(y, bn):
    mean, var = y.mean((0, 2, 3), keepdim=True), y.var((0, 2, 3), unbiased=False, keepdim=True)
    scale, shift = bn.weight.view(1, -1, 1, 1), bn.bias.view(1, -1, 1, 1)
    return (y - mean) / torch.sqrt(var + bn.eps) * scale + shift


def test_global_pooling_context_is_the_plain_formula():
    torch.manual_seed(0)
    x = torch.randn(3, 8, 5, 7)
    pooled = x.mean((2, 3))  # [B, C]
    official = GlobalPoolingContext(8, "official").train()
    g = torch.relu(pooled @ official.project.weight[:, :, 0, 0].T + official.project.bias)
    cat = torch.cat([x, g[:, :, None, None].expand(-1, -1, 5, 7)], 1)
    y = torch.einsum("oc,bchw->bohw", official.fuse[0].weight[:, :, 0, 0], cat)
    torch.testing.assert_close(official(x), _train_bn(y, official.fuse[1]), rtol=1e-5, atol=1e-5)
    paper = GlobalPoolingContext(8, "paper", zero_init=False).train()
    torch.nn.init.normal_(paper.reproject[1].weight)
    w = paper.reproject[0].weight[:, :, 0, 0] @ paper.project.weight[:, :, 0, 0]  # [C, C]
    term = (pooled @ w.T)[:, :, None, None].expand(-1, -1, 5, 7)
    torch.testing.assert_close(
        paper(x), x + _train_bn(term, paper.reproject[1]), rtol=1e-5, atol=1e-5
    )
    assert torch.equal(GlobalPoolingContext(8, "paper").train()(x), x)  # zero init: identity
    GlobalPoolingContext(8, "paper").train()(x[:1])  # one image: no error


def test_the_baseline_head_is_the_official_head_with_an_identity_graph():
    torch.manual_seed(0)
    model = build_model("dgcnet_official_micro", 19, graphs="none", aux=False).eval()
    head = model.head
    x = torch.randn(1, 128, 6, 9)
    expected = head.classifier(x, head.project(head.reduce(x)))
    torch.testing.assert_close(head(x), expected)
    assert not any("graph" in k for k in model.state_dict())
    paper = build_model("dgcnet_paper_micro", 19, graphs="none", aux=False)
    fcn = build_model("fcn_micro", 19, aux=False)
    assert paper.state_dict().keys() == fcn.state_dict().keys()  # paper head without graph = FCN


@pytest.mark.parametrize("dilated, expected", [(True, 239), (False, 111)])
def test_receptive_field_of_the_micro_backbone(dilated, expected):
    # by hand: 1 + sum over 3x3 convs/pools of 2 * dilation * (input stride):
    # stem conv 2*1, maxpool 2*2, layer1 2*(2*4), layer2 2*4 + 2*8,
    # layer3 and layer4 2*(2*8*d3) and 2*(2*8*d4): d = (2, 4) dilated, (1, 1) not
    d3, d4 = (2, 4) if dilated else (1, 1)
    assert 1 + 2 + 4 + 16 + 8 + 16 + 32 * d3 + 32 * d4 == expected
    torch.manual_seed(0)
    backbone = build_model("dgcnet_official_micro", 19, dilated=dilated).backbone.eval()
    x = torch.randn(1, 3, 256, 512, requires_grad=True)
    backbone(x)["out"][0, :, 16, 32].sum().backward()
    cols = (x.grad[0].abs().sum((0, 1)) > 0).nonzero()[:, 0]
    assert int(cols.max() - cols.min() + 1) == expected
    assert math.isfinite(float(x.grad.sum()))


def test_loss_stride_takes_the_centre_label_of_each_block():
    masks = torch.arange(2 * 8 * 8).view(2, 8, 8)
    assert subsample(masks, 4)[0].tolist() == [[18, 22], [50, 54]]  # rows/cols 2 and 6
    assert torch.equal(subsample(masks, 1), masks)
    with pytest.raises(ConfigError, match="loss_stride"):
        subsample(masks, 0)


@pytest.mark.parametrize("zero_init, scale", [(True, 0.0), (False, 1.0)])
def test_zero_init_option_of_the_paper_graphs(zero_init, scale):
    model = build_model("dgcnet_paper_micro", 19, zero_init=zero_init)
    for branch in (model.head.graph.coordinate, model.head.graph.feature):
        assert torch.all(branch.reproject[1].weight == scale)
