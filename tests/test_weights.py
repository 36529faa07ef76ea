"""Weights I/O: pretrained backbone files (both deep-stem layouts, the first-use download),
legacy parameter names, the committed checkpoints."""

import hashlib
import io
import os
import socket
import types
import urllib.error

import pytest
import torch
import torchvision
from helpers import randomize_bn, tiny_opts

import dgcn.models.weight_files
import dgcn.models.weights
from dgcn.checkpoint import load_checkpoint, load_for_inference, load_model_weights
from dgcn.cli import main
from dgcn.config import REPO_DIR, config_from_dict, model_overrides
from dgcn.errors import CheckpointError
from dgcn.models import (
    DEEP_STEM_IMAGENET_URL,
    build_model,
    deep_stem_resnet101,
    fetch_deep_stem_imagenet,
    load_official_checkpoint,
    load_pretrained_backbone,
    upgrade_state_dict,
)
from dgcn.models.official import ours_to_official
from dgcn.models.weight_files import download_file, load_imagenet_state_dict

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


def _legacy_copy(tmp_path):
    """The committed paper checkpoint as a file of the first edition writes it: the head's
    graph under its old name ``head.context``."""
    state = load_checkpoint(PAPER)
    state["model"] = {
        ("head.context." + k[len("head.graph.") :] if k.startswith("head.graph.") else k): v
        for k, v in state["model"].items()
    }
    path = tmp_path / "legacy.pt"
    torch.save(state, path)
    return path, state


def test_a_checkpoint_with_the_old_graph_name_loads_into_the_renamed_head(tmp_path):
    path, state = _legacy_copy(tmp_path)
    legacy = [k for k in state["model"] if k.startswith("head.context.")]
    assert legacy
    cfg = config_from_dict(state["config"])
    model = build_model(cfg.model.name, cfg.num_classes, **model_overrides(cfg, False))
    result = model.load_state_dict(upgrade_state_dict(state["model"]), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    ours = model.state_dict()
    for key in legacy:
        assert torch.equal(ours["head.graph." + key[len("head.context.") :]], state["model"][key])
    # and through the loader every command uses: the same logits as the committed file
    torch.manual_seed(0)
    images = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        old = load_for_inference(path)[0](images)["out"]
        new = load_for_inference(PAPER)[0](images)["out"]
    assert torch.equal(old, new)


def test_the_committed_paper_checkpoint_gives_the_same_logits():
    # reference values of the committed MiniCity v2 file (minicity-dgcnet-paper.pt, sha256
    # ce243e1e...), printed when it was made: a change to the model code that alters what the
    # committed models compute fails here
    model, _ = load_for_inference(PAPER)
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        logits = model(images)["out"]
    assert model.head.graph.__class__.__name__ == "DualGCN"
    expected = torch.tensor([-0.9628767967224121, -1.5439293384552002, 4.418816566467285])
    torch.testing.assert_close(logits[0, :3, 10, 20], expected, rtol=0, atol=1e-4)
    assert abs(float(logits.mean()) - 0.08789099752902985) < 1e-4


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


# --- deep-stem ImageNet weights: both layouts, the MIT CSAIL download, one-line errors ---------

# our stem index -> the module that holds the same tensor in each layout, written out by hand
# from the two networks (not from the converter's tables): the authors' stem is one Sequential
# conv1 = (conv, BN, ReLU, conv, BN, ReLU, conv) followed by bn1; MIT CSAIL's has three flat
# conv/BN pairs. Our stem is (conv, BN, ReLU) x 3 + max-pool.
AUTHORS_STEM = {"0": "conv1.0", "1": "conv1.1", "3": "conv1.3", "4": "conv1.4", "6": "conv1.6"}
AUTHORS_STEM["7"] = "bn1"
MIT_STEM = {"0": "conv1", "1": "bn1", "3": "conv2", "4": "bn2", "6": "conv3", "7": "bn3"}


def file_key(key: str, layout: str) -> str:
    """Our backbone key as a file of ``layout`` names it."""
    first, index, rest = key.split(".", 2)
    if first != "stem":
        return key  # layer1 ... layer4 are named alike in all three
    return f"{(AUTHORS_STEM if layout == 'authors' else MIT_STEM)[index]}.{rest}"


def layout_state(source, layout: str, batches_tracked: bool) -> dict:
    weights = {file_key(k, layout): v.clone() for k, v in source.state_dict().items()}
    if not batches_tracked:
        weights = {k: v for k, v in weights.items() if not k.endswith("num_batches_tracked")}
    weights["fc.weight"] = torch.randn(1000, 2048)  # the ImageNet classifier, dropped
    weights["fc.bias"] = torch.randn(1000)
    return weights


@pytest.fixture(scope="module")
def deep_stem_source():
    torch.manual_seed(1)
    source = deep_stem_resnet101()
    for module in source.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            randomize_bn(module)
            module.num_batches_tracked.fill_(7)
    return source.eval()


def fake_urlopen(payload: bytes, fail_after: int | None = None, length: int | None = None):
    """A stand-in for ``urllib.request.urlopen`` serving ``payload`` in blocks; ``fail_after``:
    the connection breaks after that many bytes; ``length``: the Content-Length it announces."""
    calls = []

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload) if length is None else length)}

        def read(self, size=-1):
            if fail_after is not None and self.tell() >= fail_after:
                raise ConnectionResetError("connection reset by peer")
            return super().read(min(size, 1000) if size > 0 else size)

    def urlopen(url, timeout=None):
        calls.append(url)
        return Response(payload)

    urlopen.calls = calls
    return urlopen


