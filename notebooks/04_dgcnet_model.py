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
#       jupytext_version: 1.19.7
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
# used for training. The paper's equations (as summarised, `docs/reference/paper_summary.md`)
# and the authors' released code (`docs/reference/official_dgcnet.md`) differ in several
# places; each gets a small computation that shows what it changes. You will:
#
# - read the network off two diagrams drawn from the models, every shape measured by hooks;
# - verify the paper's fusion $X + \tilde X_S + \tilde X_F$ and the released concat + 1x1 conv
#   + BN, and see the sum as a special case of the concatenation;
# - trace the released `DualGCNHead` shape by shape, and the deep-stem ResNet-101's dilations
#   (multi-grid 1, 2, 4) and feature sizes (832 -> 105, 1024x2048 -> 129x257);
# - measure each paper-vs-released difference, and match the authors' names to the package's;
# - count 72,506,598 parameters and the FLOPs of every block at 768x768 and 1024x2048 (on
#   PyTorch's meta device, which allocates no memory);
# - convert a checkpoint in the authors' key format and load it strictly;
# - write the paper's DualGCN block yourself and match the package's (exercise 4).
#
# | mode | where | time |
# |---|---|---|
# | smoke (`DGCN_SMOKE=1`) | 2-core CPU | 12-30 s (a quiet machine to shared cores) |
# | full: the authors' checkpoint on 500 Cityscapes val images, if present | GPU | not measured |

# %%
# Setup, the same in every notebook (safe to re-run): import dgcn from a checkout here, above
# here or in a dgcn-book* folder here; on Colab with none, clone the book's version first.
REPO, BOOK_VERSION = "https://github.com/dgcn-book/dgcn-book", "0.3.0"  # a fork? its address
import importlib.util
import subprocess
import sys
from pathlib import Path

IN_COLAB, HERE = "google.colab" in sys.modules, Path.cwd().resolve()
COPIES = [p.resolve() for p in (HERE, *HERE.parents, *sorted(HERE.glob("dgcn-book*")))]
COPIES = [p for p in COPIES if (p / "pyproject.toml").is_file() and (p / "dgcn").is_dir()]
if importlib.util.find_spec("dgcn") is None:
    if not COPIES and IN_COLAB:  # the book's tag; a fork without it: its default branch
        COPIES = [HERE / "dgcn-book"]
        clone = ["git", "clone", "-q", "--depth", "1", REPO, str(COPIES[0])]
        if subprocess.run([*clone[:5], "-b", f"v{BOOK_VERSION}", *clone[5:]]).returncode:
            if subprocess.run(clone).returncode:  # no tag, and no clone at all: offline
                sys.exit("the clone failed (offline?): connect, or open the notebook in a checkout")
    if not COPIES:
        sys.exit("dgcn not installed and no checkout here or above: open the notebook in one")
    if IN_COLAB:  # the dependencies Colab lacks
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", COPIES[0]], check=True)
    sys.path.insert(0, str(COPIES[0]))
import dgcn
from dgcn import datasets, models, viz

ROOT = dgcn.book.setup(BOOK_VERSION, COPIES)  # runs the notebook from the checkout
SMOKE = dgcn.smoke_mode()

# %% [markdown]
# Every expensive constant is set here, once. Profiling runs on the meta device and costs the
# same in both modes; only the evaluation of the authors' checkpoint (when you have it and
# Cityscapes) grows in full mode.

# %%
# %matplotlib inline
import json
import math
import os

import pandas as pd
import torch
from IPython.display import display
from torch import nn

from dgcn import evaluation

EVAL_IMAGES = 2 if SMOKE else 500  # Cityscapes val images for the authors' checkpoint
OFFICIAL_CKPT = os.environ.get("DGCN_OFFICIAL_CKPT", "data/pretrained/dgcnet_r101_cityscapes.pth")
KEY_TABLE = "tests/data/official_dgcnet_state_dict.tsv"  # the authors' 738 keys and shapes
print(f"SMOKE={SMOKE}: {EVAL_IMAGES} val images if the checkpoint and Cityscapes are present")
_ = torch.manual_seed(0)


# %%
def randomize_bn(module):
    """Non-trivial affine parameters and running statistics in every BN, so eval-mode checks
    test something (by default the package starts some BN scales at 0, section 2)."""
    with torch.no_grad():
        for norm in module.modules():
            if isinstance(norm, (nn.BatchNorm1d, nn.BatchNorm2d)):
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.normal_()
                norm.running_mean.normal_()
                norm.running_var.uniform_(0.5, 2.0)
    return module


def bn_eval(values, norm):
    """Eval-mode BatchNorm2d written out."""
    scale = (norm.weight / torch.sqrt(norm.running_var + norm.eps))[:, None, None]
    return (values - norm.running_mean[:, None, None]) * scale + norm.bias[:, None, None]


