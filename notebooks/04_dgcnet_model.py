# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,colab
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · The DGCNet model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/04_dgcnet_model.ipynb)
#
# Notebooks 02 and 03 built the two graphs. This one assembles the whole network: how the two
# graph outputs are fused with the feature map, the segmentation head the authors released
# around them, the dilated ResNet-101 that feeds it at output stride 8, and the auxiliary head
# used for training. The paper's text and the authors' released code differ in six places;
# each difference gets a small computation that shows what it changes. We then count
# parameters and FLOPs per block at full Cityscapes resolution (on PyTorch's meta device, which
# allocates no memory) and load the authors' checkpoint format.
#
# You will:
#
# - verify the paper's fusion $X + \tilde X_S + \tilde X_F$ and the released concat + 1x1 conv
#   + BN against the package, and see that the sum is a special case of the concatenation;
# - trace the released `DualGCNHead` (conva, dualgcn, convb, concat, bottleneck) shape by shape;
# - read off the dilations of the deep-stem ResNet-101 (multi-grid 1, 2, 4) and check its
#   feature sizes: 832 -> 105, 1024x2048 -> 129x257;
# - measure each paper-vs-released difference numerically;
# - count 72,506,598 parameters and the FLOPs of every block at 768x768 and 1024x2048;
# - convert a checkpoint in the authors' key format and load it strictly.
#
# | mode | where | time |
# |---|---|---|
# | smoke (`DGCN_SMOKE=1`) | 2-core CPU | 12-30 s |
# | full: the authors' checkpoint on 500 Cityscapes val images, if present | GPU | not measured |
#
# (Smoke times measured on this project's 2-core CPU: the low figure on a quiet machine, the
# high one while other jobs shared the cores.)

# %%
# Setup: make `import dgcn` work and run from the repository root. Re-running it is safe, and
# it changes nothing when dgcn is already importable. A checkout or an unzipped copy (here,
# above here, or a dgcn-book* folder here) is used as it is; only on Colab with no copy at all
# is the book's version cloned. Working from a fork? Put its address in REPO.
REPO = "https://github.com/dgcn-book/dgcn-book"
BOOK_VERSION = "0.2.0"  # the dgcn version this book was written against (git tag v0.2.0)

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

IN_COLAB = "google.colab" in sys.modules


def find_checkout(start):
    """The folder at or above `start`, or a dgcn-book* folder in it, that holds the package."""
    for folder in [start, *start.parents, *sorted(start.glob("dgcn-book*"))]:
        if (folder / "dgcn" / "__init__.py").is_file() and (folder / "pyproject.toml").is_file():
            return folder.resolve()
    return None


ROOT = find_checkout(Path.cwd().resolve())
if importlib.util.find_spec("dgcn") is None:
    if ROOT is None and IN_COLAB:
        ROOT = Path.cwd().resolve() / "dgcn-book"
        tag = f"v{BOOK_VERSION}"
        subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", tag, REPO, ROOT], check=True)
    if ROOT is None:
        raise ModuleNotFoundError(
            "dgcn is not installed and no checkout was found here or above: open the notebook "
            "inside the repository, or `pip install -e '<checkout>[notebooks]'`"
        )
    if IN_COLAB:  # the dependencies Colab lacks
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", ROOT], check=True)
    sys.path.insert(0, str(ROOT))
elif ROOT is None:  # installed: run from its checkout when it has one
    ROOT = find_checkout(Path(importlib.util.find_spec("dgcn").origin).parent)
if ROOT is not None:
    os.chdir(ROOT)  # data/ and runs/ are shared by all notebooks

import dgcn
from dgcn import datasets, models, viz

if dgcn.__version__ != BOOK_VERSION:
    print(f"note: this book was written against dgcn {BOOK_VERSION}; {dgcn.__version__} is here")
SMOKE = dgcn.smoke_mode()

# %% [markdown]
# Every expensive constant is set here, once. Profiling runs on the meta device and costs the
# same in both modes; only the evaluation of the authors' checkpoint (when you have it and
# Cityscapes) grows in full mode.