def offline(url, timeout=None):
    raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "layout, batches_tracked, downloaded",
    [
        ("authors", True, False),
        ("authors", False, False),
        ("mit", True, False),
        ("mit", False, True),
    ],
)
def test_deep_stem_files_of_both_layouts_give_identical_outputs(
    deep_stem_source, tmp_path, monkeypatch, capsys, layout, batches_tracked, downloaded
):
    """The authors' and MIT CSAIL's files, with or without num_batches_tracked, fc ignored: the
    backbone loaded from them computes exactly what the network they were written from does.
    The last case arrives through the (faked) first-use download."""
    weights = layout_state(deep_stem_source, layout, batches_tracked)
    if layout == "mit":
        assert {"conv2.weight", "bn3.running_var"} <= set(weights)
    path = tmp_path / "pretrained" / "resnet101-imagenet.pth"
    if downloaded:
        buffer = io.BytesIO()
        torch.save(weights, buffer)
        fake = fake_urlopen(buffer.getvalue())
        monkeypatch.setattr(dgcn.models.weight_files, "urlopen", fake)
    else:
        path.parent.mkdir()
        torch.save(weights, path)
    target = load_pretrained_backbone(deep_stem_resnet101(), "deepstem_resnet101", str(path))
    if downloaded:
        assert fake.calls == [DEEP_STEM_IMAGENET_URL] and path.is_file()
        assert "sha256" in capsys.readouterr().err
    images = torch.randn(2, 3, 41, 37)
    with torch.no_grad():
        expected, got = deep_stem_source(images), target.eval()(images)
    for name in ("aux", "out"):
        assert torch.equal(got[name], expected[name]), name
    for key, value in deep_stem_source.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert int(target.state_dict()[key]) == (7 if batches_tracked else 0), key
        else:
            assert torch.equal(target.state_dict()[key], value), key
    path.unlink()


@pytest.fixture
def meta_deep_stem():
    """The deep-stem backbone on the meta device: names and shapes, no memory (for the checks
    that stop before anything is loaded)."""
    with torch.device("meta"):
        return deep_stem_resnet101()


def mit_stem_only() -> dict:
    """The stem of a MIT-layout file with the right shapes (and nothing else)."""
    state = {}
    for name, channels, inputs in (("1", 64, 3), ("2", 64, 64), ("3", 128, 64)):
        state[f"conv{name}.weight"] = torch.zeros(channels, inputs, 3, 3)
        for buffer in ("weight", "bias", "running_mean", "running_var"):
            state[f"bn{name}.{buffer}"] = torch.ones(channels)
    return state