# %% [markdown]
# ## 1. The network at a glance
#
# Two diagrams, drawn by `viz.architecture_diagram` from the models themselves: it builds a
# preset on PyTorch's meta device (no memory, no weights), runs one 832x832 image through it
# with forward hooks on every stage, and writes the recorded shape (channels x height x width)
# on each box; none is typed by hand. Read them up the left column and down the right:
#
# - **Backbone** (blue, rising): stem (stride 4), layer1, layer2 (stride 8), layer3 and layer4
#   (stride 8 kept by dilation, section 4); layer3 also feeds the **auxiliary head** (grey,
#   training loss only, section 5).
# - **Graphs** (right): the **coordinate-space graph** (orange: pixels pooled to a coarse grid
#   of nodes; notebook 02) and the **feature-space graph** (green: pixels projected onto D/4
#   nodes in feature space; notebook 03).
# - **Fusion and classifier** (purple): the paper adds $X + \tilde X_S + \tilde X_F$; the
#   authors' head concatenates the branches (1x1 conv + BN), refines (`convb`), concatenates
#   the 2048-channel backbone feature once more and classifies; logits upsampled to the input.
#
# First the authors' network, `dgcnet_official_r101` (their deep-stem ResNet-101 and
# `DualGCNHead`, which their checkpoint fits), its graph on a 512-channel reduction. Then the
# paper's equations, `dgcnet_paper_r101`: the graphs sit directly on the 2048-channel layer4
# feature $X$, their outputs are added to it, and torchvision's `FCNHead` classifies the sum
# (a departure of ours: the summary has the refined features go to "a dilated convolution" for
# the classes; the FCN head's 3x3 convolution is undilated, and it is the baseline's own, so
# the two differ by the graphs alone).
# Its backbone is torchvision's ResNet-101 (one 7x7 stem conv and a floor-mode max-pool), so
# the same 832 image gives a 104x104 feature, not 105x105, and a 13x13 node grid, not 14x14:

# %%
display(viz.architecture_diagram("dgcnet_official_r101", (832, 832)))
viz.architecture_diagram("dgcnet_paper_r101", (832, 832))

# %% [markdown]
# **A node grid belongs to a backbone and an input size.** The coordinate graph has
# $\lceil h/d \rceil \times \lceil w/d \rceil$ nodes for an $h \times w$ feature (average
# pooling; the authors' three stride-2 convs give the same here), and $h \times w$ depends on
# the backbone's stem as well as on the input. The same hooks as a table
# (`viz.architecture.architecture_shapes`, the function behind the diagrams); the feature graph
# always has D/4 nodes, whatever the image size:

# %%
# NBVAL_CHECK_OUTPUT
cases = [("dgcnet_official_r101", "authors' deep-stem R101", s) for s in [(832, 832), (1024, 2048)]]
paper_sizes = [(768, 768), (832, 832), (1024, 2048)]
cases += [("dgcnet_paper_r101", "torchvision R101", s) for s in paper_sizes]
cases += [("dgcnet_paper_micro", "micro ResNet (MiniCity)", (128, 256))]
grids = []
for preset, backbone_name, size in cases:
    shapes = viz.architecture.architecture_shapes(preset, size)
    sizes = [size, shapes["layer4"][2:], shapes["coord_nodes"][2:]]
    sizes = ["x".join(map(str, s)) for s in sizes]
    grids.append((preset, backbone_name, *sizes, shapes["feature_nodes"][1]))
columns = ["model", "backbone", "input", "feature", "coordinate nodes", "feature nodes"]
grids = pd.DataFrame(grids, columns=columns)
print(grids.to_string(index=False))
assert list(grids["coordinate nodes"][[0, 3, 5]]) == ["14x14", "13x13", "2x4"]

# %% [markdown]
# So "the node grid" is 14x14 for the authors' network on its 832 training crop, 13x13 for the
# paper preset at the same size (12x12 on its 768 crop), 17x33 and 16x32 on 1024x2048 frames,
# and 2x4 for the CPU demo's micro backbone on 128x256 MiniCity: quote a grid with its backbone.

# %% [markdown]
# ## 2. Fusion: a sum in the paper, a concatenation in the code
#
# The paper adds both graph outputs to the backbone feature (its fusion equation; the package's
# docstrings call it Sec. 3.4, Eq. 9, numbers unverified here; check arXiv 1909.06121):
#
# $$Y = X + \tilde X_S + \tilde X_F.$$
#
# **Where the block starts.** Each graph of the package's paper variant ends in a 1x1 conv
# and a BN (section 6). By default (`zero_init=True`, in `DualGCN` and the presets) that BN's
# scale $\gamma$ starts at 0, so $\tilde X_S = \tilde X_F = 0$ and a new block is the
# identity: pretrained features pass unchanged (the non-local-block practice; the paper, as
# summarised, says nothing about initialisation). The committed MiniCity models were trained
# with `zero_init` false, so the paper model's $\gamma$ started at BN's usual 1 (started at 0,
# the scales stayed small in that CPU budget and the graph rows equalled the baseline, as the
# comment in `experiments/configs/minicity-ablation.yaml` records). The released variant has
# no such option (the flag does nothing in the official model): its BNs start at 1. New
# blocks, and the committed models' configs and $\gamma$ now:

# %%
# NBVAL_CHECK_OUTPUT
branches = ("coordinate", "feature")
for variant in ("paper", "official"):
    new = models.DualGCN(64, variant=variant)
    gammas = [getattr(new, b).reproject[1].weight.unique().tolist() for b in branches]
    print(f"new {variant} block: gamma of {branches}: {gammas}")
for name in ("minicity-dgcnet-paper", "minicity-dgcnet-official"):
    trained, config = dgcn.committed_model(name)
    options = config.model.overrides
    print(f"{name}: head {options.get('head', 'paper')}, zero_init {options['zero_init']}")
    for branch in branches:
        g = getattr(trained.head.graph, branch).reproject[1].weight
        print(f"  {branch:<10} gamma: mean {g.mean():.3f}, from {g.min():.3f} to {g.max():.3f}")