# %%
EVAL_IMAGES = 2 if SMOKE else 500  # Cityscapes val images for the authors' checkpoint
OFFICIAL_CKPT = os.environ.get("DGCN_OFFICIAL_CKPT", "data/pretrained/dgcnet_r101_cityscapes.pth")
KEY_TABLE = "tests/data/official_dgcnet_state_dict.tsv"  # the authors' 738 keys and shapes
print(f"SMOKE={SMOKE}: {EVAL_IMAGES} val images if the checkpoint and Cityscapes are present")

# %%
# ruff: noqa: E402 (a notebook imports in the cell where a module is first needed)
# %matplotlib inline
import math

import pandas as pd
import torch
from IPython.display import display
from torch import nn

from dgcn import evaluation

_ = torch.manual_seed(0)


def randomize_bn(module):
    """Non-trivial affine parameters and running statistics in every BN, so eval-mode checks
    test something (the package zero-initialises some BN scales)."""
    with torch.no_grad():
        for norm in module.modules():
            if isinstance(norm, (nn.BatchNorm1d, nn.BatchNorm2d)):
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.normal_()
                norm.running_mean.normal_()
                norm.running_var.uniform_(0.5, 2.0)
    return module


def bn_eval(values, norm, dim=1):
    """Eval-mode BatchNorm written out, channels along ``dim``."""
    shape = [1] * values.dim()
    shape[dim] = -1
    scale = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).view(shape)
    return (values - norm.running_mean.view(shape)) * scale + norm.bias.view(shape)


# %% [markdown]
# ## 1. Fusion: a sum in the paper, a concatenation in the code
#
# The paper (Sec. 3.4, Eq. 9) adds both graph outputs to the backbone feature:
#
# $$Y = X + \tilde X_S + \tilde X_F,$$
#
# so with $\tilde X_S = \tilde X_F = 0$ (our zero-initialised reprojections) the block starts
# as the identity. The released `DualGCN` instead concatenates its two branch outputs, which
# already contain $X$ (the coordinate branch returns $X \odot L + X$, the feature branch
# $\mathrm{ReLU}(X + Y)$), and fuses them with a 1x1 convolution and BN (`final`):
#
# $$Y = \mathrm{BN}\big(W_{\text{fuse}} [\,S; F\,]\big), \qquad
#   W_{\text{fuse}} \in \mathbb{R}^{C \times 2C}.$$
#
# We verify both against the package in float64: the paper block against its two graph
# modules built separately with the same weights, the released block against the written-out
# conv + BN on the concatenation. (The package never forms $[\,S; F\,]$: splitting
# $W_{\text{fuse}} = [\,W_S \;\; W_F\,]$ gives $W_S S + W_F F$, the same numbers, without a
# $2C$-channel tensor that training would have to keep for backward; `dgcn.models.common.ConcatConv`
# does this for the fusion and for the head's classifier, and `benchmarks/modules.py` measures
# the memory it saves.)

# %%
C = 16
x = torch.randn(2, C, 24, 40, dtype=torch.float64)

paper_block = randomize_bn(models.DualGCN(C, variant="paper")).double().eval()
coordinate = models.CoordinateGCN(C).double().eval()
feature = models.FeatureGCN(C).double().eval()
coordinate.load_state_dict(paper_block.coordinate.state_dict())
feature.load_state_dict(paper_block.feature.state_dict())
with torch.no_grad():
    torch.testing.assert_close(paper_block(x), x + coordinate(x) + feature(x), rtol=0, atol=1e-10)
print("paper DualGCN == X + X~_S + X~_F")

official_block = randomize_bn(models.DualGCN(C, variant="official")).double().eval()
with torch.no_grad():
    s = official_block.coordinate(x)
    f = official_block.feature(x)
    w_fuse = official_block.fuse[0].weight[:, :, 0, 0]  # [C, 2C]
    fused = torch.einsum("oc,bchw->bohw", w_fuse, torch.cat([s, f], dim=1))
    torch.testing.assert_close(
        official_block(x), bn_eval(fused, official_block.fuse[1]), rtol=0, atol=1e-10
    )
