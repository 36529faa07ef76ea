"""The other context modules (pyramid pooling, non-local): each against the formula written
out with its own weights, zero init, gradients, parameter counts, and whole micro models."""

import math

import pytest
import torch
from helpers import randomize_bn

from dgcn.errors import ConfigError
from dgcn.models import build_model, model_spec
from dgcn.models.context import NonLocalContext, PyramidPoolingContext
from dgcn.models.dual_gcn import CONTEXTS, context_module

VARIANTS = ("paper", "official")
MODULES = {"ppm": PyramidPoolingContext, "non-local": NonLocalContext}


def _random(module):
    """Random weights everywhere (zero init left aside) and random BN statistics, double."""
    torch.manual_seed(3)
    module = module.double()
    for name, p in module.named_parameters():
        if p.dim() > 1 or name.endswith("bias"):
            torch.nn.init.normal_(p, std=0.3)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            randomize_bn(m)
    return module.eval()


def _bn(y, bn):
    """Eval-mode BatchNorm on [B, C, H, W], written out."""
    mean, var = bn.running_mean.view(1, -1, 1, 1), bn.running_var.view(1, -1, 1, 1)
    scale, shift = bn.weight.view(1, -1, 1, 1), bn.bias.view(1, -1, 1, 1)
    return (y - mean) / torch.sqrt(var + bn.eps) * scale + shift


def _conv1x1(weight, y, bias=None):
    out = torch.einsum("oc,bchw->bohw", weight[:, :, 0, 0], y)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def _average_pool(x, bins):
    """Adaptive average pooling by its definition: cell i covers [floor(i H / b), ceil((i+1) H
    / b)), a loop over the cells."""
    b, c, h, w = x.shape
    out = torch.empty(b, c, bins, bins, dtype=x.dtype)
    for i in range(bins):
        r0, r1 = (i * h) // bins, math.ceil((i + 1) * h / bins)
        for j in range(bins):
            c0, c1 = (j * w) // bins, math.ceil((j + 1) * w / bins)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean((2, 3))
    return out


def _bilinear_matrix(size_in, size_out):
    """[size_out, size_in]: bilinear weights with align_corners=False (pixel centres at
    i + 0.5, a source coordinate below 0 clamped to 0, the last pixel repeated)."""
    m = torch.zeros(size_out, size_in, dtype=torch.float64)
    for o in range(size_out):
        src = max((o + 0.5) * size_in / size_out - 0.5, 0.0)
        i0 = min(int(math.floor(src)), size_in - 1)
        i1 = min(i0 + 1, size_in - 1)
        frac = src - i0
        m[o, i0] += 1 - frac
        m[o, i1] += frac
    return m