# %% [markdown]
# The released `DualGCN` instead concatenates its branch outputs, which already contain $X$
# ($X \odot L + X$ and $\mathrm{ReLU}(X + Y)$), and fuses them by a 1x1 conv and BN (`final`):
# $Y = \mathrm{BN}\big(W_{\text{fuse}} [\,S; F\,]\big)$, $W_{\text{fuse}}$ of size $D \times 2D$.
# Both checked in float64: the paper block against its two graph modules run separately with
# the same weights, the released one against conv + BN written out. (The package never forms
# $[\,S; F\,]$: $[\,W_1 \;\; W_2\,] [\,S; F\,] = W_1 S + W_2 F$ needs no $2D$-channel tensor
# kept for backward; `dgcn.models.common.ConcatConv`, measured in `benchmarks/modules.py`.)

# %%
D = 16
x = torch.randn(2, D, 24, 40, dtype=torch.float64)

paper_block = randomize_bn(models.DualGCN(D, variant="paper")).double().eval()
coordinate = models.CoordinateGCN(D).double().eval()
feature = models.FeatureGCN(D).double().eval()
coordinate.load_state_dict(paper_block.coordinate.state_dict())
feature.load_state_dict(paper_block.feature.state_dict())
with torch.no_grad():
    torch.testing.assert_close(paper_block(x), x + coordinate(x) + feature(x), rtol=0, atol=1e-10)
print("paper DualGCN == X + X~_S + X~_F")

official_block = randomize_bn(models.DualGCN(D, variant="official")).double().eval()
with torch.no_grad():
    s, f = official_block.coordinate(x), official_block.feature(x)
    w_fuse = official_block.fuse[0].weight[:, :, 0, 0]  # [D, 2D]
    fused = torch.einsum("oc,bchw->bohw", w_fuse, torch.cat([s, f], dim=1))
    torch.testing.assert_close(
        official_block(x), bn_eval(fused, official_block.fuse[1]), rtol=0, atol=1e-10
    )
print("official DualGCN == BN(W_fuse [S; F])")

# %% [markdown]
# **The sum is a special case of the concatenation.** With $W_{\text{fuse}} = [\,I \;\; I\,]$
# and an identity BN, concat + conv returns $S + F$. The released fusion can learn that sum and
# much else, at the price of $2D^2$ weights ($524{,}288$ at $D = 512$, plus $1{,}024$ for
# the BN) and a 1x1 conv over $2D$ channels at every pixel.

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    sum_fuse = models.DualGCN(D, variant="official").double().eval()
    sum_fuse.load_state_dict(official_block.state_dict())
    sum_fuse.fuse[0].weight.copy_(torch.cat([torch.eye(D), torch.eye(D)], 1)[:, :, None, None])
    sum_fuse.fuse[1].reset_parameters()  # weight 1, bias 0, mean 0, var 1
    sum_fuse.fuse[1].eps = 0.0
    torch.testing.assert_close(sum_fuse(x), s + f, rtol=0, atol=1e-10)
print("concat + conv with W = [I I] and identity BN == S + F")
fuse_params = sum(p.numel() for p in models.DualGCN(512, variant="official").fuse.parameters())
print(f"fusion parameters at D = 512: {fuse_params:,}")

# %% [markdown]
# ## 3. The released head: `DualGCNHead`
#
# The authors' head (`DualGCNHead(2048, 512, 19)`, our `models.DualGCNHead`;
# `docs/reference/official_dgcnet.md`) reduces the 2048 backbone channels, runs the dual graph
# at width $D = 512$, and concatenates the result with the backbone feature to classify:
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
    module.register_forward_hook(lambda m, i, out, name=name: trace.append((name, out.shape)))
    for name, module in official_r101.head.named_children()
]
with torch.no_grad():
    logits = official_r101.eval()(torch.empty(1, 3, 832, 832, device="meta"))["out"]
for hook in hooks:
    hook.remove()
for name, shape in trace:
    print(f"head.{name:<11} -> {tuple(shape)}")
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
# ## 4. The backbone: dilated ResNet-101 at output stride 8, multi-grid (1, 2, 4)
#
# A ResNet halves the resolution five times (output stride 32). Segmentation wants finer maps,
# so the DeepLab-style "dilated" ResNet sets the stride of layer3 and layer4 to 1 and dilates
# their 3x3 convolutions instead (dilation 2 in layer3, 4 in layer4): every layer keeps the
# receptive field it had, and the output stays at stride 8. The authors' backbone
# (`docs/reference/official_dgcnet.md`) also has a deep stem (three 3x3 convs instead of one
# 7x7, and a max-pool in `ceil_mode`) and, in layer4, multi-grid dilations
# $4 \times (1, 2, 4) = 4, 8, 16$ for its three blocks. Read from the package's modules:

# %%
# NBVAL_CHECK_OUTPUT
backbone = official_r101.backbone
rows = []
for name in ("layer1", "layer2", "layer3", "layer4"):
    blocks = list(getattr(backbone, name).children())
    dilations = [block.conv2.dilation[0] for block in blocks]
    shown = dilations if len(set(dilations)) > 1 else f"{dilations[0]} x {len(blocks)}"
    rows.append((name, len(blocks), blocks[0].conv2.stride[0], shown, blocks[-1].bn3.num_features))
