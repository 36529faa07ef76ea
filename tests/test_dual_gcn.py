"""DualGCN: shapes, gradients, determinism, the paper's sum, autocast, the split conv."""

import copy

import pytest
import torch
from torch import nn

from dgcn.models import DualGCN, DualGCNHead
from dgcn.models.common import ConcatConv

CASES = [(v, g) for v in ("paper", "official") for g in ("both", "coordinate", "feature")]


@pytest.mark.parametrize("variant,graphs", CASES)
def test_shape_kept_for_odd_sizes(variant, graphs):
    module = DualGCN(16, variant, graphs)
    x = torch.randn(2, 16, 19, 23)
    assert module(x).shape == x.shape


@pytest.mark.parametrize("variant,graphs", CASES)
def test_every_parameter_gets_a_finite_gradient(variant, graphs):
    module = DualGCN(16, variant, graphs, pooling="conv")
    for p in module.parameters():  # leave zero init aside: every path must carry gradient
        if p.dim() > 1:
            torch.nn.init.normal_(p, std=0.2)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            torch.nn.init.ones_(m.weight)
    module(torch.randn(2, 16, 17, 15)).square().mean().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_eval_mode_uses_the_running_statistics(variant):
    """In eval mode an image's output does not depend on the rest of the batch (BatchNorm uses
    its running statistics) and repeats exactly; in training mode it does depend on it."""
    module = DualGCN(16, variant)
    for m in module.modules():  # leave zero init aside: every branch must reach the output
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            torch.nn.init.ones_(m.weight)
    module.train()
    module(torch.randn(2, 16, 12, 12))  # move BN running statistics away from their init
    x = torch.randn(2, 16, 13, 11)
    assert not torch.allclose(module(x[:1]), module(x)[:1], atol=1e-4)
    module.eval()
    out = module(x)
    assert torch.equal(out, module(x))
    torch.testing.assert_close(module(x[:1]), out[:1], rtol=1e-5, atol=1e-5)


def test_paper_variant_is_the_sum_of_terms():
    module = DualGCN(16, "paper", "both").double()
    torch.nn.init.normal_(module.coordinate.reproject[1].weight)
    torch.nn.init.normal_(module.feature.reproject[1].weight)
    x = torch.randn(1, 16, 10, 12, dtype=torch.float64)
    expected = x + module.coordinate(x) + module.feature(x)
    torch.testing.assert_close(module(x), expected)
    assert module.fuse is None


def test_head_under_autocast_bfloat16():
    head = DualGCNHead(32, 16, 5).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(torch.randn(1, 32, 13, 17))
    assert logits.shape == (1, 5, 13, 17)
    assert torch.isfinite(logits.float()).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        DualGCN(16, "authors")
    with pytest.raises(ValueError, match="graphs"):
        DualGCN(16, "paper", "spatial")


def test_concat_conv_equals_the_conv_on_the_concatenation():
    conv = nn.Conv2d(7, 5, 3, padding=2, dilation=2, bias=True).double()
    layers = [conv, nn.BatchNorm2d(5).double(), nn.ReLU()]
    split = ConcatConv(*layers)
    plain = nn.Sequential(*copy.deepcopy(layers))
    parts = [torch.randn(2, c, 9, 11, dtype=torch.float64, requires_grad=True) for c in (3, 1, 3)]
    out_split = split(*parts)
    out_plain = plain(torch.cat(parts, dim=1))
    torch.testing.assert_close(out_split, out_plain)
    grads_split = torch.autograd.grad(out_split.sum(), [*parts, conv.weight, conv.bias])
    grads_plain = torch.autograd.grad(out_plain.sum(), [*parts, plain[0].weight, plain[0].bias])
    for got, want in zip(grads_split, grads_plain, strict=True):
        torch.testing.assert_close(got, want)
    assert list(split.state_dict()) == list(plain.state_dict())  # same checkpoint keys
    with pytest.raises(ValueError, match="groups=1"):
        ConcatConv(nn.Conv2d(4, 4, 3, groups=2))