print("official DualGCN == BN(W_fuse [S; F])")

# %% [markdown]
# **The sum is a special case of the concatenation.** With $W_{\text{fuse}} = [\,I \;\; I\,]$
# and an identity BN, concat + conv returns $S + F$. The released fusion can learn that sum and
# much else, at the price of $2C^2$ weights ($524{,}288$ at $C = 512$, plus $1{,}024$ for
# the BN) and a 1x1 conv over $2C$ channels at every pixel.

# %%
with torch.no_grad():
    sum_fuse = models.DualGCN(C, variant="official").double().eval()
    sum_fuse.load_state_dict(official_block.state_dict())
    sum_fuse.fuse[0].weight.copy_(torch.cat([torch.eye(C), torch.eye(C)], 1)[:, :, None, None])
    sum_fuse.fuse[1].reset_parameters()  # weight 1, bias 0, mean 0, var 1
    sum_fuse.fuse[1].eps = 0.0
    torch.testing.assert_close(sum_fuse(x), s + f, rtol=0, atol=1e-10)
print("concat + conv with W = [I I] and identity BN == S + F")

# %%
# NBVAL_CHECK_OUTPUT
fuse_params = sum(p.numel() for p in models.DualGCN(512, variant="official").fuse.parameters())
print(f"fusion parameters at C = 512: {fuse_params:,}")

# %% [markdown]
# ## 2. The released head: `DualGCNHead`
#
# The authors do not put the graph on the 2048-channel backbone feature. Their head
# (`DualGCNHead(2048, 512, 19)`, our `models.DualGCNHead`) first reduces the channels, runs the
# dual graph at width $C = 512$, and concatenates the result with the backbone feature before
# classifying:
#
# | step | authors' name | ours | operation |
# |---|---|---|---|
# | 1 | `conva` | `reduce` | 3x3 conv 2048 -> 512, BN, ReLU |
# | 2 | `dualgcn` | `graph` | `DualGCN(512)`, 512 -> 512 |
# | 3 | `convb` | `project` | 3x3 conv 512 -> 512, BN, ReLU |
# | 4 | - | - | concatenate [backbone feature, step 3] -> 2560 channels |
# | 5 | `bottleneck` | `classifier` | 3x3 conv 2560 -> 512, BN, ReLU, 1x1 conv -> 19 (with bias) |
#
# The logits stay at stride 8; `DGCNet.forward` upsamples them bilinearly
# (`align_corners=True`, as the authors) to the input size. First the shapes, at the authors'
# training crop of 832, traced with forward hooks on the meta device:

# %%
# NBVAL_CHECK_OUTPUT
with torch.device("meta"):
    official_r101 = models.build_model("dgcnet_official_r101")
trace = []
hooks = [
    module.register_forward_hook(
        lambda m, inputs, output, name=name: trace.append((name, tuple(output.shape)))
    )
    for name, module in official_r101.head.named_children()
]
with torch.no_grad():
    logits = official_r101.eval()(torch.empty(1, 3, 832, 832, device="meta"))["out"]
for hook in hooks:
    hook.remove()
for name, shape in trace:
    print(f"head.{name:<11} -> {shape}")
print(f"upsampled out    -> {tuple(logits.shape)}")

# %% [markdown]
# And the composition itself, on the small CPU preset `dgcnet_official_micro` (head width 64),
# written out step by step and compared with the package's head:

# %%
micro = randomize_bn(models.build_model("dgcnet_official_micro")).double().eval()
images = torch.randn(1, 3, 64, 128, dtype=torch.float64)
with torch.no_grad():
    feats = micro.backbone(images)["out"]
    head = micro.head
    y = head.project(head.graph(head.reduce(feats)))
    expected = head.classifier(torch.cat([feats, y], dim=1))
    torch.testing.assert_close(head(feats), expected, rtol=0, atol=1e-10)
print(f"head(X) == bottleneck([X; convb(dualgcn(conva(X)))]): {tuple(expected.shape)}")