columns = ["layer", "blocks", "stride", "3x3 dilations", "out channels"]
print(pd.DataFrame(rows, columns=columns).to_string(index=False))
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
# ## 5. The auxiliary head
#
# Training adds a second classifier on layer3 (1024 channels), the authors' `dsn`: 3x3 conv
# 1024 -> 512 (with bias), BN, Dropout2d(0.1), 1x1 conv -> 19. Its loss is weighted 0.4 (the
# authors' training script, `docs/reference/official_dgcnet.md`) and it exists only in
# training mode (notebook 06); in eval mode the model returns only `"out"`.

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
# ## 6. Paper versus released code, difference by difference
#
# The paper's equations, as summarised (`docs/reference/paper_summary.md`, not its full text),
# and the authors' `DualGCNNet.py` (commit be7ebfe, `docs/reference/official_dgcnet.md`) differ
# as below (S: coordinate graph, F: feature graph); the package has both, `variant="paper"`
# and `variant="official"`:
#
# | point | paper, as summarised | released code |
# |---|---|---|
# | place | on the backbone's $X$, $D = 2048$ | in a head, on a 512-channel reduction |
# | S: nodes | pooling or strided convs, $d = 8$ | three depthwise stride-2 convs, each + BN |
# | S: adjacency | $A_S = \delta\Psi^\top$ over nodes, not normalised | softmax of $\Psi^\top\nu$ |
# | S: graph conv | $A_S\,\nu(V_S)\,W_S$, stated: no BN, no ReLU | `conv_wg` + BN (`bn_wg`) |
# | S: back to pixels | 1x1 conv to $\tilde X_S$ | `out` (1x1 conv + BN), then ReLU(out + $V_S$) |
# | S: output | added: $X + \tilde X_S$ | gated: $X \odot \mathrm{up}(G) + X$ |
# | F: graph conv | $(I - A_F) V_F W_F$ | BN after $\theta$, $\phi$, $A$ and $W$; $(I + A)$ |
# | F: output | $\tilde X_F = \Phi(H_F M_F)$, added | ReLU($X$ + BN($\Phi$(...))) |
# | fusion | $X + \tilde X_S + \tilde X_F$ | concat + 1x1 conv + BN |
#
# The package's paper variant adds one BN the summary's equations lack, after each reprojection
# (like the authors' `out` and `bn3`, and GloRe): the products grow with the number of nodes or
# pixels, and in training mode that BN divides the growth out (docstrings of
# `dgcn/models/coordinate_gcn.py`, `dgcn/models/feature_gcn.py`). Its scale is section 2's $\gamma$.
#
# **Names.** Two of the authors' names are traps. Their `node_k`, `node_q`, `node_v` are
# $\delta$, $\Psi$, $\nu$ (`node_k` is the left factor of $A_S$), which the package calls
# `query`, `key`, `value`: their `node_q` is *not* our `query`. Their `theta` is the summary's
# $\phi$ (the $D/4$ node assignment $H_F$) and their `phi` the summary's $\theta$ (the $D/2$
# features); the package avoids both letters (`to_nodes`, `to_features`). Read off the key map
# of section 8 and the modules at $D = 512$:

# %%
# NBVAL_CHECK_OUTPUT
renamed = dict(models.OFFICIAL_KEY_MAP)  # authors' prefix -> ours
released = models.DualGCN(512, variant="official")
letters = {"node_k": "delta", "node_q": "Psi", "node_v": "nu", "phi": "theta", "theta": "phi"}
rows = []
for theirs, letter in letters.items():
    inside = "gcn_local_attention." if theirs.startswith("node") else ""
    ours = renamed[f"head.dualgcn.{inside}{theirs}."].removeprefix("head.graph.")[:-1]
    conv = released.get_submodule(ours)
    channels = f"{conv.in_channels} -> {conv.out_channels}"
    rows.append((letter, theirs, ours.removesuffix(".0"), channels))
columns = ["summary", "authors'", "package", "channels at D = 512"]
print(pd.DataFrame(rows, columns=columns).to_string(index=False))

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
    ("released, D = 512", graph_official, (1, 512, 129, 257)),
]:
    params = sum(p.numel() for p in module.parameters())
    gflops = models.profile.count_flops(module, size)["Global"] / 1e9
    print(f"{name:<18} {params:>11,} parameters {gflops:7.1f} GFLOPs")

# %% [markdown]
# **Coordinate downsampling.** Average pooling ($d = 8$, `ceil_mode`) has no parameters;
# the released `local` has three depthwise 3x3 stride-2 convs with BN. Both turn the 105x105
# map of an 832 crop through the authors' deep-stem ResNet-101 into a 14x14 node grid (the
# torchvision backbone's 104x104 would give 13x13, section 1):

# %%
# NBVAL_CHECK_OUTPUT
with torch.device("meta"):
    pool = models.CoordinateGCN(512, 8, pooling="avg").downsample
    local = models.OfficialCoordinateGCN(512, 8).downsample
    h = grid_in = torch.empty(1, 512, 105, 105)
    steps = [tuple(h.shape[-2:])]
    for layer in local:
        h = layer(h)
        steps += [tuple(h.shape[-2:])] if isinstance(layer, nn.Conv2d) else []
    print(f"average pooling: {tuple(pool(grid_in).shape[-2:])}, 0 parameters")
    local_params = sum(p.numel() for p in local.parameters())
    print(f"released local:  {' -> '.join(map(str, steps))}, {local_params:,} parameters")

# %% [markdown]
# **Coordinate adjacency.** The paper's $A_S = \delta(V_S)\Psi(V_S)^\top$ is an $N' \times N'$
# matrix over the nodes with nothing normalising it: its row sums are whatever the features
# make them. The released code never forms a node-by-node matrix; it takes the softmax of a
# $D/2 \times D/2$ channel-by-channel product, whose rows sum to exactly 1. The package can
# form $A_S$ explicitly for teaching (`CoordinateGCN.adjacency`); the released matrix we
# compute from the module's `key`/`value` convs (the authors' `node_q`/`node_v`) as in its
# `forward`:

