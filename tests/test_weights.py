"""Weights I/O: pretrained backbone files, legacy parameter names, the committed checkpoints."""

import pytest
import torch
import torchvision

from dgcn.checkpoint import load_checkpoint, load_for_inference, load_model_weights
from dgcn.config import REPO_DIR, config_from_dict, model_overrides
from dgcn.errors import CheckpointError
from dgcn.models import (
    build_model,
    deep_stem_resnet101,
    load_official_checkpoint,
    load_pretrained_backbone,
    upgrade_state_dict,
)
from dgcn.models.official import ours_to_official

PAPER = REPO_DIR / "experiments" / "checkpoints" / "minicity-dgcnet-paper.pt"


def test_upgrade_renames_only_the_paper_heads_old_graph_prefix():
    weights = {
        "backbone.stem.0.weight": torch.zeros(1),
        "head.context.coordinate.query.weight": torch.ones(1),
        "head.classifier.0.weight": torch.full((1,), 2.0),
        "head.contextual.x": torch.full((1,), 3.0),  # not the module's prefix
    }
    upgraded = upgrade_state_dict(weights)
    assert list(upgraded) == [
        "backbone.stem.0.weight",
        "head.graph.coordinate.query.weight",
        "head.classifier.0.weight",
        "head.contextual.x",
    ]
    assert all(a is b for a, b in zip(upgraded.values(), weights.values(), strict=True))
    assert "head.context.coordinate.query.weight" in weights  # the input is left as it was
    assert upgrade_state_dict(upgraded) == upgraded


def test_the_committed_paper_checkpoint_loads_into_the_renamed_head():
    state = load_checkpoint(PAPER)
    legacy = [k for k in state["model"] if k.startswith("head.context.")]
    assert legacy, "the committed file was written with the old name head.context"
    cfg = config_from_dict(state["config"])
    model = build_model(cfg.model.name, cfg.model.num_classes, **model_overrides(cfg, False))
    result = model.load_state_dict(upgrade_state_dict(state["model"]), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    ours = model.state_dict()
    for key in legacy:
        assert torch.equal(ours["head.graph." + key[len("head.context.") :]], state["model"][key])


def test_the_committed_paper_checkpoint_gives_the_same_logits():
    # reference values printed by the code before the head's graph was renamed
    model, _ = load_for_inference(PAPER)
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        logits = model(images)["out"]
    assert model.head.graph.__class__.__name__ == "DualGCN"
    expected = torch.tensor([-0.6155824661254883, -1.2821975946426392, 3.0511562824249268])
    torch.testing.assert_close(logits[0, :3, 10, 20], expected, rtol=0, atol=1e-4)
    assert abs(float(logits.mean()) - 0.1360064297914505) < 1e-4


def test_load_model_weights_accepts_the_old_names():
    model = build_model("dgcnet_paper_micro")
    weights = {
        k.replace("head.graph.", "head.context.", 1): v.clone()
        for k, v in model.state_dict().items()
    }
    fresh = build_model("dgcnet_paper_micro")
    load_model_weights(fresh, {"model": weights}, "old.pt")
    assert torch.equal(
        fresh.head.graph.feature.adjacency.weight, model.head.graph.feature.adjacency.weight
    )


def test_a_torchvision_state_dict_file_loads_into_the_backbone(tmp_path):
    reference = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": reference.state_dict()}, path)
    model = build_model("fcn_r18", pretrained=str(path))
    assert torch.equal(model.backbone.stem[0].weight, reference.conv1.weight)
    assert torch.equal(model.backbone.stem[1].running_var, reference.bn1.running_var)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert model.backbone.layer4[1].conv2.dilation == (4, 4)  # dilated after all


def test_a_missing_pretrained_file_names_it(tmp_path):
    with pytest.raises(CheckpointError, match="pretrained weights .*nope.pth not found"):
        build_model("fcn_r18", pretrained=str(tmp_path / "nope.pth"))


def test_a_missing_official_checkpoint_points_to_the_readme(tmp_path):
    with pytest.raises(CheckpointError, match="not found; download the authors' Cityscapes"):
        load_official_checkpoint(str(tmp_path / "nope.pth"))


@pytest.mark.slow
def test_the_authors_deep_stem_weights_load_by_their_names(tmp_path):
    source = deep_stem_resnet101()
    authors = {ours_to_official("backbone." + k): v for k, v in source.state_dict().items()}
    authors["fc.weight"] = torch.zeros(1000, 2048)  # the ImageNet classifier is dropped
    path = tmp_path / "deepstem.pth"
    torch.save({f"module.{k}": v for k, v in authors.items()}, path)
    target = load_pretrained_backbone(deep_stem_resnet101(), "deepstem_resnet101", str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