# %% [markdown]
# ## 3. The backbone: dilated ResNet-101 at output stride 8, multi-grid (1, 2, 4)
#
# A ResNet halves the resolution five times (output stride 32). Segmentation wants finer maps,
# so the DeepLab-style "dilated" ResNet sets the stride of layer3 and layer4 to 1 and dilates
# their 3x3 convolutions instead (dilation 2 in layer3, 4 in layer4): every layer keeps the
# receptive field it had, and the output stays at stride 8. The authors' backbone also has a
# deep stem (three 3x3 convs instead of one 7x7, and a max-pool in `ceil_mode`) and, in
# layer4, multi-grid dilations $4 \times (1, 2, 4) = 4, 8, 16$ for its three blocks. Read from
# the package's modules:

# %%
# NBVAL_CHECK_OUTPUT
backbone = official_r101.backbone
rows = []
for name in ("layer1", "layer2", "layer3", "layer4"):
    blocks = list(getattr(backbone, name).children())
    dilations = [block.conv2.dilation[0] for block in blocks]
    rows.append(
        {
            "layer": name,
            "blocks": len(blocks),
            "stride": blocks[0].conv2.stride[0],
            "3x3 dilations": dilations
            if len(set(dilations)) > 1
            else f"{dilations[0]} x {len(blocks)}",
            "out channels": blocks[-1].bn3.num_features,
        }
    )
print(pd.DataFrame(rows).to_string(index=False))
assert [b.conv2.dilation[0] for b in backbone.layer4] == [4, 8, 16]

# %% [markdown]
# The feature size follows from the layer arithmetic
# $\lfloor (n + 2p - k)/s \rfloor + 1$: the stride-2 stem conv, the ceil-mode max-pool
# (which rounds *up*) and the stride-2 first block of layer2. The ceil mode is why 832 gives
# 105, not 104. We compute it by hand and assert it equals the meta-device forward:


# %%
# NBVAL_CHECK_OUTPUT
def out_size(n, kernel=3, stride=2, padding=1, ceil=False):
    steps = (n + 2 * padding - kernel) / stride
    return (math.ceil(steps) if ceil else math.floor(steps)) + 1


for height, width in [(832, 832), (769, 769), (1024, 2048)]:
    by_hand = [out_size(out_size(out_size(n), ceil=True)) for n in (height, width)]
    with torch.no_grad():
        feats = backbone(torch.empty(1, 3, height, width, device="meta"))
    assert list(feats["out"].shape[-2:]) == by_hand == list(feats["aux"].shape[-2:])
    layer4, layer3 = tuple(feats["out"].shape[1:]), tuple(feats["aux"].shape[1:])
    print(f"{height}x{width} -> layer4 {layer4}, layer3 {layer3}")

# %% [markdown]
# ## 4. The auxiliary head
#
# Training adds a second classifier on layer3 (1024 channels), the authors' `dsn`: 3x3 conv
# 1024 -> 512 (with bias), BN, Dropout2d(0.1), 1x1 conv -> 19. Its loss is weighted 0.4 and it
# exists only in training mode (notebook 06); in eval mode the model returns only `"out"`.

# %%
# NBVAL_CHECK_OUTPUT
print(official_r101.aux_head)
aux_params = sum(p.numel() for p in official_r101.aux_head.parameters())
assert aux_params == 4_729_875
print(f"aux head parameters: {aux_params:,}")
micro.train()
with torch.no_grad():
    print("train mode returns", sorted(micro(images)))
    print("eval mode returns ", sorted(micro.eval()(images)))

# %% [markdown]
# ## 5. Paper versus released code, difference by difference
#
# The authors' `DualGCNNet.py` differs from the paper's equations in these places (read from
# their code at commit be7ebfe; the package implements both, `variant="paper"` and
# `variant="official"`):

# %%
# NBVAL_CHECK_OUTPUT
differences = pd.DataFrame(
    [
        (
            "place",
            "on the backbone feature X (D = 2048)",
            "inside a head, on a 512-channel reduction",
        ),
        (
            "coordinate downsampling",
            "pooling or strided convs, d = 8",
            "three stride-2 depthwise convs + BN",
        ),
        (
            "coordinate adjacency",
            "A_S = delta(V) Psi(V)^T, no normalisation",
            "softmax over the C/2 x C/2 product",
        ),
        ("coordinate output", "added: X + X_S", "gated: x * up(.) + x"),
        ("feature graph", "(I - A_F) V_F W_F", "(I + A) with A learned, BN after A and W"),
        ("fusion", "X + X_S + X_F", "concat + conv1 + BN"),
    ],
    columns=["point", "paper", "released code"],
)
print(differences.to_string(index=False))

