"""CoordinateGCN against the literal formula with A_S formed explicitly (paper Eq. 3-5), and the
authors' gate (its written-out backward, and torch.compile tracing it without graph breaks)."""

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import bn_rows, randomize_bn

from dgcn.models import CoordinateGCN


def block_means(x: torch.Tensor, d: int) -> torch.Tensor:
    """d x d average pooling written out: each node is the mean of the pixels it covers."""
    b, c, h, w = x.shape
    out = torch.empty(b, c, math.ceil(h / d), math.ceil(w / d), dtype=x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, i * d : (i + 1) * d, j * d : (j + 1) * d].mean(dim=(2, 3))
    return out


def proj(conv: torch.nn.Conv2d, nodes: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv as a matrix product on [N, D] node rows."""
    out = nodes @ conv.weight[:, :, 0, 0].T
    return out + conv.bias if conv.bias is not None else out


def literal(module: CoordinateGCN, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    b, _, h, w = v.shape
    outputs = []
    for n in range(b):
        nodes = v[n].flatten(1).T  # V_S: [N', D]
        adjacency = proj(module.query, nodes) @ proj(module.key, nodes).T  # A_S: [N', N']
        m = adjacency @ proj(module.value, nodes) @ module.state_update.weight[:, :, 0, 0].T
        y = bn_rows(module.reproject[1], m @ module.reproject[0].weight[:, :, 0, 0].T)
        outputs.append(y.T.reshape(-1, h, w))
    y = torch.stack(outputs)
    return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)


@pytest.mark.parametrize("size", [(32, 40), (21, 27), (9, 13)])
@pytest.mark.parametrize("d", [4, 8])
def test_linear_order_equals_literal_formula_avg(size, d):
    module = CoordinateGCN(16, downsample=d, pooling="avg", zero_init=False).double().eval()
    randomize_bn(module.reproject[1])
    x = torch.randn(2, 16, *size, dtype=torch.float64)
    v = block_means(x, d)
    torch.testing.assert_close(module.nodes(x), v, rtol=0, atol=1e-12)
    torch.testing.assert_close(module(x), literal(module, x, v), rtol=0, atol=1e-10)


@pytest.mark.parametrize("size", [(32, 32), (25, 19)])
def test_linear_order_equals_literal_formula_conv(size):
    module = CoordinateGCN(16, downsample=8, pooling="conv", zero_init=False).double().eval()
    randomize_bn(module.reproject[1])
    x = torch.randn(1, 16, *size, dtype=torch.float64)
    v = module.nodes(x)
    assert v.shape[-2:] == (math.ceil(size[0] / 8), math.ceil(size[1] / 8))
    assert len(module.downsample) == 3  # log2(8) strided convs
    torch.testing.assert_close(module(x), literal(module, x, v), rtol=0, atol=1e-10)


def test_adjacency_is_the_explicit_product():
    module = CoordinateGCN(8, downsample=2).double()
    x = torch.randn(1, 8, 6, 5, dtype=torch.float64)
    nodes = block_means(x, 2)[0].flatten(1).T
    expected = proj(module.query, nodes) @ proj(module.key, nodes).T
    torch.testing.assert_close(module.adjacency(x)[0], expected)


def test_zero_init_starts_as_zero_term():
    module = CoordinateGCN(8)
    assert torch.count_nonzero(module(torch.randn(1, 8, 16, 16))) == 0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="power of two"):
        CoordinateGCN(8, downsample=6)
    with pytest.raises(ValueError, match="pooling"):
        CoordinateGCN(8, pooling="max")


@pytest.mark.parametrize("small", [(5, 7), (11, 13)])
def test_gate_gradients_are_those_of_plain_autograd(small):
    """The authors' gate ``x * up(g) + x`` with its backward written out (up(g) recomputed,
    the resize's adjoint for g) against autograd on the plain expression, float64; g of the
    size of x included (up is then the identity)."""
    from dgcn.models.coordinate_gcn import gate

    x = torch.randn(2, 3, 11, 13, dtype=torch.float64)
    g = torch.randn(2, 3, *small, dtype=torch.float64)
    target = torch.randn_like(x)
    grads = []
    for fn in (
        gate,
        lambda a, b: a * F.interpolate(b, a.shape[-2:], mode="bilinear", align_corners=True) + a,
    ):
        a, b = x.clone().requires_grad_(True), g.clone().requires_grad_(True)
        (fn(a, b) * target).sum().backward()
        grads.append((a.grad, b.grad))
    for ours, plain in zip(*grads, strict=True):
        torch.testing.assert_close(ours, plain, rtol=1e-12, atol=1e-12)
    inputs = (x.clone().requires_grad_(True), g.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(gate, inputs)
    # only one input needing a gradient
    b = g.clone().requires_grad_(True)
    (gate(x, b) * target).sum().backward()
    torch.testing.assert_close(b.grad, grads[1][1], rtol=1e-12, atol=1e-12)


def test_official_block_traces_without_graph_breaks():
    """torch.compile sees the whole official block, the gate's custom backward included (its
    backward used to call torch.autograd.grad, a graph break in every forward)."""
    from dgcn.models import DualGCN

    torch._dynamo.reset()
    block = DualGCN(16, "official").train()
    explained = torch._dynamo.explain(block)(torch.randn(2, 16, 21, 19, requires_grad=True))
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons]
    assert explained.graph_count == 1


@pytest.mark.slow
def test_official_model_compiles_whole_and_keeps_its_gradients():
    """The whole official model (micro backbone) traces as one graph, and compiled through
    AOTAutograd (the custom backward traced too) it gives eager's outputs and gradients."""
    from dgcn.models import build_model

    torch._dynamo.reset()
    model = build_model("dgcnet_official_micro", num_classes=19).train()
    images = torch.randn(2, 3, 64, 96)
    explained = torch._dynamo.explain(model)(images)
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons]
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    results = []
    for runner in (model, compiled):
        torch.manual_seed(1)  # the aux head's dropout draws the same mask
        outputs = runner(images)
        model.zero_grad()
        (outputs["out"].square().mean() + outputs["aux"].square().mean()).backward()
        results.append((outputs["out"].detach(), [p.grad.clone() for p in model.parameters()]))
    (eager_out, eager_grads), (compiled_out, compiled_grads) = results
    torch.testing.assert_close(compiled_out, eager_out, rtol=1e-4, atol=1e-5)
    for a, b in zip(compiled_grads, eager_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
