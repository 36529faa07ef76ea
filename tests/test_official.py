"""The authors' network: parameter count, checkpoint conversion, and the block's equations."""

import math
import sys
from pathlib import Path

import pytest
import torch

from dgcn.errors import CheckpointError
from dgcn.models import DualGCN, build_model, convert_official_state_dict
from dgcn.models.official import OFFICIAL_KEY_MAP, ours_to_official

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from authors_block import AuthorsDualGCN  # noqa: E402  (the replica the benchmark measures)

TSV = Path(__file__).parent / "data" / "official_dgcnet_state_dict.tsv"


def tsv_rows():
    lines = TSV.read_text().splitlines()[1:]
    return [line.split("\t") for line in lines]


def random_official_state_dict(prefix="module."):
    state = {}
    for key, shape, dtype in tsv_rows():
        dims = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
        if dtype == "int64":
            state[prefix + key] = torch.tensor(7, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[prefix + key] = torch.rand(dims) + 0.5
        else:
            state[prefix + key] = torch.randn(dims)
    return state


@pytest.fixture(scope="module")
def official_model():
    return build_model("dgcnet_official_r101")


def test_parameter_count_is_the_authors(official_model):
    assert sum(p.numel() for p in official_model.parameters()) == 72_506_598
    assert sum(p.numel() for p in official_model.head.parameters()) == 25_152_787
    assert sum(p.numel() for p in official_model.aux_head.parameters()) == 4_729_875


def test_tsv_loads_strictly_after_conversion(official_model):
    state = random_official_state_dict()
    converted = convert_official_state_dict(state)
    official_model.load_state_dict(converted, strict=True)
    for key, value in state.items():
        ours = converted[ours_to_official_roundtrip(key)]
        assert ours is value


def ours_to_official_roundtrip(key):
    key = key[len("module.") :]
    ours = next(
        b + key[len(a) :]
        for a, b in sorted(OFFICIAL_KEY_MAP, key=lambda p: -len(p[0]))
        if key.startswith(a)
    )
    assert ours_to_official(ours) == key
    return ours


def test_without_module_prefix_and_wrapped():
    state = random_official_state_dict(prefix="")
    assert len(convert_official_state_dict({"state_dict": state})) == len(state)


def test_wrong_shape_names_the_first_mismatched_key():
    state = random_official_state_dict()
    state["module.head.dualgcn.conv_adj.weight"] = torch.randn(64, 64, 1)
    with pytest.raises(CheckpointError, match=r"head\.dualgcn\.conv_adj\.weight.*\[64, 64, 1\]"):
        convert_official_state_dict(state)


def test_other_classes_fail_against_a_fixed_class_count():
    state = random_official_state_dict()
    with pytest.raises(CheckpointError, match="head.bottleneck.3.weight"):
        convert_official_state_dict(state, num_classes=21)


def test_unknown_and_missing_keys():
    state = random_official_state_dict()
    state["module.fc.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="fc.weight"):
        convert_official_state_dict(state)
    state = random_official_state_dict()
    del state["module.head.dualgcn.final.1.running_var"]
    with pytest.raises(CheckpointError, match="lacks key 'head.dualgcn.final.1.running_var'"):
        convert_official_state_dict(state)


def authors_block_weights():
    """The authors' block (the shared replica) and ours, loaded with the same random weights of
    the authors' checkpoint layout (float64, scaled by fan-in), both strictly."""
    prefix = "module.head.dualgcn."
    full = random_official_state_dict()
    authors = {
        k[len(prefix) :]: v.double() if v.is_floating_point() else v
        for k, v in full.items()
        if k.startswith(prefix)
    }
    for key in authors:  # keep activations in a sane range for a tight comparison
        if key.endswith("weight") and authors[key].dim() > 1:
            fan_in = math.prod(authors[key].shape[1:])
            authors[key] = authors[key] / math.sqrt(fan_in)
    theirs = AuthorsDualGCN(512).double().eval()
    theirs.load_state_dict(authors, strict=True)  # the replica has the checkpoint's keys
    converted = convert_official_state_dict({**full, **{prefix + k: v for k, v in authors.items()}})
    ours = {k[len("head.graph.") :]: v for k, v in converted.items() if k.startswith("head.graph.")}
    block = DualGCN(512, "official").double().eval()
    block.load_state_dict(ours, strict=True)
    return theirs, block


def test_official_block_matches_the_authors_equations():
    theirs, block = authors_block_weights()
    x = torch.randn(1, 512, 21, 19, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(block(x), theirs(x), rtol=1e-9, atol=1e-9)


def test_official_block_gradients_match_the_authors_equations():
    """Training mode: our memory-saving rewrites (gate recomputed in backward, reprojection
    reassociated, fuse conv split) give the authors' outputs and gradients."""
    theirs, block = authors_block_weights()
    block.train()
    theirs.train()
    x = torch.randn(2, 512, 21, 19, dtype=torch.float64)
    target = torch.randn_like(x)
    x_ours, x_authors = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ours = block(x_ours)
    out_authors = theirs(x_authors)
    torch.testing.assert_close(out_ours, out_authors, rtol=1e-9, atol=1e-9)
    (out_ours * target).sum().backward()
    (out_authors * target).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_authors.grad, rtol=1e-8, atol=1e-8)
    authors = dict(theirs.named_parameters())
    checked = 0
    for name, param in block.named_parameters():
        twin = authors.pop(ours_to_official("head.graph." + name)[len("head.dualgcn.") :])
        torch.testing.assert_close(param.grad, twin.grad, rtol=1e-8, atol=1e-8, msg=name)
        checked += 1
    assert checked > 30 and not authors  # every parameter of both blocks, paired one to one