# %% [markdown]
# **Place.** On the 2048-channel feature the graph is wide; on the 512-channel reduction it is
# small. Parameters and FLOPs of the two graph modules at 1024x2048 (feature map 128x256 for
# the torchvision backbone of the paper preset, 129x257 for the deep stem):

# %%
# NBVAL_CHECK_OUTPUT
with torch.device("meta"):
    graph_paper = models.DualGCN(2048, variant="paper")
    graph_official = models.DualGCN(512, variant="official")
for name, module, size in [
    ("paper, D = 2048", graph_paper, (1, 2048, 128, 256)),
    ("released, C = 512", graph_official, (1, 512, 129, 257)),
]:
    params = sum(p.numel() for p in module.parameters())
    gflops = models.profile.count_flops(module, size)["Global"] / 1e9
    print(f"{name:<18} {params:>11,} parameters {gflops:7.1f} GFLOPs")

# %% [markdown]
# **Coordinate downsampling.** Average pooling ($d = 8$, `ceil_mode`) has no parameters;
# the released `local` has three depthwise 3x3 stride-2 convs with BN. Both turn the 105x105
# map of an 832 crop into a 14x14 node grid:

# %%
# NBVAL_CHECK_OUTPUT
with torch.device("meta"):
    pool = models.CoordinateGCN(512, 8, pooling="avg").downsample
    local = models.OfficialCoordinateGCN(512, 8).downsample
    grid_in = torch.empty(1, 512, 105, 105)
    steps = [tuple(grid_in.shape[-2:])]
    h = grid_in
    for layer in local:
        h = layer(h)
        if isinstance(layer, nn.Conv2d):
            steps.append(tuple(h.shape[-2:]))
    print(f"average pooling: {tuple(pool(grid_in).shape[-2:])}, 0 parameters")
    print(
        f"released local:  {' -> '.join(str(s) for s in steps)}, "
        f"{sum(p.numel() for p in local.parameters()):,} parameters"
    )

# %% [markdown]
# **Coordinate adjacency.** The paper's $A_S = \delta(V_S)\Psi(V_S)^\top$ is an $N' \times N'$
# matrix over the nodes with nothing normalising it: its row sums are whatever the features
# make them. The released code never forms a node-by-node matrix; it takes the softmax of a
# $C/2 \times C/2$ channel-by-channel product, whose rows sum to exactly 1. The package can
# form $A_S$ explicitly for teaching (`CoordinateGCN.adjacency`); the released matrix we
# compute from the module's `key`/`value` convs as in its `forward`:

# %%
feats = torch.randn(1, C, 64, 64, dtype=torch.float64)
paper_coord = paper_block.coordinate
official_coord = official_block.coordinate
with torch.no_grad():
    A_S = paper_coord.adjacency(feats)[0]  # [N', N']
    v = official_coord.downsample(feats)
    k = official_coord.key(v).flatten(2)
    val = official_coord.value(v).flatten(2)
    A_released = torch.softmax(torch.bmm(k, val.transpose(1, 2)), dim=-1)[0]  # [C/2, C/2]
sums_paper, sums_released = A_S.sum(1), A_released.sum(1)
torch.testing.assert_close(sums_released, torch.ones_like(sums_released))
print(
    f"paper A_S {tuple(A_S.shape)}: row sums from {sums_paper.min():.2f} to {sums_paper.max():.2f}"
)
error = float((sums_released - 1).abs().max())
print(f"released {tuple(A_released.shape)}: row sums all 1 (max error {error:.1e})")

