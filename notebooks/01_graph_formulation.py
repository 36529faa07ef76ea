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
# # 01 · Graph formulation
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/01_graph_formulation.ipynb)
#
# DGCNet treats a feature map as a graph and reasons over it with graph convolutions. Before
# its two graphs (notebooks 02 and 03) this notebook sets up the language: a segmentation
# network labels the nodes of a pixel graph; one graph convolution is
# $\tilde X = \sigma(A X W)$ (the paper, as summarised: `docs/reference/paper_summary.md`;
# the letters are those of the book's notation card, `docs/reference/notation.md`); a
# convolution is a graph convolution on a fixed local graph; and the obvious alternative, a
# dense graph over all pixels, costs gigabytes per image. We end by measuring how far a
# dilated FCN actually *sees*: its receptive field in theory and in practice, which is the gap
# the graph modules are meant to close.
#
# You will:
#
# - write a 3x3 convolution as a graph convolution on the grid graph and check it numerically;
# - compute one GCN layer by hand on a 5-node graph, with loops and with matrices;
# - tabulate the memory of a dense pixel adjacency at Cityscapes sizes;
# - compute the theoretical receptive field of a dilated ResNet from its layers, check it
#   against the gradient, and measure the effective one on inputs that hold the whole field.
#
# | mode | what runs | time |
# |---|---|---|
# | CPU smoke (`DGCN_SMOKE=1`) | toy graphs; receptive fields: 513 px, 2 inputs | 15-20 s |
# | full (a CPU is enough) | receptive fields: 513 px, 8 inputs | ~1 min |
#
# (Times for 2 CPU cores; the receptive-field cell prints its own. Nothing here needs a GPU.)

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
# Every constant that costs time, set once from `SMOKE`.

# %%
# ruff: noqa: E402, B018, F401 (imports where needed; last expressions shown; setup imports)
# %matplotlib inline
ERF_SIZE = 513  # side of the square input of the receptive-field study: it holds the field
ERF_SAMPLES = 2 if SMOKE else 8  # random inputs averaged for the effective receptive field

# %% [markdown]
# ## 1. Segmentation as a pixel graph
#
# A backbone turns an image into a feature map: $N = HW$ positions, each with a $D$-dimensional
# feature. Stack the features as rows of $X \in \mathbb{R}^{N \times D}$. A *graph* over the
# positions is a matrix $A \in \mathbb{R}^{N \times N}$: $A_{ij}$ says how much node $i$ listens
# to node $j$. One graph convolution, in the paper, as summarised
# (`docs/reference/paper_summary.md`, "A graph convolution"), is
#
# $$\tilde X = \sigma(A X W), \qquad \tilde x_i = \sigma\Big(\sum_{j} A_{ij}\, x_j W\Big),$$
#
# with $W \in \mathbb{R}^{D \times D'}$ a learned matrix shared by all nodes ($D'$, the number
# of output channels, is a letter of this notebook only) and $\sigma$ the layer's
# non-linearity. Each node gathers the features of its neighbours, weighted by the edges, and
# transforms them with the same $W$. Three choices define a graph layer: **what the nodes are**
# (pixels, a coarse grid of positions, or abstract clusters), **where the edges come from**
# (fixed by the layout, or computed from the features as DGCNet does), and **how they are
# normalised**. The $C$ classes come only at the end: a classifier labels each node (pixel).
#
# A convolution is the special case of a fixed, local graph. Take a 3x3 kernel whose nine taps
# share one matrix $W$ (no dependence on the direction). Then
# $\mathrm{conv}(X)_i = \sum_{j \in \mathcal{N}_3(i)} x_j W = (A_{\text{grid}} X W)_i$, where
# $A_{\text{grid}}$ has a 1 for every pair of positions at most one step apart (8 neighbours
# plus the node itself) and 0 elsewhere; zero padding is simply a missing neighbour. A real
# convolution has nine different $W$s, one per direction, which a graph with one edge weight
# cannot express: it is *more* expressive locally, but it never connects positions more than
# one step apart. A graph can connect any two positions in one layer.

# %%
import torch
import torch.nn.functional as F

torch.manual_seed(0)
H, W_GRID, D_IN, D_OUT = 4, 5, 3, 2  # the grid is H x W_GRID; D_IN = D, D_OUT = D'
rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W_GRID), indexing="ij")
rows, cols = rows.flatten(), cols.flatten()
# A_grid[i, j] = 1 when positions i and j are at most one step apart (8-neighbourhood + self)
A_grid = (
    ((rows[:, None] - rows[None, :]).abs() <= 1) & ((cols[:, None] - cols[None, :]).abs() <= 1)
).double()

