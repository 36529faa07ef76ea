"""The authors' network: parameter count, checkpoint conversion, and the block's equations."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dgcn.errors import CheckpointError
from dgcn.models import DualGCN, build_model, convert_official_state_dict
from dgcn.models.official import OFFICIAL_KEY_MAP, ours_to_official

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


def authors_dualgcn(x, w, training=False):
    """The authors' DualGCN block written from the description, on their own key names
    (BatchNorm on batch statistics when ``training``)."""

    def bn(t, name):
        return F.batch_norm(
            t,
            w[name + ".running_mean"].clone(),
            w[name + ".running_var"].clone(),
            w[name + ".weight"],
            w[name + ".bias"],
            training,
            0.0,
            1e-5,
        )

    def conv(t, name, **kw):
        fn = F.conv1d if w[name + ".weight"].dim() == 3 else F.conv2d
        return fn(t, w[name + ".weight"], w.get(name + ".bias"), **kw)

    n, c, h, wd = x.shape
    # coordinate space: local downsampling, then the spatial GCN on the downsampled map
    v = x
    for i in (0, 2, 4):
        v = bn(conv(v, f"local.{i}", stride=2, padding=1, groups=c), f"local.{i + 1}")
    g = "gcn_local_attention."
    hh, ww = v.shape[-2:]
    k = conv(v, g + "node_k").view(n, c // 2, -1).permute(0, 2, 1)  # N' x C/2
    q = conv(v, g + "node_q").view(n, c // 2, -1)  # C/2 x N'
    val = conv(v, g + "node_v").view(n, c // 2, -1).permute(0, 2, 1)  # N' x C/2
    a = torch.softmax(q @ val, dim=2)  # C/2 x C/2
    m = (k @ a).permute(0, 2, 1)  # C/2 x N'
    m = bn(conv(m, g + "conv_wg"), g + "bn_wg").view(n, c // 2, hh, ww)
    m = torch.relu(bn(conv(m, g + "out.0"), g + "out.1") + v)
    local = F.interpolate(m, size=(h, wd), mode="bilinear", align_corners=True)
    coord = x * local + x
    # feature space
    feats = bn(conv(x, "phi"), "bn_phi").view(n, c // 2, -1)
    b = bn(conv(x, "theta"), "bn_theta").view(n, c // 4, -1)
    z = feats @ b.transpose(1, 2)  # C/2 x C/4
    z = bn(conv(z.transpose(1, 2), "conv_adj"), "bn_adj").transpose(1, 2) + z
    z = bn(conv(z, "conv_wg"), "bn_wg")
    y = (z @ b).view(n, c // 2, h, wd)
    feat = torch.relu(x + bn(conv(y, "conv3"), "bn3"))
    return bn(conv(torch.cat([coord, feat], 1), "final.0"), "final.1")


def authors_block_weights():
    """The authors' block weights (float64, scaled by fan-in) and our block loaded with them."""
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
    converted = convert_official_state_dict({**full, **{prefix + k: v for k, v in authors.items()}})
    ours = {k[len("head.graph.") :]: v for k, v in converted.items() if k.startswith("head.graph.")}
    block = DualGCN(512, "official").double().eval()
    block.load_state_dict(ours, strict=True)
    return authors, block


def test_official_block_matches_the_authors_equations():
    authors, block = authors_block_weights()
    x = torch.randn(1, 512, 21, 19, dtype=torch.float64)
    torch.testing.assert_close(block(x), authors_dualgcn(x, authors), rtol=1e-9, atol=1e-9)


def test_official_block_gradients_match_the_authors_equations():
    """Training mode: our memory-saving rewrites (gate recomputed in backward, reprojection
    reassociated, fuse conv split) give the authors' outputs and gradients."""
    authors, block = authors_block_weights()
    block.train()
    for key, value in authors.items():
        value.requires_grad_(key.endswith(("weight", "bias")))
    x = torch.randn(2, 512, 21, 19, dtype=torch.float64)
    target = torch.randn_like(x)
    x_ours, x_authors = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ours = block(x_ours)
    out_authors = authors_dualgcn(x_authors, authors, training=True)
    torch.testing.assert_close(out_ours, out_authors, rtol=1e-9, atol=1e-9)
    (out_ours * target).sum().backward()
    (out_authors * target).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_authors.grad, rtol=1e-8, atol=1e-8)
    checked = 0
    for name, param in block.named_parameters():
        theirs = authors[ours_to_official("head.graph." + name)[len("head.dualgcn.") :]]
        torch.testing.assert_close(param.grad, theirs.grad, rtol=1e-8, atol=1e-8, msg=name)
        checked += 1
    assert checked == len(list(block.parameters())) > 30