# %% [markdown]
# **Coordinate output.** The paper adds a term, $X + \tilde X_S$, which can take any sign. The
# released branch multiplies: $X \odot \mathrm{up}(G) + X = X \odot (1 + \mathrm{up}(G))$ with
# $G = \mathrm{ReLU}(\cdot) \ge 0$. It can only amplify each activation by a factor of at least
# 1: it never flips a sign and never creates a response where $X = 0$. Checked on the module:

# %%
x_sparse = torch.relu(x) - 0.5 * torch.relu(-x)  # mixed signs
x_sparse[:, :, :4] = 0.0  # a band of exact zeros
with torch.no_grad():
    gated = official_coord(x_sparse)
    added = x_sparse + paper_coord(x_sparse)
nonzero = x_sparse != 0
factor = gated[nonzero] / x_sparse[nonzero]
assert bool((factor >= 1).all()) and bool((gated[~nonzero] == 0).all())
print(f"released: output / input from {factor.min():.3f} to {factor.max():.3f}; zeros stay zero")
print(
    f"paper: {int((added[~nonzero] != 0).sum())} of {int((~nonzero).sum())} zero inputs "
    "become non-zero outputs"
)

# %% [markdown]
# **Feature graph.** Notebook 03 showed that $(I + A)$ with $A = -A_F$ is $(I - A_F)$: the sign
# is absorbed in the learned matrix. What remains are the BNs after $A$ and after $W$ (the
# paper has none inside the graph convolution), four extra BN layers in the released branch:


# %%
# NBVAL_CHECK_OUTPUT
def count_bn(module):
    return sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in module.modules())


print(
    f"BN layers in the feature branch: paper {count_bn(models.FeatureGCN(512))}, "
    f"released {count_bn(models.OfficialFeatureGCN(512))}"
)

# %% [markdown]
# **Fusion.** Section 1: the paper's sum equals the released concat + conv with
# $W_{\text{fuse}} = [\,I\;\;I\,]$ and an identity BN; the released code learns $W_{\text{fuse}}$.
#
# ## 6. Parameters and FLOPs per block
#
# `dgcn.models.profile.block_table` builds a model on the meta device and counts every
# block's parameters and FLOPs with `torch.utils.flop_counter` (a multiply-add is 2 FLOPs;
# convolutions and matrix products only). The training forward is counted, auxiliary head
# included. The released network has exactly the 72,506,598 parameters of the authors'
# `DualSeg_res101`:


# %%
# NBVAL_CHECK_OUTPUT
def blocks(name):
    tables = {
        size: models.profile.block_table(lambda: models.build_model(name), (1, 3, *size))
        for size in [(768, 768), (1024, 2048)]
    }
    frame = pd.DataFrame(tables[(768, 768)]).rename(columns={"gflops": "GFLOPs 768x768"})
    frame["GFLOPs 1024x2048"] = [row["gflops"] for row in tables[(1024, 2048)]]
    return frame


def show(frame):
    shown = frame.assign(params=frame["params"].map("{:,}".format))
    print(shown.to_string(index=False, float_format="{:.1f}".format))


official_table = blocks("dgcnet_official_r101")
assert official_table.iloc[-1]["params"] == 72_506_598
show(official_table)

# %% [markdown]
# The paper preset for comparison: the graph sits on the 2048-channel feature, and the
# classifier is torchvision's `FCNHead` (3x3 conv 2048 -> 512, BN, ReLU, dropout, 1x1 conv):

# %%
# NBVAL_CHECK_OUTPUT
show(blocks("dgcnet_paper_r101"))

# %% [markdown]
# The dilated backbone takes 61 % (released) and 69 % (paper preset) of the FLOPs, most of
# it in layer3 and layer4, which run at stride 8 instead of 16 and 32. The released graph
# module is about 1 % of the network's FLOPs, the paper's, on 2048 channels, about 8 % (with
# the feature graph's reprojection computed as $(\Phi M_F^\top) H_F^\top$, notebook 03). The
# released head is still expensive: `reduce` and `classifier` are 3x3 convs from 2048 and
# 2560 channels at stride 8.
#
# ## 7. The authors' checkpoint
#
# The authors' Cityscapes model is a state dict of their `DualSeg_res101` (738 entries, with a
# `module.` prefix when saved from DDP). `models.OFFICIAL_KEY_MAP` renames it to ours: one
# table of prefixes, the longest match wins, everything after the prefix is unchanged.

