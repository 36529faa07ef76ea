"""Backbones, presets, whole networks, FLOP counting and pretrained weights."""

import json
import os
import subprocess
import sys
import urllib.error

import pytest
import torch
import torchvision

import dgcn.models.weight_files
from dgcn.cli import main
from dgcn.errors import CheckpointError, ConfigError
from dgcn.models import PRESETS, build_model, deep_stem_resnet101, torchvision_resnet
from dgcn.models.profile import block_table


@pytest.mark.parametrize(
    "size,expected", [((832, 832), (105, 105)), ((769, 769), (97, 97)), ((1024, 2048), (129, 257))]
)
def test_deep_stem_output_stride_8(size, expected):
    with torch.device("meta"):
        backbone = deep_stem_resnet101()
        out = backbone(torch.empty(1, 3, *size))
    assert out["out"].shape == (1, 2048, *expected)
    assert out["aux"].shape == (1, 1024, *expected)
    layer4 = backbone.layer4
    assert [blk.conv2.dilation[0] for blk in layer4] == [4, 8, 16]
    assert all(blk.conv2.dilation[0] == 2 for blk in backbone.layer3)
    assert backbone.stem[-1].ceil_mode


@pytest.mark.parametrize("depth,channels", [(18, 512), (50, 2048), (101, 2048)])
@pytest.mark.parametrize("stride", [8, 16])
def test_torchvision_backbones_are_dilated(depth, channels, stride):
    with torch.device("meta"):
        out = torchvision_resnet(depth, stride)(torch.empty(2, 3, 128, 96))
    assert out["out"].shape == (2, channels, 128 // stride, 96 // stride)


def test_every_preset_builds_and_forwards_on_meta():
    for name in PRESETS:
        with torch.device("meta"):
            model = build_model(name, num_classes=7).train()
            out = model(torch.empty(1, 3, 64, 80))
        assert out["out"].shape == out["aux"].shape == (1, 7, 64, 80), name


def test_dgcnet_forward_train_and_eval():
    model = build_model("dgcnet_paper_r18", num_classes=5)
    images = torch.randn(2, 3, 67, 91)
    out = model.train()(images)
    assert set(out) == {"out", "aux"} and out["out"].shape == (2, 5, 67, 91)
    out = model.eval()(images)
    assert set(out) == {"out"}


def test_graph_ablation_overrides():
    fcn = build_model("fcn_r18")
    coordinate = build_model("dgcnet_paper_r18", graphs="coordinate")
    assert fcn.head.graph is None
    assert coordinate.head.graph.feature is None and coordinate.head.graph.coordinate


def test_whole_model_under_autocast():
    model = build_model("dgcnet_official_r18", num_classes=4).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.randn(1, 3, 64, 64))["out"]
    assert torch.isfinite(logits.float()).all()


def test_unknown_names_suggest_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'dgcnet_official_r101'"):
        build_model("dgcnet_oficial_r101")
    with pytest.raises(ConfigError, match="did you mean 'graphs'"):
        build_model("fcn_r18", graph="both")


def test_flops_on_meta_match_hand_count():
    rows = {
        r["block"]: r
        for r in block_table(lambda: build_model("dgcnet_official_r101"), (1, 3, 1024, 2048))
    }
    # head.reduce: one 3x3 conv 2048 -> 512 on the 129 x 257 stride-8 map, 2 FLOPs per MAC
    assert rows["head.reduce"]["gflops"] * 1e9 == pytest.approx(2 * 2048 * 512 * 9 * 129 * 257)
    assert rows["total"]["params"] == 72_506_598
    assert (
        rows["total"]["gflops"]
        > sum(r["gflops"] for k, r in rows.items() if k.count(".") == 1 and k != "total") * 0.99
    )


@pytest.mark.slow
def test_flop_count_allocates_no_memory():
    code = (
        "import resource, json; from dgcn.models import build_model\n"
        "from dgcn.models.profile import block_table\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "rows = block_table(lambda: build_model('dgcnet_official_r101'), (1, 3, 1024, 2048))\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps([rows[-1]['gflops'], after - before]))"
    )
    gflops, grown_kb = json.loads(subprocess.check_output([sys.executable, "-c", code]))
    assert gflops > 1000
    # the weights alone are 290 MB and a real forward at this size needs > 10 GB
    assert grown_kb < 150_000


def test_imagenet_offline_fails_at_once_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(dgcn.models.weight_files, "urlopen", offline)
    with pytest.raises(CheckpointError) as err:
        build_model("fcn_r18", pretrained="imagenet")
    name = os.path.basename(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url)
    assert name in str(err.value)
    assert str(tmp_path / "hub" / "checkpoints" / name) in str(err.value)


def test_imagenet_weights_load_from_the_torch_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = torchvision.models.resnet18()
    name = os.path.basename(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), tmp_path / "hub" / "checkpoints" / name)
    model = build_model("fcn_r18", pretrained="imagenet")
    assert torch.equal(model.backbone.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)


def test_cli_error_is_one_line_with_status_2(capsys):
    assert main(["summary", "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dgcn: error: unknown model 'nope'") and err.count("\n") == 1


def test_cli_summary_prints_blocks(capsys):
    assert main(["summary", "--model", "fcn_r18", "--size", "64", "64"]) == 0
    out = capsys.readouterr().out
    assert "backbone.layer4" in out and "total" in out and "logits [1, 19, 64, 64]" in out