# %%
feats = torch.randn(1, D, 64, 64, dtype=torch.float64)
paper_coord = paper_block.coordinate
official_coord = official_block.coordinate
with torch.no_grad():
    A_S = paper_coord.adjacency(feats)[0]  # [N', N']
    v = official_coord.downsample(feats)
    k = official_coord.key(v).flatten(2)
    val = official_coord.value(v).flatten(2)
    A_released = torch.softmax(torch.bmm(k, val.transpose(1, 2)), dim=-1)[0]  # [D/2, D/2]
sums_paper, sums_released = A_S.sum(1), A_released.sum(1)
torch.testing.assert_close(sums_released, torch.ones_like(sums_released))
print(
    f"paper A_S {tuple(A_S.shape)}: row sums from {sums_paper.min():.2f} to {sums_paper.max():.2f}"
)
error = float((sums_released - 1).abs().max())
print(f"released {tuple(A_released.shape)}: row sums all 1 (max error {error:.1e})")

# %% [markdown]
# **Coordinate graph convolution.** The summary states that no ReLU and no BN are applied in
# the coordinate-space graph convolution. The released one has a BN after $W$ (`bn_wg` after
# `conv_wg`), returns to $D$ channels by `out`, a 1x1 conv with its own BN, and ends in
# $G = \mathrm{ReLU}(\text{out} + V_S)$; its downsampling adds three more BNs. The package's
# paper variant has only its reprojection's BN. Counted on the modules, with the feature
# graph's (see below):


# %%
# NBVAL_CHECK_OUTPUT
def count_bn(module):
    return sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in module.modules())


for branch, paper_form, released_form in [
    ("coordinate", models.CoordinateGCN, models.OfficialCoordinateGCN),
    ("feature", models.FeatureGCN, models.OfficialFeatureGCN),
]:
    counts = count_bn(paper_form(512)), count_bn(released_form(512))
    print(f"BN layers, {branch} branch: paper {counts[0]}, released {counts[1]}")

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
zeros = ~nonzero
print(f"paper: {int((added[zeros] != 0).sum())} of {int(zeros.sum())} zero inputs turn non-zero")

# %% [markdown]
# **Feature graph.** Notebook 03 showed that $(I + A)$ with $A = -A_F$ is $(I - A_F)$: the sign
# is absorbed in the learned matrix. What remains are the four BNs counted above (after the
# two projections, after $A$ and after $W$; the summary's equations have none) and the final
# $\mathrm{ReLU}(X + \cdot)$.
#
# **Fusion.** Section 2: the paper's sum equals the released concat + conv with
# $W_{\text{fuse}} = [\,I\;\;I\,]$ and an identity BN; the released code learns $W_{\text{fuse}}$.
#
# ## 7. Parameters and FLOPs per block
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
# The paper preset for comparison (the graph on the 2048-channel feature, the classifier
# torchvision's `FCNHead`: 3x3 conv 2048 -> 512, BN, ReLU, dropout, 1x1 conv), then the
# shares of the 1024x2048 training forward in the two tables:

# %%
# NBVAL_CHECK_OUTPUT
paper_table = blocks("dgcnet_paper_r101")
show(paper_table)
backbone_shares = []
for label, frame in [("released", official_table), ("paper preset", paper_table)]:
    column = frame.set_index("block")["GFLOPs 1024x2048"]
    column = column / column["total"]
    backbone_shares.append(100 * column[column.index.str.startswith("backbone.")].sum())
    graph_share = 100 * column["head.graph"]
    print(f"{label:<13} backbone {backbone_shares[-1]:4.1f} %, graph module {graph_share:4.1f} %")
assert [round(share) for share in backbone_shares] == [61, 69]

# %% [markdown]
# The dilated backbone takes 61 % (released) and 69 % (paper preset) of the FLOPs, most of
# it in layer3 and layer4, which run at stride 8 instead of 16 and 32. The released graph
# module is about 1 % of the network's FLOPs, the paper's, on 2048 channels, about 8 % (with
# the feature graph's reprojection computed as $(\Phi M_F^\top) H_F^\top$, notebook 03). The
# released head is still expensive: `reduce` and `classifier` are 3x3 convs from 2048 and
# 2560 channels at stride 8.
#
# ## 8. The authors' checkpoint
#
# The authors' Cityscapes model is a state dict of their `DualSeg_res101` (738 entries, with a
# `module.` prefix when saved from DDP). `models.OFFICIAL_KEY_MAP` renames it to ours: one
# table of prefixes, the longest match wins, everything after the prefix is unchanged.
#
# Without the file, we can still test the conversion end to end: `KEY_TABLE` lists every key
# of the authors' checkpoint with its shape. We fill a state dict with random tensors of those
# shapes (with the DDP prefix), convert it, and load it **strictly** into the network built on
# the meta device (`assign=True` puts the tensors in place of the meta parameters, so nothing
# is initialised twice).