# %%
# NBVAL_CHECK_OUTPUT
key_map = pd.DataFrame(models.OFFICIAL_KEY_MAP, columns=["authors' prefix", "our prefix"])
print(key_map.to_string(index=False))

# %% [markdown]
# Without the file, we can still test the conversion end to end: `KEY_TABLE` lists every key
# of the authors' checkpoint with its shape. We fill a state dict with random tensors of those
# shapes (with the DDP prefix), convert it, and load it **strictly** into the network built on
# the meta device (`assign=True` puts the tensors in place of the meta parameters, so nothing
# is initialised twice).

# %%
keys = pd.read_csv(KEY_TABLE, sep="\t")
generator = torch.Generator().manual_seed(0)
authors_state = {}
for key, shape, dtype in keys.itertuples(index=False):
    if dtype == "int64":  # BN's num_batches_tracked
        authors_state["module." + key] = torch.tensor(0)
    else:
        dims = [int(n) for n in shape.split("x")]
        authors_state["module." + key] = torch.randn(dims, generator=generator)
converted = models.convert_official_state_dict(authors_state)
with torch.device("meta"):
    loaded = models.build_model("dgcnet_official_r101")
result = loaded.load_state_dict(converted, strict=True, assign=True)
assert not result.missing_keys and not result.unexpected_keys
assert all(not p.is_meta for p in loaded.parameters())
theirs = authors_state["module.head.dualgcn.conv_adj.weight"]
assert torch.equal(loaded.head.graph.feature.adjacency[0].weight, theirs)

# %%
# NBVAL_CHECK_OUTPUT
print(
    f"{len(authors_state)} keys converted and loaded strictly; "
    f"{sum(p.numel() for p in loaded.parameters()):,} parameters"
)
for theirs in [
    "module.head.dualgcn.gcn_local_attention.node_k.weight",
    "module.head.dualgcn.conv3.weight",
    "module.dsn.0.weight",
]:
    ours = next(k for k, v in converted.items() if v is authors_state[theirs])
    print(f"{theirs:<55} -> {ours}")

# %% [markdown]
# A checkpoint of another shape stops with one line naming the first key that does not fit:

# %%
# NBVAL_CHECK_OUTPUT
broken = dict(authors_state)
broken["module.head.dualgcn.conv_adj.weight"] = torch.zeros(64, 64, 1)
try:
    models.convert_official_state_dict(broken)
except dgcn.CheckpointError as err:
    print(f"CheckpointError: {err}")
del authors_state, converted, loaded, broken

# %% [markdown]
# With the real file (from the authors' GALD-DGCNet release) at
# `data/pretrained/dgcnet_r101_cityscapes.pth`, or anywhere `$DGCN_OFFICIAL_CKPT` points,
# the next cell loads it, and with Cityscapes under `data/cityscapes` it evaluates the first
# `EVAL_IMAGES` validation images the authors' way (sliding window 832, overlap 1/3). For
# reference (not measured here): the paper reports 80.5 mIoU on Cityscapes val, and the
# authors' README 80.3 to 80.4 for re-runs of their code; a handful of images is not the val
# set. The command line does the same: `dgcn evaluate --checkpoint FILE --official`.

# %%
if not os.path.isfile(OFFICIAL_CKPT):
    print(f"skipped: no authors' checkpoint at {OFFICIAL_CKPT} (set $DGCN_OFFICIAL_CKPT)")
else:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    authors_model = models.load_official_checkpoint(OFFICIAL_CKPT).to(device)
    print(
        f"loaded {OFFICIAL_CKPT}: {sum(p.numel() for p in authors_model.parameters()):,} parameters"
    )
    if not os.path.isdir("data/cityscapes/leftImg8bit"):
        print("evaluation skipped: no Cityscapes at data/cityscapes (see notebook 05)")
    else:
        val = datasets.Cityscapes("data/cityscapes", "val")
        subset = torch.utils.data.Subset(val, range(min(EVAL_IMAGES, len(val))))
        loader = torch.utils.data.DataLoader(subset, batch_size=1, num_workers=2)
        protocol = dgcn.EvalConfig(mode="slide")  # the authors': tile 832, overlap 1/3, no flip
        matrix = evaluation.evaluate(authors_model, loader, protocol)
        print(f"mIoU on {len(subset)} val images: {100 * matrix.miou():.1f}")
        image, mask = subset[0]
        probs = evaluation.predict(authors_model, image[None].to(device), protocol)
        display(viz.prediction_grid([image], [mask], [probs[0].argmax(0).cpu()]))

# %% [markdown]
# ## Summary
#
# - The paper fuses by a sum, $X + \tilde X_S + \tilde X_F$; the released code by concat +
#   1x1 conv + BN, which contains the sum as the special case $W = [\,I\;\;I\,]$.
# - The released head is conva (2048 -> 512) -> dualgcn -> convb -> concat with the backbone
#   feature -> bottleneck (2560 -> 512 -> 19), at stride 8, with an auxiliary head on layer3
#   for training only.
# - The deep-stem ResNet-101 keeps stride 8 with dilations 2 (layer3) and 4, 8, 16 (layer4,
#   multi-grid); its ceil-mode max-pool makes 832 -> 105 and 1024x2048 -> 129x257.
# - The six paper-vs-code differences, measured: the place (1.5 M vs 16.0 M graph parameters),
#   the node grid (same 14x14), normalised vs unnormalised adjacency, multiplicative gate vs
#   additive term, $(I + A)$ + BN vs $(I - A_F)$, concat + conv vs sum.
# - `dgcnet_official_r101` has the authors' 72,506,598 parameters; their checkpoint's keys
#   convert with one prefix table and load strictly.
#
# ## Exercises
#
# 1. Build `models.build_model("dgcnet_official_r101", multi_grid=(1, 1, 1))` on the meta
#    device. Do the parameters or the FLOPs change? *Hint:* dilation changes where a kernel
#    looks, not how many weights it has.
# 2. Compute the feature size of a 1025x2049 input by hand with `out_size`, then check it on
#    the meta device.
# 3. In section 5, double the spatial size of `feats` for the paper's $A_S$. How do the row
#    sums change, and why? *Hint:* each row now has four times as many nodes.
# 4. Train `dgcnet_official_micro` and `dgcnet_paper_micro` on MiniCity for the same number of
#    iterations (notebook 06's recipe) and compare mIoU. Which difference of section 5 would
#    you test first as an ablation?
# 5. Remove the concatenation with the backbone feature from the head (step 4): how many
#    parameters does the bottleneck lose? *Hint:* a 3x3 conv from 2048 channels to 512.
#
# ## References
#
# - Zhang, Li, Arnab, Yang, Tong, Torr, *Dual Graph Convolutional Network for Semantic
#   Segmentation*, BMVC 2019 (arXiv 1909.06121): Sec. 3.2-3.3 (the graphs), Sec. 3.4 and
#   Fig. 2 (fusion, Eq. 9, and the network), Sec. 4 (implementation details).
# - The authors' code: github.com/lxtGH/GALD-DGCNet, `libs/models/DualGCNNet.py`
#   (`DualGCNHead`, `DualGCN`, `SpatialGCN`, `ResNet`; commit be7ebfe); the key mapping in
#   `dgcn/models/official.py`.
# - Chen, Papandreou, Kokkinos, Murphy, Yuille, *DeepLab* (TPAMI 2018): atrous (dilated)
#   convolution; Chen, Papandreou, Schroff, Adam, *Rethinking Atrous Convolution* (2017):
#   multi-grid.
# - PyTorch: `torch.utils.flop_counter.FlopCounterMode`, the meta device,
#   `Module.load_state_dict(strict=True, assign=True)`; torchvision `models.resnet.Bottleneck`,
#   `models.segmentation.fcn.FCNHead`.
# - Package: `dgcn/models/dual_gcn.py`, `network.py`, `backbone.py`, `official.py`, `profile.py`.