def _pyramid(module, x):
    h, w = x.shape[-2:]
    maps = []
    for bins, (conv, bn, _) in zip((1, 2, 3, 6), module.stages, strict=True):
        y = torch.relu(_bn(_conv1x1(conv.weight, _average_pool(x, bins)), bn))
        rows, cols = _bilinear_matrix(bins, h), _bilinear_matrix(bins, w)
        maps.append(torch.einsum("hi,bcij,wj->bchw", rows, y, cols))
    return torch.cat(maps, 1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pyramid_pooling_is_the_plain_formula(variant):
    module = _random(PyramidPoolingContext(16, variant, zero_init=False))
    x = torch.randn(2, 16, 13, 10, dtype=torch.float64)
    pyramid = _pyramid(module, x)
    if variant == "paper":
        conv, bn = module.reproject
        expected = x + _bn(_conv1x1(conv.weight, pyramid), bn)
    else:
        conv, bn = module.fuse
        expected = _bn(_conv1x1(conv.weight, torch.cat([x, pyramid], 1)), bn)
    torch.testing.assert_close(module(x), expected)


@pytest.mark.parametrize("variant", VARIANTS)
def test_non_local_is_the_plain_formula(variant):
    module = _random(NonLocalContext(8, variant, zero_init=False))
    x = torch.randn(2, 8, 5, 7, dtype=torch.float64)
    b, c, h, w = x.shape
    pixels = x.flatten(2)  # [B, C, N]

    def embed(conv):
        return torch.einsum("oc,bcn->bon", conv.weight[:, :, 0, 0], pixels) + conv.bias[:, None]

    theta, phi, g = embed(module.theta), embed(module.phi), embed(module.g)
    logits = torch.einsum("bci,bcj->bij", theta, phi)  # [B, N, N]: pixel i against pixel j
    weights = torch.exp(logits - logits.amax(-1, keepdim=True))
    weights = weights / weights.sum(-1, keepdim=True)
    y = torch.einsum("bij,bcj->bci", weights, g).reshape(b, c // 2, h, w)
    if variant == "paper":
        conv, bn = module.out
        expected = x + _bn(_conv1x1(conv.weight, y), bn)
    else:
        conv, bn = module.fuse
        expected = _bn(_conv1x1(conv.weight, torch.cat([x, y], 1)), bn)
    torch.testing.assert_close(module.affinity(x), weights)
    torch.testing.assert_close(module(x), expected)


@pytest.mark.parametrize("context", MODULES)
def test_zero_init_paper_form_is_the_identity(context):
    torch.manual_seed(0)
    module = MODULES[context](16, "paper")
    x = torch.randn(2, 16, 9, 11)
    assert torch.equal(module.eval()(x), x)
    assert torch.equal(module.train()(x), x)
    official = MODULES[context](16, "official").eval()
    assert not torch.allclose(official(x), x)  # the fused form has no identity start


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("context", MODULES)
@pytest.mark.parametrize("size", [(17, 15), (4, 5), (1, 1)])
def test_shape_kept_and_every_parameter_gets_a_gradient(context, variant, size):
    module = _random(MODULES[context](16, variant)).float().train()
    x = torch.randn(2, 16, *size, requires_grad=True)
    out = module(x)
    assert out.shape == x.shape
    out.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        if size != (1, 1):  # one pixel: a one-entry softmax, BN over one value per image
            assert p.grad.abs().sum() > 0, name


def test_pyramid_pooling_trains_on_one_image():
    """The 1x1 bin's BN sees the broadcast map: one image per batch does not raise (BN on a
    [1, C/4, 1, 1] map would), and the bin then passes its BN shift alone."""
    module = PyramidPoolingContext(8, "official").train()
    x = torch.randn(1, 8, 6, 9)
    module(x).sum().backward()
    conv, bn, _ = module.stages[0]
    torch.nn.init.normal_(bn.bias)
    shift = torch.relu(bn.bias).view(1, -1, 1, 1).expand(1, -1, 6, 9)
    torch.testing.assert_close(module.pyramid(x)[0], shift)


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_counts(variant):
    c = 32
    fused = variant == "official"
    ppm = 4 * (c * c // 4 + 2 * c // 4)  # four 1x1 convs C -> C/4 + BN
    ppm += (2 * c * c if fused else c * c) + 2 * c  # the fuse or the reprojection + BN
    nonlocal_ = 3 * (c * c // 2 + c // 2)  # theta, phi, g with bias
    nonlocal_ += ((c + c // 2) * c if fused else c // 2 * c) + 2 * c  # fuse or W_z + BN
    for context, expected in (("ppm", ppm), ("non-local", nonlocal_)):
        module = context_module(c, context, variant)
        assert sum(p.numel() for p in module.parameters()) == expected, context


@pytest.mark.parametrize("preset", ["dgcnet_paper_micro", "dgcnet_official_micro"])
@pytest.mark.parametrize("context", MODULES)
def test_micro_models_build_and_run_with_each_module(preset, context):
    torch.manual_seed(0)
    assert context in CONTEXTS and model_spec(preset, graphs=context).graphs == context
    model = build_model(preset, 5, graphs=context)
    assert isinstance(model.head.graph, MODULES[context])
    expected = "official" if preset == "dgcnet_official_micro" else "paper"
    assert model.head.graph.variant == expected
    images = torch.randn(2, 3, 48, 64)
    out = model.train()(images)
    assert out["out"].shape == out["aux"].shape == (2, 5, 48, 64)
    out["out"].mean().backward()
    assert model.eval()(images)["out"].shape == (2, 5, 48, 64)


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="multiple of 4"):
        PyramidPoolingContext(10)
    with pytest.raises(ValueError, match="even"):
        NonLocalContext(9)
    for module in MODULES.values():
        with pytest.raises(ValueError, match="variant"):
            module(16, "authors")
    with pytest.raises(ConfigError, match="ppm, non-local"):
        model_spec("dgcnet_paper_micro", graphs="pyramid")