# %%
# NBVAL_CHECK_OUTPUT
key_map = pd.DataFrame(models.OFFICIAL_KEY_MAP, columns=["authors' prefix", "our prefix"])
print(key_map.to_string(index=False))
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
n_loaded = sum(p.numel() for p in loaded.parameters())
print(f"{len(authors_state)} keys converted and loaded strictly; {n_loaded:,} parameters")
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
# `data/pretrained/dgcnet_r101_cityscapes.pth`, or where `$DGCN_OFFICIAL_CKPT` points, the
# next cell loads it, and with Cityscapes under `data/cityscapes` evaluates the first
# `EVAL_IMAGES` val images the authors' way (sliding window 832, overlap 1/3;
# `docs/reference/official_dgcnet.md`), as `dgcn evaluate --checkpoint FILE --official` does.
# For reference, not measured here: 80.5 mIoU on Cityscapes val (paper, as summarised) and
# 80.3 to 80.4 for re-runs of the released code (the authors' README), both as listed in
# `docs/reference/paper_results.md`; a handful of images is not the val set.

# %%
if not Path(OFFICIAL_CKPT).is_file():
    print(f"skipped: no authors' checkpoint at {OFFICIAL_CKPT} (set $DGCN_OFFICIAL_CKPT)")
else:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    authors_model = models.load_official_checkpoint(OFFICIAL_CKPT).to(device)
    n_params = sum(p.numel() for p in authors_model.parameters())
    print(f"loaded {OFFICIAL_CKPT}: {n_params:,} parameters")
    if not Path("data/cityscapes/leftImg8bit").is_dir():
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
# - The diagrams come from the models, every shape measured by hooks. At 832x832 the authors'
#   deep-stem ResNet-101 gives a 105x105 feature and a 14x14 coordinate grid, torchvision's
#   (the paper preset) 104x104 and 13x13; the CPU demo's micro backbone at 128x256 16x32, 2x4.
# - The paper fuses by a sum, $X + \tilde X_S + \tilde X_F$; the released code by concat + 1x1
#   conv + BN (525,312 parameters at $D = 512$), which contains the sum ($W = [\,I\;\;I\,]$).
#   A new paper block is the identity by default ($\gamma = 0$); the committed MiniCity models
#   were trained from $\gamma = 1$ (`zero_init` false); their $\gamma$ now averages 0.965-0.975.
# - The released head: conva (2048 -> 512) -> dualgcn -> convb -> concat with the backbone
#   feature (2560 channels) -> bottleneck (-> 512 -> 19), at stride 8; the auxiliary head on
#   layer3 (4,729,875 parameters) exists in training mode only. The deep stem's ceil-mode
#   max-pool makes 832 -> 105; dilations 2 and 4, 8, 16 (multi-grid) keep stride 8.
# - The paper-vs-code differences, measured: 16.0 M graph parameters on $D = 2048$ vs 1.5 M
#   on $D = 512$; unnormalised vs row-stochastic adjacency; BN and ReLU inside the released
#   coordinate graph (1 vs 5 BN layers in each branch); an additive term vs a gate that only
#   amplifies; sum vs concat + conv. The authors' `node_k`, `node_q`, `node_v` are our `query`,
#   `key`, `value`; their `theta` and `phi` are the summary's $\phi$ and $\theta$.
# - `dgcnet_official_r101` has the authors' 72,506,598 parameters, 61 % of its 1024x2048 FLOPs
#   in the backbone; their checkpoint's keys convert with one prefix table and load strictly.