BAD_DEEP_STEM_FILES = [
    (
        "wrong_shape",
        lambda: {**mit_stem_only(), "conv2.weight": torch.zeros(64, 32, 3, 3)},
        "key 'conv2.weight' has shape [64, 32, 3, 3], the backbone needs [64, 64, 3, 3] "
        "(our 'stem.3.weight')",
    ),
    (
        "stem_only",
        mit_stem_only,
        "key 'layer1.0.conv1.weight' is missing and ",
    ),
    (
        "torchvision",
        lambda: torchvision.models.resnet18().state_dict(),
        "plain stem (one conv1, no conv2/conv3: torchvision's ResNet layout)",
    ),
    (
        "unknown_key",
        lambda: {"conv1.0.weight": torch.zeros(64, 3, 3, 3), "head.conv.weight": torch.zeros(1)},
        "key 'head.conv.weight' is not part of a deep-stem ResNet-101 (authors layout)",
    ),
    ("no_stem", lambda: {"layer1.0.conv1.weight": torch.zeros(1)}, "neither conv1.0.weight"),
    ("not_a_dict", lambda: torch.zeros(3), "it holds a Tensor, not a state dict"),
    (
        "not_a_tensor",
        lambda: {**mit_stem_only(), "bn2.bias": [0.0] * 64},
        "key 'bn2.bias' holds a list, not a tensor",
    ),
]


@pytest.mark.parametrize(
    "case, make, match", BAD_DEEP_STEM_FILES, ids=[c[0] for c in BAD_DEEP_STEM_FILES]
)
def test_a_file_that_does_not_fit_the_deep_stem_is_named_in_one_line(
    tmp_path, meta_deep_stem, case, make, match
):
    path = tmp_path / "weights.pth"
    torch.save(make(), path)
    with pytest.raises(CheckpointError) as err:
        load_pretrained_backbone(meta_deep_stem, "deepstem_resnet101", str(path))
    message = str(err.value)
    assert message.startswith(f"pretrained weights {path} do not fit the deep-stem ResNet-101: ")
    assert match in message and "\n" not in message, message
    assert DEEP_STEM_IMAGENET_URL in message


def test_a_file_that_does_not_fit_a_torchvision_backbone_is_named_in_one_line(tmp_path):
    path = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    with torch.device("meta"), pytest.raises(CheckpointError) as err:
        build_model("fcn_r18", pretrained=str(path))
    message = str(err.value)
    assert message.startswith(f"pretrained weights {path} do not fit torchvision's ResNet-18: ")
    assert "key 'layer1.0.conv1.weight' has shape [64, 64, 1, 1], the backbone needs" in message
    assert "\n" not in message


def test_a_missing_deep_stem_file_of_another_name_is_not_downloaded(
    tmp_path, meta_deep_stem, monkeypatch
):
    fake = fake_urlopen(b"never")
    monkeypatch.setattr(dgcn.models.weight_files, "urlopen", fake)
    path = tmp_path / "my-weights.pth"
    with pytest.raises(CheckpointError, match="my-weights.pth not found; check the path"):
        load_pretrained_backbone(meta_deep_stem, "deepstem_resnet101", str(path))
    assert fake.calls == [] and list(tmp_path.iterdir()) == []


def test_offline_the_deep_stem_download_names_the_file_the_address_and_the_place(
    tmp_path, meta_deep_stem, monkeypatch
):
    monkeypatch.setattr(dgcn.models.weight_files, "urlopen", offline)
    path = tmp_path / "data" / "pretrained" / "resnet101-imagenet.pth"
    with pytest.raises(CheckpointError) as err:
        load_pretrained_backbone(meta_deep_stem, "deepstem_resnet101", str(path))
    message = str(err.value)
    assert message.startswith(f"deep-stem ImageNet weights {path} are absent and could not be")
    assert DEEP_STEM_IMAGENET_URL in message and f"place it at {path}" in message
    assert "Temporary failure in name resolution" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # the folders it made for the file are gone again