x = torch.randn(1, D_IN, H, W_GRID, dtype=torch.float64)
weight = torch.randn(D_IN, D_OUT, dtype=torch.float64)  # W, shared by the nine taps
kernel = weight.T[:, :, None, None].expand(D_OUT, D_IN, 3, 3)  # conv weight [out, in, 3, 3]
by_conv = F.conv2d(x, kernel, padding=1)  # [1, D', H, W]
X = x[0].flatten(1).T  # [N, D]: one row per position
by_graph = A_grid @ X @ weight  # [N, D']
torch.testing.assert_close(by_graph, by_conv[0].flatten(1).T)
print(f"3x3 convolution with shared taps == A_grid X W on a {H}x{W_GRID} grid: checked")
print(f"A_grid: {A_grid.shape[0]} x {A_grid.shape[1]}, {int(A_grid.sum())} non-zero entries")

# %% [markdown]
# The grid adjacency is sparse and banded: each row has at most 9 ones, near the diagonal and
# near the diagonals $\pm$ `W_GRID` (the positions one grid row above and below). The colour
# bar gives the value of each entry.

# %%
viz.graphs.adjacency_heatmap(A_grid, title=f"A_grid of a {H}x{W_GRID} grid (row-major positions)")

# %% [markdown]
# ## 2. One GCN layer by hand
#
# A 5-node toy graph: think of five image regions with 3-dimensional features. Kipf and
# Welling's GCN, the standard form of a graph convolution, adds self-loops ($A + I$) and
# normalises the adjacency symmetrically, so that high-degree nodes do not dominate. Write
# $\mathrm{Deg}$ for the diagonal matrix of the degrees with self-loops (not $D$, which on the
# notation card is the number of channels) and take $\sigma = \mathrm{ReLU}$:
#
# $$\hat A = \mathrm{Deg}^{-1/2} (A + I)\, \mathrm{Deg}^{-1/2}, \qquad
# \mathrm{Deg}_{ii} = \sum_j (A + I)_{ij}, \qquad \tilde X = \mathrm{ReLU}(\hat A X W).$$
#
# Entry by entry, $\tilde x_{ik} = \max\big(0, \sum_j \sum_d \hat A_{ij} X_{jd} W_{dk}\big)$,
# with $\hat A_{ij} = (A+I)_{ij} / \sqrt{\mathrm{Deg}_{ii} \mathrm{Deg}_{jj}}$. We compute it
# twice: with explicit loops over $i, j, d, k$ (the definition) and with two matrix products.
# DGCNet's graphs are *learned* and *not* normalised this way (notebooks 02 and 03); the layer
# is the same.

# %%
edges = [(0, 1), (0, 2), (1, 2), (1, 3), (3, 4)]  # undirected
n = 5
A = torch.zeros(n, n, dtype=torch.float64)
for i, j in edges:
    A[i, j] = A[j, i] = 1.0