# %% [markdown]
# ## Check your understanding
#
# **Q1.** In the authors' head the graph works on 512 channels, yet the classifier's first
# conv sees 2560. Where do the 2560 channels come from, and what does keeping them buy?
#
# <details><summary>Answer</summary>
#
# The 2048-channel layer4 feature $X$ concatenated with `convb`'s 512 (the graph's refined
# output): the classifier keeps the backbone's evidence beside the graph's context, like a skip
# connection, so the graphs only add what $X$ lacks; the price is the head's largest conv
# (3x3 from 2560 channels).
#
# </details>
#
# **Q2.** The same 832x832 crop gives a 105x105 feature with the authors' backbone and 104x104
# with torchvision's. Why, and why does it matter when someone quotes "the node grid"?
#
# <details><summary>Answer</summary>
#
# Both stems bring 832 to 416; the authors' max-pool (`ceil_mode=True`) gives
# $\lceil (416 + 2 - 3)/2 \rceil + 1 = 209$, torchvision's floor mode 208, and layer2's stride
# 2 makes 105 and 104: at d = 8, 14x14 against 13x13 nodes. Other inputs or backbones (the
# micro one on MiniCity: 2x4) give other grids; a grid means nothing without them.
#
# </details>
#
# **Q3.** Can the released coordinate branch suppress a feature, i.e. make an activation
# smaller in magnitude or flip its sign?
#
# <details><summary>Answer</summary>
#
# No. It returns $x \odot (1 + \mathrm{up}(G))$ with $G = \mathrm{ReLU}(\cdot) \ge 0$, a factor
# of at least 1 per activation (measured in section 6); zeros stay zero. Suppression must come
# from the fusion conv, the feature branch or later layers; the paper's $\tilde X_S$ can take
# either sign.
#
# </details>
#
# **Q4.** The auxiliary head never runs at test time. Why is it there, and why does it sit on
# layer3 rather than layer4?
#
# <details><summary>Answer</summary>
#
# Its loss (weight 0.4 in the authors' script) sends a second, shorter gradient path into the
# backbone (deep supervision); `DGCNet.forward` returns `"aux"` only in training mode, so
# inference pays nothing. On layer3 it reaches the middle of the trunk, which the main loss's
# gradient reaches only through the whole head and layer4.
#
# </details>

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Build `models.build_model("dgcnet_official_r101", multi_grid=(1, 1, 1))` on
# the meta device. Do its parameters or its FLOPs (eval forward at 768x768, with
# `models.profile.count_flops`) differ from the multi-grid (1, 2, 4) network?
#
# <details><summary>Worked answer</summary>
#
# Neither: both have 72,506,598 parameters and 1305.8 GFLOPs (eval forward, no auxiliary head:
# `models.profile.count_flops(m, (1, 3, 768, 768))["Global"]`). A dilated 3x3 conv has the
# same nine weights per input-output pair and, with padding equal to its dilation, the same
# output size, hence the same multiply-adds; dilation only changes where the kernel looks
# (layer4's receptive field).
#
# </details>
#
# **Exercise 2.** Node grids. (a) Compute by hand, with `out_size` of section 4, the layer4
# feature size of a 1025x2049 input to the authors' network and its node grid; compare with
# 1024x2048. (b) How many coordinate nodes does `dgcnet_paper_micro` have on 128x256 MiniCity
# images at d = 8, and at d = 4 (`downsample=4`)? What does that say about d = 8 (the paper's
# setting, as summarised in `docs/reference/paper_summary.md`) on small images?
#
# <details><summary>Worked answer</summary>
#
# (a) Height: stem conv $\lfloor (1025 + 2 - 3)/2 \rfloor + 1 = 513$, ceil-mode pool
# $\lceil (513 + 2 - 3)/2 \rceil + 1 = 257$, layer2 $\lfloor (257 + 2 - 3)/2 \rfloor + 1 = 129$;
# width likewise 2049 -> 1025 -> 513 -> 257. So 129x257, the same as 1024x2048: one more pixel
# does not change the feature map. The three stride-2 convs of the coordinate branch then give
# 129 -> 65 -> 33 -> 17 and 257 -> 129 -> 65 -> 33: a 17x33 grid, 561 nodes.
#
# (b) The micro backbone gives a 16x32 feature: $2 \times 4 = 8$ nodes at d = 8, $4 \times 8 =
# 32$ at d = 4. Eight nodes, each the mean of an 8x8 block of features (64x64 pixels), is a
# very coarse graph; d = 8 suits 105x105 features (196 nodes), and small images want a smaller
# d (the committed MiniCity models use d = 2, `experiments/configs/minicity-ablation.yaml`).
# Check both with `viz.architecture.architecture_shapes(model, size)["coord_nodes"]`.
#
# </details>
#
# **Exercise 3.** Remove the concatenation with the backbone feature from the authors' head
# (step 4 of section 3), so that the bottleneck sees only `convb`'s 512 channels. How many
# parameters does the bottleneck lose?
#
# <details><summary>Worked answer</summary>
#
# The weights that read the 2048 backbone channels: a 3x3 conv 2048 -> 512 without bias,
# $2048 \cdot 512 \cdot 9 = 9{,}437{,}184$ parameters, the first 2048 input channels of
# `head.classifier[0].weight` (shape 512 x 2560 x 3 x 3; `weight[:, :2048].numel()`), about
# 13 % of the network.
#
# </details>
#
# **Exercise 4.** Build it yourself: in about 40 lines of plain torch, write the paper's block
# `models.DualGCN(D, variant="paper")` (average pooling, d = 8) from the equations of
# `docs/reference/paper_summary.md`: `my_dual_gcn(x, p, d=8)` of a batch `x` (B x D x H x W,
# H and W multiples of d) and the package block's state dict `p`, returning
# $X + \tilde X_S + \tilde X_F$. You need section 6's names ($\delta, \Psi, \nu$ are
# `coordinate.query`, `key`, `value`, with biases; $\theta$ is `feature.to_features`, $\phi$
# `feature.to_nodes`), the docstrings' storage (a `state_update` weight holds $W^\top$,
# `feature.adjacency.weight[:, :, 0]` is $A_F$) and each reprojection's BN, in eval mode
# $(z - \text{mean}) / \sqrt{\text{var} + \epsilon} \cdot \text{weight} + \text{bias}$. Check
# it with `torch.testing.assert_close` (float64, eval mode) after `randomize_bn`: why that?
#
# <details><summary>Worked answer</summary>
#
# Without `randomize_bn` the block keeps the package's default $\gamma = 0$ (section 2): both
# graph terms are exactly 0 and any graph code would pass. The equations upsample $M_S$ before
# the 1x1 conv; the package reprojects at node resolution first. In eval mode the two agree: a
# 1x1 conv + BN is the same affine map at every pixel, and bilinear weights sum to 1.
#
# ```python
# from torch.nn.functional import interpolate
#
#
# def rows(z):  # [B, k, h, w] -> [B, h w, k]: one row per pixel or node, as X is N x D
#     return z.flatten(2).transpose(1, 2)
#
#
# def conv1x1(r, p, name):  # a 1x1 conv on rows; its weight is [out, in, 1] or [out, in, 1, 1]
#     out = r @ p[name + ".weight"].flatten(1).T
#     return out + p[name + ".bias"] if name + ".bias" in p else out
#
#
# def bn(r, p, name, eps=1e-5):  # eval-mode BatchNorm on rows
#     scale = p[name + ".weight"] / torch.sqrt(p[name + ".running_var"] + eps)
#     return (r - p[name + ".running_mean"]) * scale + p[name + ".bias"]
#
#
# def my_dual_gcn(x, p, d=8):
#     B, D, H, W = x.shape
#     # coordinate space: V_S = H_S X (d x d means), A_S = delta Psi^T, M_S = A_S nu W_S
#     V_S = rows(x.reshape(B, D, H // d, d, W // d, d).mean((3, 5)))  # [B, N', D]
#     delta, Psi, nu = (conv1x1(V_S, p, f"coordinate.{n}") for n in ("query", "key", "value"))
#     A_S = delta @ Psi.transpose(1, 2)  # [B, N', N']
#     M_S = conv1x1(A_S @ nu, p, "coordinate.state_update")  # [B, N', D/2]
#     M_S = M_S.transpose(1, 2).reshape(B, D // 2, H // d, W // d)
#     up = rows(interpolate(M_S, (H, W), mode="bilinear", align_corners=True))  # [B, N, D/2]
#     X_S = bn(conv1x1(up, p, "coordinate.reproject.0"), p, "coordinate.reproject.1")
#     # feature space: H_F = phi(X), V_F = H_F^T theta(X), M_F = (I - A_F) V_F W_F
#     X = rows(x)  # [B, N, D]
#     H_F = conv1x1(X, p, "feature.to_nodes")  # [B, N, D/4]
#     V_F = H_F.transpose(1, 2) @ conv1x1(X, p, "feature.to_features")  # [B, D/4, D/2]
#     A_F = p["feature.adjacency.weight"][:, :, 0]
#     M_F = conv1x1(V_F - A_F @ V_F, p, "feature.state_update")  # [B, D/4, D/2]
#     X_F = bn(conv1x1(H_F @ M_F, p, "feature.reproject.0"), p, "feature.reproject.1")
#     return (X + X_S + X_F).transpose(1, 2).reshape(B, D, H, W)  # X + X~_S + X~_F
#
#
# block = randomize_bn(models.DualGCN(16, variant="paper")).double().eval()
# x = torch.randn(2, 16, 24, 40, dtype=torch.float64)
# with torch.no_grad():
#     torch.testing.assert_close(my_dual_gcn(x, block.state_dict()), block(x))
# print("my_dual_gcn(x, p) == models.DualGCN(16, variant='paper')(x), float64, eval mode")
# ```
#
# </details>