def test_a_download_writes_the_file_only_when_complete(tmp_path, monkeypatch):
    payload = bytes(range(256)) * 50
    target = tmp_path / "sub" / "file.bin"
    seen = []
    fake = fake_urlopen(payload)

    def watching(url, timeout=None):
        response = fake(url, timeout)
        read = response.read

        def read_and_look(size=-1):
            seen.append((target.exists(), [p.name for p in target.parent.iterdir()]))
            return read(size)

        response.read = read_and_look
        return response

    monkeypatch.setattr(dgcn.models.weight_files, "urlopen", watching)
    checked = []
    sha256 = download_file("http://example.invalid/file.bin", target, checked.append, False)
    assert target.read_bytes() == payload
    assert sha256 == hashlib.sha256(payload).hexdigest()
    assert len(seen) > 2 and not any(exists for exists, _ in seen)  # absent until complete
    assert all(names == [f".file.bin.{os.getpid()}.tmp"] for _, names in seen[1:])
    assert len(checked) == 1 and checked[0] != target  # the check saw the temporary file
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


@pytest.mark.parametrize("failure", ["reset", "short", "refused"])
def test_a_failed_download_leaves_no_partial_file(tmp_path, monkeypatch, failure):
    payload = b"x" * 5000
    existing = tmp_path / "file.bin"
    existing.write_bytes(b"the file that was there")
    fake = {
        "reset": fake_urlopen(payload, fail_after=2000),
        "short": fake_urlopen(payload, length=9000),
        "refused": fake_urlopen(payload),
    }[failure]
    monkeypatch.setattr(dgcn.models.weight_files, "urlopen", fake)

    def refuse(tmp):
        raise CheckpointError("not what was expected")

    expected = {"reset": ConnectionResetError, "short": OSError, "refused": CheckpointError}
    with pytest.raises(expected[failure], match="reset|5000 of 9000 bytes|not what"):
        download_file("http://example.invalid/f", existing, refuse, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]
    assert existing.read_bytes() == b"the file that was there"
    new = tmp_path / "new" / "file.bin"
    with pytest.raises(expected[failure]):
        download_file("http://example.invalid/f", new, refuse, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_a_downloaded_file_that_is_refused_is_not_kept(tmp_path, meta_deep_stem, monkeypatch):
    buffer = io.BytesIO()
    torch.save(torchvision.models.resnet18().state_dict(), buffer)  # a plain stem
    monkeypatch.setattr(dgcn.models.weight_files, "urlopen", fake_urlopen(buffer.getvalue()))
    path = tmp_path / "resnet101-imagenet.pth"
    with pytest.raises(CheckpointError) as err:
        load_pretrained_backbone(meta_deep_stem, "deepstem_resnet101", str(path))
    message = str(err.value)
    assert message.startswith(f"the file downloaded from {DEEP_STEM_IMAGENET_URL} was refused")
    assert "plain stem" in message and f"nothing was written to {path}" in message
    assert list(tmp_path.iterdir()) == []


def test_the_download_prints_the_sha256_it_computed(tmp_path, monkeypatch, capsys):
    buffer = io.BytesIO()
    torch.save(mit_stem_only(), buffer)
    monkeypatch.setattr(dgcn.models.weight_files, "urlopen", fake_urlopen(buffer.getvalue()))
    path = tmp_path / "resnet101-imagenet.pth"
    state = fetch_deep_stem_imagenet(path, progress=False)
    assert torch.equal(state["conv3.weight"], mit_stem_only()["conv3.weight"])
    err = capsys.readouterr().err.strip()
    sha256 = hashlib.sha256(buffer.getvalue()).hexdigest()
    mib = len(buffer.getvalue()) / 2**20
    assert err == (
        f"dgcn: downloaded {DEEP_STEM_IMAGENET_URL} to {path} ({mib:.1f} MiB, sha256 {sha256}; "
        "no checksum is published for this file)"
    )


# --- the presets' backbone weights, through the command line ----------------------------------


def preset_argv(preset: str, run, minicity, **extra) -> list[str]:
    """``dgcn train`` of a Cityscapes preset on the tiny MiniCity, on a CPU, one iteration."""
    opts = tiny_opts(
        minicity,
        **{
            "data.dataset": "minicity",
            "data.workers": 0,
            "train.iterations": 1,
            "train.precision": "fp32",  # the T4 presets' fp16 needs CUDA
            "eval.mode": "whole",
            **extra,
        },
    )
    return ["train", "--config", preset, "--quiet", "--run-dir", str(run), "--opt", *opts]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("dgcn: error: "), err
    return err


@pytest.mark.slow
def test_the_colab_preset_starts_with_torchvision_weights_where_torchvision_looks(
    minicity, tmp_path, monkeypatch
):
    """``cityscapes-colab`` trains from torchvision's file in $TORCH_HOME/hub/checkpoints as
    torchvision stores it (no conversion by hand); nothing is downloaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def no_download(*args, **kwargs):
        raise AssertionError("the file is in place: nothing may be downloaded")

    monkeypatch.setattr(dgcn.models.weight_files, "urlopen", no_download)
    url = torchvision.models.ResNet101_Weights.IMAGENET1K_V1.url
    place = tmp_path / "torch-home" / "hub" / "checkpoints" / os.path.basename(url)
    place.parent.mkdir(parents=True)
    torch.manual_seed(3)
    reference = torchvision.models.resnet101().state_dict()  # random, in torchvision's names
    torch.save(reference, place)
    run = tmp_path / "run"
    assert main(preset_argv("cityscapes-colab", run, minicity)) == 0
    trained = load_checkpoint(run / "last.pt")
    assert trained["config"]["model"] == {
        "name": "dgcnet_official_tv_r101",
        "num_classes": None,  # Cityscapes' 19, from the dataset
        "overrides": {"pretrained": "imagenet"},
    }
    weights = trained["model"]
    for ours, theirs in (
        ("backbone.layer3.22.conv2.weight", "layer3.22.conv2.weight"),
        ("backbone.layer4.2.conv3.weight", "layer4.2.conv3.weight"),
    ):
        # one SGD step from the file's weights (deep layers move little; a random network's
        # first conv moves a lot): close to them, where another draw would be ~1.4 away
        change = (weights[ours] - reference[theirs]).norm() / reference[theirs].norm()
        assert change < 0.01, (ours, float(change))


def test_offline_the_official_preset_stops_with_one_line_naming_the_download(
    minicity, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(dgcn.models.weight_files, "urlopen", offline)
    weights = tmp_path / "data" / "pretrained" / "resnet101-imagenet.pth"
    argv = preset_argv(
        "cityscapes-official", tmp_path / "run", minicity, **{"model.overrides.pretrained": weights}
    )
    assert main(argv) == 2
    err = one_error_line(capsys)
    assert f"deep-stem ImageNet weights {weights} are absent" in err
    assert DEEP_STEM_IMAGENET_URL in err and f"place it at {weights}" in err
    assert not (tmp_path / "data").exists()


def test_a_mismatching_deep_stem_file_stops_the_official_preset_with_one_line(
    minicity, tmp_path, capsys
):
    weights = tmp_path / "resnet101-imagenet.pth"
    torch.save({**mit_stem_only(), "conv2.weight": torch.zeros(64, 32, 3, 3)}, weights)
    before = weights.read_bytes()
    argv = preset_argv(
        "cityscapes-official", tmp_path / "run", minicity, **{"model.overrides.pretrained": weights}
    )
    assert main(argv) == 2
    err = one_error_line(capsys)
    assert f"pretrained weights {weights} do not fit the deep-stem ResNet-101: key " in err
    assert "'conv2.weight' has shape [64, 32, 3, 3]" in err
    assert weights.read_bytes() == before


def test_torchvision_weights_come_through_the_one_download_path_and_its_checksum(
    tmp_path, monkeypatch
):
    # the ImageNet file goes through download_file too: the sha256 prefix in its name is checked
    buffer = io.BytesIO()
    state = {"w": torch.arange(4.0)}
    torch.save(state, buffer)
    payload = buffer.getvalue()
    good = hashlib.sha256(payload).hexdigest()[:8]
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    fake = fake_urlopen(payload)
    monkeypatch.setattr(dgcn.models.weight_files, "urlopen", fake)
    bad = types.SimpleNamespace(url="https://example.org/resnet18-00000000.pth")
    with pytest.raises(CheckpointError) as err:
        load_imagenet_state_dict(bad)
    assert "is not 00000000" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "hub").exists()  # nothing kept, not even the folders it made
    right = types.SimpleNamespace(url=f"https://example.org/resnet18-{good}.pth")
    assert torch.equal(load_imagenet_state_dict(right)["w"], state["w"])
    assert fake.calls == [bad.url, right.url]
    assert (tmp_path / "hub" / "checkpoints" / f"resnet18-{good}.pth").read_bytes() == payload