I = torch.eye(n, dtype=torch.float64)
X = torch.tensor(
    [[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [2.0, 0.0, 1.0], [0.0, 2.0, 1.0]],
    dtype=torch.float64,
)  # [N, D] = [5, 3]
W = torch.tensor([[1.0, -1.0], [0.5, 1.0], [-1.0, 0.5]], dtype=torch.float64)  # [D, D']

# %% [markdown]
# First the definition, one scalar at a time:

# %%
A_loop = A + I
degree = [sum(A_loop[i, j].item() for j in range(n)) for i in range(n)]
A_hat_loops = torch.zeros(n, n, dtype=torch.float64)
for i in range(n):
    for j in range(n):
        A_hat_loops[i, j] = A_loop[i, j] / (degree[i] * degree[j]) ** 0.5
out_loops = torch.zeros(n, W.shape[1], dtype=torch.float64)
for i in range(n):
    for k in range(W.shape[1]):
        total = 0.0
        for j in range(n):
            for d in range(X.shape[1]):
                total += A_hat_loops[i, j].item() * X[j, d].item() * W[d, k].item()
        out_loops[i, k] = max(0.0, total)

# %% [markdown]
# Then the same with matrices, checked against the loops:

# %%
# NBVAL_CHECK_OUTPUT
deg_inv_sqrt = torch.diag((A + I).sum(1).rsqrt())  # Deg^(-1/2)
A_hat = deg_inv_sqrt @ (A + I) @ deg_inv_sqrt
out_matrix = torch.relu(A_hat @ X @ W)

torch.testing.assert_close(A_hat_loops, A_hat)
torch.testing.assert_close(out_loops, out_matrix)
torch.set_printoptions(precision=3, sci_mode=False)
print("degrees with self-loops:", degree)
print("A_hat =\n", A_hat)
print("A_hat X W =\n", A_hat @ X @ W)
print("ReLU(A_hat X W) =\n", out_matrix)

# %% [markdown]
# Matrix products are associative: $(\hat A X) W = \hat A (X W)$. The result is the same but
# the cost is not. With $N$ nodes, $D$ input and $D'$ output channels, $(\hat A X) W$ costs
# $N^2 D + N D D'$ multiply-adds and $\hat A (X W)$ costs $N D D' + N^2 D'$. Notebook 02 uses
# the same freedom on the coordinate graph, where choosing the order turns an
# $O(N^2)$ computation into an $O(N)$ one.
#
# The normalised adjacency is one step from the graph's **Laplacian**: $L = I - \hat A$ is the
# symmetric normalised Laplacian of the graph with self-loops, so $\hat A X = X - L X$, a
# smoothing of the features over the edges. Since every row of $A + I$ sums to its degree,
# $L$ sends the vector of square-rooted degrees to zero, and its eigenvalues lie in $[0, 2]$;
# the cell checks both. The feature graph of the paper, as summarised, has the same shape,
# $(I - A_F) V_F W_F$ with a *learned* $A_F$, "Laplacian smoothing considered" in its words
# (notebook 03).

# %%
torch.testing.assert_close((A_hat @ X) @ W, A_hat @ (X @ W))
L = I - A_hat
sqrt_degree = torch.tensor(degree, dtype=torch.float64).sqrt()
torch.testing.assert_close(L @ sqrt_degree, torch.zeros(n, dtype=torch.float64))
eigenvalues = torch.linalg.eigvalsh(L)
assert eigenvalues.min() > -1e-12 and eigenvalues.max() < 2 + 1e-12
low, high = eigenvalues.min(), eigenvalues.max()
print(f"eigenvalues of L from {low:.1e} (zero up to rounding) to {high:.3f}")
viz.graphs.adjacency_heatmap(A_hat, title="normalised adjacency A_hat of the toy graph")

# %% [markdown]
# ## 3. What a dense pixel graph costs
#
# The most general graph over pixels connects every position to every other: $A$ is a dense
# $N \times N$ matrix, computed from the features (as in non-local networks). Its size depends
# on the feature map the graph sees, the backbone's stride-8 output. We measure that map for
# Cityscapes inputs (a 1024 x 2048 frame, the authors' 769 crops, 768 crops) on the two
# ResNet-101s of the book: the authors' deep-stem one and torchvision's (the
# `cityscapes-paper` preset). The `meta` device runs the layers on shapes only, without
# memory or arithmetic.


# %%
# NBVAL_CHECK_OUTPUT
def stride8_size(backbone: torch.nn.Module, height: int, width: int) -> tuple[int, int]:
    """(H, W) of the backbone's layer4 feature for one height x width image, on shapes only."""
    with torch.no_grad():
        return tuple(backbone(torch.empty(1, 3, height, width, device="meta"))["out"].shape[-2:])


with torch.device("meta"):
    resnet101s = {
        "authors' R101": models.deep_stem_resnet101().eval(),
        "torchvision R101": models.torchvision_resnet(101, output_stride=8).eval(),
    }
feature_size = {}
for name, backbone in resnet101s.items():
    for height, width in ((1024, 2048), (769, 769), (768, 768)):
        feature_size[name, height, width] = size = stride8_size(backbone, height, width)
        print(f"{name}, {height} x {width} input: stride-8 feature {size[0]} x {size[1]}")

# %% [markdown]
# The authors' max-pool rounds up (`ceil_mode=True`), torchvision's rounds down, hence 129 x 257
# against 128 x 256 on a frame and 97 against 96 on a 768 crop. The graph nodes of the table's
# first row are those of the authors' backbone on a frame at $d = 8$: $\lceil 129/8 \rceil
# \times \lceil 257/8 \rceil$ (notebook 02, Section 3 tabulates the node grids of both
# backbones and of the MiniCity micro backbone). The last row is the full image, two million
# pixels. One float32 matrix of $N^2$ entries, for one image and one layer, before any gradient
# is stored:


# %%
def human_bytes(count: float) -> str:
    """A byte count with a binary unit: 1,024 B = 1.0 KiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:,.1f} {unit}"
        count /= 1024


assert human_bytes(4 * 33_153**2) == "4.1 GiB" and human_bytes(1024**4 * 16) == "16.0 TiB"

# %%
# NBVAL_CHECK_OUTPUT
import math

import pandas as pd

frame = feature_size["authors' R101", 1024, 2048]
sizes = {
    "authors' R101, frame: nodes at d = 8": tuple(math.ceil(s / 8) for s in frame),
    "authors' R101, 769 crop: stride-8 feature": feature_size["authors' R101", 769, 769],
    "authors' R101, frame: stride-8 feature": frame,
    "full frame 1024 x 2048": (1024, 2048),
}
table = pd.DataFrame(
    [
        {
            "map": name,
            "H x W": f"{h} x {w}",
            "N": f"{h * w:,}",
            "dense A (float32)": human_bytes(4 * (h * w) ** 2),
            "GFLOPs of A X, D = 512": f"{2 * (h * w) ** 2 * 512 / 1e9:,.1f}",
        }
        for name, (h, w) in sizes.items()
    ]
).set_index("map")
assert sizes["authors' R101, frame: nodes at d = 8"] == (17, 33) and frame == (129, 257)
table

# %% [markdown]
# A dense graph on the stride-8 feature needs 4.1 GiB *per image and per layer* just to hold
# $A$ (its gradient doubles that), and at full resolution 16 TiB. DGCNet avoids both: the
# coordinate graph runs on a grid downsampled by $d = 8$ (the first row: 561 nodes, a 1.2 MiB
# matrix, and it never even forms it, notebook 02), and the feature graph has only
# $D_2 = D/4$ nodes (notebook 03).

# %% [markdown]
# ## 4. How far does a dilated FCN see?
#
# A plain FCN relies on stacked convolutions for context. The **theoretical receptive field**
# of a unit is the input window it depends on at all. Going through the layers in order, with
# $r$ the size of the window and $j$ the distance in input pixels between neighbouring units
# (the *jump*), a layer with kernel $k$, dilation $\delta$ and stride $s$ gives
#
# $$r \leftarrow r + (k - 1)\,\delta\, j, \qquad j \leftarrow j\, s,$$
#
# starting from $r = j = 1$ (this $\delta$ is a dilation, not the card's 1x1 convolution). On a
# ResNet the longest path runs through the 3x3 convolutions of every block (the 1x1 shortcuts
# add nothing). DGCNet's backbones are *dilated*: layer3 and layer4 keep stride 8 and use
# dilation 2 and 4 instead, which keeps the resolution and still grows the window quickly.

# %%
from torch import nn


def receptive_field(backbone: nn.Module) -> list[tuple[str, int, int]]:
    """(stage, receptive field, jump) after each stage, from the convs and pools in order."""

    def first(value):  # nn.Conv2d stores (k, k) tuples, nn.MaxPool2d plain ints
        return value if isinstance(value, int) else value[0]

    r, j, stages = 1, 1, []
    for stage in ("stem", "layer1", "layer2", "layer3", "layer4"):
        for name, layer in getattr(backbone, stage).named_modules():
            if "downsample" in name or not isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                continue
            k, dil, s = first(layer.kernel_size), first(layer.dilation), first(layer.stride)
            r, j = r + (k - 1) * dil * j, j * s
        stages.append((stage, r, j))
    return stages


# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
backbones = {
    "micro (dgcnet_paper_micro)": models.micro_resnet(output_stride=8),
    "ResNet-18, output stride 8": models.torchvision_resnet(18, output_stride=8),
}
theory = {}
for label, backbone in backbones.items():
    stages = receptive_field(backbone)
    theory[label] = stages[-1][1]
    print(label)
    for stage, r, j in stages:
        print(f"  after {stage:7s} receptive field {r:4d} px, stride {j}")
assert theory["ResNet-18, output stride 8"] == 483 and theory["micro (dgcnet_paper_micro)"] == 239

# %% [markdown]
# But not every pixel of that window matters equally. Luo et al. (2016) define the
# **effective receptive field** as the gradient of one output unit with respect to the input:
# $\big|\partial y / \partial\, \text{image}\big|$, where $y$ is the sum over channels of the
# layer4 feature at the centre position. We average it over random inputs and measure the
# half-width $\rho_p$ of the smallest centred square that holds a fraction $p$ of the
# gradient's total magnitude. The networks have **random weights** (no training; the micro
# network has no pretrained weights at all) and BatchNorm in eval mode, so the images of a
# batch do not interact.
#
# **The input must hold the whole window**, or the border cuts the gradient and the measured
# field is bounded by the input instead of measured. ResNet-18's window (483 px) fits in
# `ERF_SIZE` = 513 px, and $513 = 8 \cdot 64 + 1$ puts the centre unit of the stride-8 map over
# the input's centre pixel, so the window sits in the middle of the image (the cell below
# checks where it lies).
#
# **Derive, then verify.** A pixel outside the theoretical window has no path to the unit, so
# its gradient is exactly zero. A pixel on the window's edge is reached through the outermost
# taps of every layer; with many channels, some of those paths are open (ReLU and max-pool let
# them through) for a random input, so its mean gradient is not zero. The non-zero part of the
# gradient should therefore be exactly the theoretical window, in rows and in columns: the
# recurrence above, checked by autograd (the asserts below).


# %%
def effective_receptive_field(backbone: nn.Module, size: int, samples: int) -> torch.Tensor:
    """Mean |d y / d image| over random images; y: layer4's centre unit, summed over channels."""
    backbone.eval()
    images = torch.randn(samples, 3, size, size, requires_grad=True)
    out = backbone(images)["out"]
    cy, cx = out.shape[-2] // 2, out.shape[-1] // 2
    out[:, :, cy, cx].sum().backward()  # eval mode: the samples do not interact
    return images.grad.abs().sum(1).mean(0)  # [size, size]


def half_width(grad: torch.Tensor, fraction: float) -> int:
    """The smallest rho such that the centred (2 rho + 1)^2 square holds `fraction` of |grad|."""
    total, c = grad.sum(), grad.shape[-1] // 2
    for rho in range(c + 1):
        if grad[c - rho : c + rho + 1, c - rho : c + rho + 1].sum() >= fraction * total:
            return rho
    return c


def support(grad: torch.Tensor) -> tuple[int, int]:
    """First and last row of the input where the gradient is not zero."""
    nonzero = grad.sum(1).nonzero()
    return int(nonzero.min()), int(nonzero.max())


# %%
import time

torch.manual_seed(0)
erf, start = {}, time.perf_counter()
for label, backbone in backbones.items():
    erf[label] = grad = effective_receptive_field(backbone, ERF_SIZE, ERF_SAMPLES)
    first_row, last_row = support(grad)
    extent = last_row - first_row + 1
    assert extent == theory[label], "the gradient's support is the theoretical window"
    assert support(grad.T) == (first_row, last_row), "in the columns too"
    assert 0 < first_row and last_row < ERF_SIZE - 1, "the window lies inside the input"
    assert first_row + last_row == ERF_SIZE - 1, "centred on the input's centre pixel"
    w50, w95 = (2 * half_width(grad, p) + 1 for p in (0.5, 0.95))
    assert w50 < w95 < extent  # the measured claim of the text below
    print(
        f"{label}: gradient non-zero on rows {first_row}..{last_row} ({extent} px = theory); "
        f"50 % within {w50} px ({w50 / extent:.2f} of it), 95 % within {w95} px "
        f"({w95 / extent:.2f})"
    )
seconds = time.perf_counter() - start
print(f"input {ERF_SIZE} x {ERF_SIZE} px, {ERF_SAMPLES} random images, {seconds:.0f} s")

# %% [markdown]
# The figure shows both networks' mean $|\partial y / \partial\, \text{image}|$ over the whole
# input, divided by its maximum, on a log colour scale (the colour bar): the dashed square is
# the theoretical window, the solid one holds 95 % of the gradient, the dotted one 50 %. Below
# each map, the centre row on a linear scale.

# %%
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

SQUARES = {"theoretical window": "--", "95 % of |gradient|": "-", "50 % of |gradient|": ":"}


def draw_erf(fig, ax_map, ax_cut, label: str, grad: torch.Tensor) -> None:
    """One network's gradient map (log scale, with its colour bar) and its centre row."""
    centre, offsets = ERF_SIZE // 2, torch.arange(ERF_SIZE) - ERF_SIZE // 2
    halves = [theory[label] // 2, half_width(grad, 0.95), half_width(grad, 0.5)]
    normalised = (grad / grad.max()).clamp_min(1e-4)
    shown = ax_map.imshow(normalised, cmap="inferno", norm=LogNorm(1e-4, 1))
    fig.colorbar(shown, ax=ax_map, shrink=0.8, label="|gradient| / max (log)")
    for half, style in zip(halves, SQUARES.values(), strict=True):
        corner = centre - half - 0.5
        ax_map.add_patch(Rectangle((corner, corner), 2 * half + 1, 2 * half + 1, fill=False))
        ax_map.patches[-1].set(edgecolor="cyan", linestyle=style)
        for sign in (-1, 1):
            ax_cut.axvline(sign * half, color="tab:cyan", ls=style, lw=1)
    ax_map.set_title(f"{label}\nthe whole {ERF_SIZE} x {ERF_SIZE} input", fontsize=8)
    ax_map.set_xticks([0, centre, ERF_SIZE - 1])
    ax_map.set_yticks([0, centre, ERF_SIZE - 1])
    ax_map.tick_params(labelsize=7)
    ax_cut.plot(offsets, (grad[centre] / grad[centre].max()).numpy(), lw=1, color="k")
    ax_cut.set_xlim(-centre, centre)
    ax_cut.set(xlabel="offset from the centre (px)", ylabel="|gradient| / max (linear)")
    ax_cut.set_title("the centre row", fontsize=8)
    ax_cut.grid(alpha=0.3)


# %%
fig = viz.new_figure((7.6, 6.4), dpi=90)
axes = fig.subplots(2, 2)
for (label, grad), column in zip(erf.items(), axes.T, strict=True):
    draw_erf(fig, column[0], column[1], label, grad)
handles = [Line2D([], [], color="tab:cyan", ls=style) for style in SQUARES.values()]
fig.legend(handles, SQUARES, loc="outside lower center", ncols=3, fontsize=8)
fig

# %% [markdown]
# **What the measurement says** (the numbers the measurement cell printed in the run stored
# with this notebook: smoke mode, 2 random inputs; 8 inputs print their own, and its asserts
# hold for both). The non-zero gradient covers exactly the theoretical window, rows 15 to 497
# (483 px) for ResNet-18 and rows 137 to 375 (239 px) for the micro network, inside the
# 513-pixel input, so nothing was cut by the border. Yet half of the gradient of ResNet-18
# lies in a square 127 px wide, 0.26 of the window's width, and 95 % in 295 px (0.61); the
# micro network's 50 % square is 41 px of its 239 (0.17: half of its gradient comes from the
# few pixels right under the unit), its 95 % square 159 px (0.67). The gradient is
# concentrated in the middle of the theoretical window and fades towards its edges (the log
# scale shows how far the faint tail reaches): the effective field is a fraction of the
# theoretical one, as Luo et al. observed. These are untrained networks; Luo et al. report
# that training widens the effective field (not measured here). Either way, a pixel on the
# left of a street sees the right side only weakly, through many layers. That is the
# motivation of the paper's graph modules: in one layer, every node of the coordinate graph is
# connected to every other node, and every pixel of the feature graph to every feature-space
# node, whatever the distance.

# %% [markdown]
# ## Summary
#
# - A graph convolution $\tilde X = \sigma(A X W)$ (the paper, as summarised) gathers the
#   neighbours' features with the weights of $A$ and transforms them with a shared $W$. A 3x3
#   convolution with shared taps is the special case of the fixed 8-neighbour grid graph
#   (checked numerically on a 4 x 5 grid).
# - The same GCN layer computed with loops and with matrices agrees; associativity lets us
#   choose the cheaper order of the products, which notebook 02 exploits. $L = I - \hat A$ is
#   the normalised Laplacian; the feature graph's $(I - A_F)$ has that form.
# - A dense graph over the stride-8 positions of a Cityscapes frame (129 x 257 on the authors'
#   ResNet-101, measured on the meta device) would need 4.1 GiB per image and layer for $A$
#   alone, 16 TiB at full resolution: DGCNet uses small graphs instead (17 x 33 coordinate
#   nodes on that frame at $d = 8$, $D_2 = D/4$ feature nodes).
# - The dilated ResNet-18 sees 483 px in theory, and its gradient covers exactly those 483 px
#   of a 513-pixel input; but half of it lies within 127 px and 95 % within 295 px (random
#   weights, 2 inputs, the printed values): graph reasoning connects distant positions in one
#   step.

# %% [markdown]
# ## Check your understanding
#
# **Q1.** What can a 3x3 convolution express that a graph convolution on the 8-neighbour grid
# graph with one weight per edge cannot, and what can a graph convolution do that a single
# convolution cannot?
#
# <details><summary>Answer</summary>
#
# A convolution has a different weight matrix per direction (nine $W$s), so it can tell the
# neighbour above from the one below; the grid graph with one $W$ cannot. A graph can connect
# any two positions in one layer, whereas a convolution only reaches one step (times its
# dilation).
#
# </details>
#
# **Q2.** Why does the symmetric normalisation $\mathrm{Deg}^{-1/2}(A + I)\mathrm{Deg}^{-1/2}$
# matter for a graph whose nodes have very different degrees?
#
# <details><summary>Answer</summary>
#
# Without it a node's output is a *sum* over its neighbours, so high-degree nodes get outputs
# that grow with their degree; dividing by $\sqrt{\mathrm{Deg}_{ii}\mathrm{Deg}_{jj}}$ keeps the
# scale comparable across nodes (and keeps repeated layers from blowing up). DGCNet's learned
# graphs are not normalised this way (notebooks 02 and 03), which is why their sums grow with
# the image size (notebook 09).
#
# </details>
#
# **Q3.** $(\hat A X) W$ and $\hat A (X W)$ give the same numbers. When is the second cheaper?
#
# <details><summary>Answer</summary>
#
# The costs are $N^2 D + N D D'$ and $N D D' + N^2 D'$, so $\hat A (X W)$ is cheaper when
# $D' < D$: reduce the channels first, then propagate over the $N^2$ edges.
#
# </details>
#
# **Q4.** Why is the effective receptive field smaller than the theoretical one, and why did
# Section 4 need an input larger than the theoretical window to show it?
#
# <details><summary>Answer</summary>
#
# The theoretical window counts every pixel that can influence the unit at all; the number of
# paths from an input pixel to the unit falls off towards the window's edge, so the gradient
# (the influence) is concentrated near the centre, roughly Gaussian (Luo et al., 2016). On an
# input smaller than the window, the border cuts the gradient off: any measured field is then
# at most the input, and "smaller than the theory" would be a property of the image size, not
# of the network. With the whole window inside the input, the gradient's support matched the
# theory exactly, and the 50 % and 95 % squares are measured inside it.
#
# </details>

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Replace the shared-tap kernel of Section 1 by a general 3x3 kernel (nine
# different matrices $W_k$). Write the convolution as a sum of nine graph convolutions
# $\sum_{k=1}^{9} A_k X W_k$ and check it on the 4 x 5 grid.
#
# <details><summary>Worked answer</summary>
#
# $A_k$ has a single 1 per row, at the neighbour in direction $k = (\Delta r, \Delta c)$, and a
# zero row where that neighbour falls outside the grid (the zero padding). With the
# cross-correlation convention of `F.conv2d`, tap $(a, b)$ of the kernel multiplies the pixel
# at offset $(a - 1, b - 1)$:
#
# ```python
# kernel = torch.randn(D_OUT, D_IN, 3, 3, dtype=torch.float64)
# total = 0
# for a in range(3):
#     for b in range(3):
#         A_k = ((rows[None, :] - rows[:, None] == a - 1)
#                & (cols[None, :] - cols[:, None] == b - 1)).double()
#         total = total + A_k @ X @ kernel[:, :, a, b].T
# torch.testing.assert_close(total, F.conv2d(x, kernel, padding=1)[0].flatten(1).T)
# ```
#
# On the 4 x 5 grid the centre tap's $A_k$ has 20 ones, each horizontal step 16 (4 rows of 4),
# each vertical step 15 (3 rows of 5), each diagonal 12: $20 + 2 \cdot 16 + 2 \cdot 15 +
# 4 \cdot 12 = 130$ in all, exactly the non-zero entries of $A_{\text{grid}}$ printed in
# Section 1. A general kernel splits the grid graph into its nine directions and gives each
# its own $W_k$.
#
# </details>
#
# **Exercise 2.** In Section 2, replace the symmetric normalisation by the row normalisation
# $\mathrm{Deg}^{-1}(A + I)$. What does each output row become? Compute row 4 (node 4 has one
# neighbour, node 3) of $\mathrm{Deg}^{-1}(A + I) X W$ by hand.
#
# <details><summary>Worked answer</summary>
#
# Row $i$ becomes the *average* of $x_j W$ over node $i$ and its neighbours. Node 4 averages
# itself and node 3: $\tfrac12\big((2, 0, 1) + (0, 2, 1)\big) = (1, 1, 1)$, and
# $(1, 1, 1) W = (1 + 0.5 - 1,\; -1 + 1 + 0.5) = (0.5, 0.5)$.
#
# </details>
#
# **Exercise 3.** Compute the theoretical receptive field of the ResNet-18 at output stride 16
# and 32 (`models.torchvision_resnet(18, output_stride=16)`). Why does dilation grow the
# window about as fast as striding does?
#
# <details><summary>Worked answer</summary>
#
# With `receptive_field` of Section 4: 467 px at output stride 16 and 435 px at 32, against
# 483 px at 8. A 3x3 layer adds $(k - 1)\,\delta\, j$: a stride of 2 doubles the jump $j$ for
# every later layer, a dilation of 2 doubles $\delta$ instead, so the later layers add the same
# amount either way; the few pixels of difference come from where in a stage the stride or
# the dilation first takes effect. Dilation keeps the resolution (stride 8) at the same
# window, at the price of 4x (stride 16) or 16x (stride 32) more positions to compute.
#
# </details>
#
# **Exercise 4.** How large would a dense graph be on the 769 x 769 crops of the authors'
# backbone at stride 4 (after layer1) instead of stride 8?
#
# <details><summary>Worked answer</summary>
#
# The stride-4 feature is 193 x 193 (the stem's stride-2 convolution gives 385, the ceil-mode
# max-pool 193): $N = 37{,}249$ and $4 N^2$ bytes = 5.2 GiB, against 97 x 97 = 9,409
# positions and 337.7 MiB at stride 8: halving the stride multiplies $N$ by 4 and $A$ by 16.
#
# </details>

# %% [markdown]
# The numeric answers above, checked, one exercise per cell.

# %%
# Exercise 1: nine direction graphs A_k reproduce a general 3x3 convolution
torch.manual_seed(1)
rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W_GRID), indexing="ij")
rows, cols = rows.flatten(), cols.flatten()
x = torch.randn(1, D_IN, H, W_GRID, dtype=torch.float64)
X_grid = x[0].flatten(1).T
kernel = torch.randn(D_OUT, D_IN, 3, 3, dtype=torch.float64)
total, ones = 0, 0
for a in range(3):
    for b in range(3):
        A_k = (
            (rows[None, :] - rows[:, None] == a - 1) & (cols[None, :] - cols[:, None] == b - 1)
        ).double()
        total = total + A_k @ X_grid @ kernel[:, :, a, b].T
        ones += int(A_k.sum())
torch.testing.assert_close(total, F.conv2d(x, kernel, padding=1)[0].flatten(1).T)
assert ones == int(A_grid.sum()) == 130

# %%
# Exercise 2: row 4 of the row-normalised layer (before the ReLU)
A_row = (A + I) / (A + I).sum(1, keepdim=True)  # Deg^-1 (A + I)
torch.testing.assert_close((A_row @ X @ W)[4], torch.tensor([0.5, 0.5], dtype=torch.float64))

# Exercise 3: receptive fields at output stride 16 and 32
strided = {
    s: receptive_field(models.torchvision_resnet(18, output_stride=s))[-1][1] for s in (16, 32)
}
assert strided == {16: 467, 32: 435} and theory["ResNet-18, output stride 8"] == 483

# %%
# Exercise 4: the dense graph at stride 4 on a 769 crop of the authors' backbone
authors = resnet101s["authors' R101"]  # on the meta device (Section 3)
with torch.no_grad():
    stride4 = authors.layer1(authors.stem(torch.empty(1, 3, 769, 769, device="meta")))
assert tuple(stride4.shape[-2:]) == (193, 193) and 193 * 193 == 37_249
assert feature_size["authors' R101", 769, 769] == (97, 97) and 97 * 97 == 9_409
assert human_bytes(4 * 37_249**2) == "5.2 GiB" and human_bytes(4 * 9_409**2) == "337.7 MiB"
print("all numeric answers check out")

# %% [markdown]
# ## References
#
# - L. Zhang, X. Li, A. Arnab, K. Yang, Y. Tong, P. H. S. Torr, *Dual Graph Convolutional
#   Network for Semantic Segmentation*, BMVC 2019, arXiv:1909.06121. What the book knows of its
#   method, the graph convolution $\sigma(A X W)$ and the cost of affinity maps at every
#   position included, comes from a summary of it: the paper, as summarised,
#   `docs/reference/paper_summary.md`; its numbers and settings, with their sources,
#   `docs/reference/paper_results.md`; the letters, `docs/reference/notation.md`.
# - T. N. Kipf, M. Welling, *Semi-Supervised Classification with Graph Convolutional
#   Networks*, ICLR 2017 (the normalised adjacency of Section 2).
# - W. Luo, Y. Li, R. Urtasun, R. Zemel, *Understanding the Effective Receptive Field in Deep
#   Convolutional Neural Networks*, NeurIPS 2016.
# - F. Yu, V. Koltun, *Multi-Scale Context Aggregation by Dilated Convolutions*, ICLR 2016;
#   X. Wang et al., *Non-local Neural Networks*, CVPR 2018.
# - torchvision: `models.resnet18` (`BasicBlock`), the `dilation` argument of `nn.Conv2d`;
#   package: `dgcn/models/backbone.py` (the backbones and their feature sizes).