# %%
# The numeric answers above, checked
with torch.device("meta"):
    grid_model = models.build_model("dgcnet_official_r101")
    flat_model = models.build_model("dgcnet_official_r101", multi_grid=(1, 1, 1))
    micro_d = {d: models.build_model("dgcnet_paper_micro", downsample=d) for d in (8, 4)}
counts = [
    (sum(p.numel() for p in m.parameters()), models.profile.count_flops(m, (1, 3, 768, 768)))
    for m in (grid_model, flat_model)
]
assert counts[0] == counts[1] and counts[0][0] == 72_506_598  # exercise 1
assert round(counts[0][1]["Global"] / 1e9, 1) == 1305.8
assert [out_size(out_size(out_size(n), ceil=True)) for n in (1025, 2049)] == [129, 257]  # ex. 2
recorded = viz.architecture.architecture_shapes(grid_model, (1025, 2049))
assert recorded["layer4"][2:] == (129, 257) and recorded["coord_nodes"][2:] == (17, 33)
for d, nodes in [(8, (2, 4)), (4, (4, 8))]:
    recorded = viz.architecture.architecture_shapes(micro_d[d], (128, 256))
    assert recorded["layer4"][2:] == (16, 32) and recorded["coord_nodes"][2:] == nodes
bottleneck = grid_model.head.classifier[0].weight[:, :2048]  # exercise 3
assert bottleneck.numel() == 2048 * 512 * 9 == 9_437_184
assert round(100 * 9_437_184 / 72_506_598) == 13
print("every numeric answer checked")
# Exercise 4's worked answer as printed above, read from this notebook's file and run: the
# folded text is the code that nbval checks
cells = json.loads(Path("notebooks/04_dgcnet_model.ipynb").read_text())["cells"]
texts = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
exec(next(t for t in texts if "def my_dual_gcn" in t).split("```python\n")[1].split("```")[0])

# %% [markdown]
# ## References
#
# - Zhang, Li, Arnab, Yang, Tong, Torr, *Dual Graph Convolutional Network for Semantic
#   Segmentation*, BMVC 2019 (arXiv 1909.06121): the two graphs, their fusion by a sum and the
#   network figure (the package's docstrings place them in Sec. 3.2-3.4, Eq. 9 and Fig. 2;
#   section, equation and figure numbers unverified here; check arXiv 1909.06121). Its
#   equations as summarised: `docs/reference/paper_summary.md`, the letters
#   `docs/reference/notation.md`; its numbers: `docs/reference/paper_results.md`.
# - The authors' code: github.com/lxtGH/GALD-DGCNet, `libs/models/DualGCNNet.py`
#   (`DualGCNHead`, `DualGCN`, `SpatialGCN`, `ResNet`; commit be7ebfe), described in
#   `docs/reference/official_dgcnet.md`; the key mapping in `dgcn/models/official.py`.
# - Chen, Papandreou, Kokkinos, Murphy, Yuille, *DeepLab* (TPAMI 2018): atrous (dilated)
#   convolution; Chen, Papandreou, Schroff, Adam, *Rethinking Atrous Convolution* (2017):
#   multi-grid. GloRe (Chen et al., CVPR 2019), whose construction the feature graph follows.
# - PyTorch: `torch.utils.flop_counter.FlopCounterMode`, the meta device, forward hooks,
#   `Module.load_state_dict(strict=True, assign=True)`; torchvision `models.resnet.Bottleneck`,
#   `models.segmentation.fcn.FCNHead`.
# - Package: `dgcn/models/dual_gcn.py`, `coordinate_gcn.py`, `feature_gcn.py`, `network.py`,
#   `backbone.py`, `official.py`, `profile.py`; the diagrams: `dgcn/viz/architecture.py`.
