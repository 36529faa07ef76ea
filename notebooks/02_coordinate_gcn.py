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
# # 02 · Coordinate-space GCN
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/02_coordinate_gcn.ipynb)
#
# The first of DGCNet's two graphs reasons over *positions*. The feature map is downsampled to
# a coarse grid of nodes, every node is connected to every other node with a weight computed
# from their features, and one graph convolution lets each node gather the whole image before
# the result is projected back to the pixels: the paper's coordinate-space GCN (the paper, as
# summarised: `docs/reference/paper_summary.md`). This notebook derives the module, shows that
# its adjacency has low rank and that the reordering of the products which makes it linear in
# the number of nodes is linear attention, measures where that reordering starts to pay,
# looks at what a node of a trained model gathers on a MiniCity image, and compares the two
# ways of downsampling. What the graph's un-normalised sum does at other image sizes is
# notebook 09's subject.
#
# You will:
#
# - derive $V_S = H_S X$, $A_S = \delta(V_S)\Psi(V_S)^\top$ and $M_S = A_S \nu(V_S) W_S$ and
#   write $H_S$ as an explicit matrix (and see why there is no non-linearity $\sigma$);
# - verify the package's module against the literal equations in float64;
# - show that $A_S$ has rank at most $D/2$, rewrite $A_S \nu(V_S)$ as
#   $\delta(V_S)\,[\Psi(V_S)^\top \nu(V_S)]$ (linear attention) and measure the crossover of
#   the two orders on this CPU;
# - load a DGCNet trained on MiniCity (committed with the repository) and draw the affinities
#   of a pixel inside a train, on a colour scale centred on 0;
# - compare average pooling with strided convolutions: node grids and parameters.
#
# | mode | what runs | time |
# |---|---|---|
# | CPU smoke (`DGCN_SMOKE=1`) | timings to 4,096 nodes; a trained model loaded | ~20 s |
# | CPU full | timings to 16,384 nodes; the same trained model | not measured |
#
# (Times for 2 CPU cores shared with other work.) The trained model is the committed
# checkpoint in both modes: full mode only times larger graphs.

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
# Every constant that costs time, set once from `SMOKE`, and where the trained model and the
# data are. The MiniCity models use $d = 2$ instead of the paper's 8: the stride-8 feature of
# their micro backbone on a 128 x 256 image is only 16 x 32, and $d = 8$ would leave a 2 x 4
# graph (Section 4 explains the choice).

# %%
# ruff: noqa: E402, B018 (imports where first needed; a cell's last expression is shown)
# %matplotlib inline
# node counts N' of the timing study: powers of sqrt(2) from 8, dense around the crossover
NODE_COUNTS = [round(2 ** (k / 2)) for k in range(6, 25 if SMOKE else 29)]  # 8 .. 4,096 / 16,384
CHANNEL_WIDTHS = (32, 128)  # D/2, the channels of the timed products
TIMING_REPEATS = 3 if SMOKE else 5  # best of this many runs per measurement
CHECKPOINT = "experiments/checkpoints/minicity-dgcnet-paper.pt"  # committed, trained (Sec. 4)
MINICITY = "data/minicity"  # the default MiniCity, generated on first use

# %% [markdown]
# ## 1. The equations
#
# The letters below ($H_S$, $V_S$, $\delta$, $\Psi$, $\nu$, $A_S$, $W_S$, $M_S$) are those of
# the paper, as summarised (`docs/reference/paper_summary.md`), collected with their sizes on
# the book's notation card (`docs/reference/notation.md`); the package's docstrings
# (`dgcn/models/coordinate_gcn.py`) use the same.
#
# Let $X \in \mathbb{R}^{N \times D}$ be the backbone feature, $N = HW$ positions (rows) with
# $D$ channels. The coordinate graph works on a coarser grid:
#
# 1. **Nodes.** $V_S = H_S X \in \mathbb{R}^{N' \times D}$ with
#    $N' = \lceil H/d \rceil \lceil W/d \rceil$. $H_S \in \mathbb{R}^{N' \times N}$ is the
#    downsampling written as a matrix: with $d \times d$ average pooling, row $i$ of $H_S$ holds
#    $1/|\mathcal{W}_i|$ on the pixels of node $i$'s window $\mathcal{W}_i$ and 0 elsewhere;
#    with strided convolutions it is their (learned) product.
# 2. **Edges.** $A_S = \delta(V_S)\, \Psi(V_S)^\top \in \mathbb{R}^{N' \times N'}$, where
#    $\delta$ and $\Psi$ are 1x1 convolutions $D \to D/2$. Entry
#    $(A_S)_{ij} = \delta(v_i) \cdot \Psi(v_j)$ is a learned similarity of nodes $i$ and $j$:
#    the graph is dense and depends on the image. It is not normalised (no softmax, no degree).
# 3. **Graph convolution.** $M_S = A_S\, \nu(V_S)\, W_S \in \mathbb{R}^{N' \times D/2}$ with
#    $\nu$ a third 1x1 convolution $D \to D/2$ and $W_S \in \mathbb{R}^{D/2 \times D/2}$. Row
#    by row, $m_i = \sum_{j=1}^{N'} \big(\delta(v_i) \cdot \Psi(v_j)\big)\, \nu(v_j)\, W_S$:
#    every node gathers *every* node, weighted by similarity.
# 4. **Reprojection.** $\tilde X_S$ = a 1x1 convolution $D/2 \to D$ of $M_S$ followed by
#    BatchNorm, upsampled bilinearly to $H \times W$. The network adds it, $X + \tilde X_S$
#    (fusion with the feature graph in notebook 04). The summary upsamples first and names
#    only the 1x1 convolution; the BN is the released code's, in the same place
#    (`docs/reference/official_dgcnet.md`). Its scale starts at zero when `zero_init=True`
#    (the package's default): a fresh module adds exactly nothing.
#
# **No $\sigma$.** One layer of a graph convolution is $\sigma(A X W)$ (notebook 01). Step 3 is
# that layer with $A = A_S$, $X = \nu(V_S)$, $W = W_S$ and *without* $\sigma$: the package
# applies no ReLU and no BN in it, because the paper, as summarised, states that no ReLU and
# no batch normalisation are applied in the coordinate-space graph convolution
# (`docs/reference/paper_summary.md`, "Coordinate space"). For a fixed $A_S$, everything from
# $\nu(V_S)$ to the reprojection's BN is linear.
#
# **A sum that is not normalised.** A node is an average (every row of $H_S$ sums to 1) and an
# entry of $A_S$ a dot product of two nodes' projections: neither grows with the image. But
# $m_i$ adds $N'$ messages without dividing by $N'$, so $M_S$ grows with the number of nodes.
# The BN of step 4 divides that growth out in training mode, not in eval mode: notebook 09
# measures what that costs, and why the `cityscapes-paper` preset evaluates by sliding window.
#
# **Cost.** Read literally, step 3 forms $A_S$: $N'^2 \cdot D/2$ multiply-adds and $N'^2$
# numbers of memory, then as many again to apply it. Matrix products are associative, so
#
# $$A_S\, \nu(V_S) = \big(\delta(V_S) \Psi(V_S)^\top\big) \nu(V_S)
#   = \delta(V_S) \big(\Psi(V_S)^\top \nu(V_S)\big),$$
#
# where the bracket is only $D/2 \times D/2$: $N' (D/2)^2$ multiply-adds to form, as many to
# apply, $(D/2)^2$ numbers of memory. The cost becomes linear in the number of nodes, $O(N')$
# instead of $O(N'^2)$, and $A_S$ is never formed. The package evaluates this order. (The
# bracket $\Psi(V_S)^\top \nu(V_S) = \sum_j \Psi(v_j)^\top \nu(v_j)$ is exactly the
# un-normalised sum over the nodes of step 3.)

# %% [markdown]
# ## 2. The package against the literal equations
#
# A module with $D = 16$ channels and $d = 4$ on a 13 x 21 map, so the borders hold partial
# windows. We build $H_S$ as an explicit matrix, compute every step of Section 1 from the
# module's weights with plain matrix products, and compare with the module's own
# `nodes`, `adjacency` and `forward`, in float64. First $H_S$: row $i$ holds
# $1/|\mathcal{W}_i|$ on the pixels of node $i$'s window.

# %%
import math

import torch
import torch.nn.functional as F


def pooling_matrix(h: int, w: int, d: int) -> torch.Tensor:
    """H_S of d x d average pooling (ceil mode: border windows average what they cover)."""
    hn, wn = math.ceil(h / d), math.ceil(w / d)
    matrix = torch.zeros(hn * wn, h * w, dtype=torch.float64)
    for i in range(hn):
        for j in range(wn):
            rows = range(d * i, min(d * i + d, h))
            cols = range(d * j, min(d * j + d, w))
            for r in rows:
                for c in cols:
                    matrix[i * wn + j, r * w + c] = 1.0 / (len(rows) * len(cols))
    return matrix


D, d, h, w = 16, 4, 13, 21
H_S = pooling_matrix(h, w, d)  # [N', N]
hn, wn = math.ceil(h / d), math.ceil(w / d)
print(f"N = {h * w} pixels -> N' = {hn} x {wn} = {hn * wn} nodes; H_S {tuple(H_S.shape)}")
print("row sums of H_S (every node is an average):", H_S.sum(1).unique().tolist())

# %% [markdown]
# The module, with random weights. The reprojection's BatchNorm gets random statistics and a
# non-zero scale: with its zero initial scale the output would be identically zero and the
# comparison empty. A 1x1 convolution applied to one feature per row is a matrix product.

# %%
torch.manual_seed(0)
gcn = models.CoordinateGCN(D, downsample=d, pooling="avg").double().eval()
bn = gcn.reproject[1]
with torch.no_grad():
    bn.weight.normal_()
    bn.bias.normal_()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
x = torch.randn(1, D, h, w, dtype=torch.float64)


def conv1x1(conv: torch.nn.Conv2d, rows: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution applied to one feature per row: rows W^T + b."""
    out = rows @ conv.weight[:, :, 0, 0].T
    return out if conv.bias is None else out + conv.bias


# %% [markdown]
# Now Section 1's steps, one line each, and the module against them. The steps hold no
# $\sigma$ between $A_S \nu(V_S) W_S$ and the BN; a non-linearity hidden in the module would
# make the comparison fail.

# %%
X = x[0].flatten(1).T  # [N, D]
V_S = H_S @ X  # [N', D]
A_S = conv1x1(gcn.query, V_S) @ conv1x1(gcn.key, V_S).T  # delta(V_S) Psi(V_S)^T: [N', N']
W_S = gcn.state_update.weight[:, :, 0, 0].T  # the conv stores W_S^T
M_S = A_S @ conv1x1(gcn.value, V_S) @ W_S  # [N', D/2]
Y = conv1x1(gcn.reproject[0], M_S)  # back to D channels, at node resolution
Y = (Y - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
X_S = F.interpolate(Y.T.reshape(1, D, hn, wn), size=(h, w), mode="bilinear", align_corners=True)

with torch.no_grad():
    torch.testing.assert_close(gcn.nodes(x)[0].flatten(1).T, V_S)
    torch.testing.assert_close(gcn.adjacency(x)[0], A_S)
    torch.testing.assert_close(gcn(x), X_S)
print("V_S = H_S X, A_S = delta(V_S) Psi(V_S)^T and the module's output: equal to the literal")

# %% [markdown]
# And the reordering itself, on these numbers: the literal $(\delta \Psi^\top)\nu$ and the
# linear $\delta(\Psi^\top \nu)$ agree to rounding.

# %%
delta, psi, nu = (conv1x1(c, V_S) for c in (gcn.query, gcn.key, gcn.value))
literal = (delta @ psi.T) @ nu  # forms the N' x N' matrix
linear = delta @ (psi.T @ nu)  # forms a (D/2) x (D/2) matrix
torch.testing.assert_close(literal, linear)
print(f"literal forms {tuple((delta @ psi.T).shape)}, linear forms {tuple((psi.T @ nu).shape)}")

# %% [markdown]
# ## 3. Low rank, linear attention, and where the reordering pays
#
# **Rank.** $\delta(V_S) = V_S W_\delta + \mathbf{1} b_\delta^\top$ is an $N' \times D/2$
# matrix, and so is $\Psi(V_S)$. Their product $A_S = \delta(V_S)\Psi(V_S)^\top$ is
# $N' \times N'$, but every column of it is a combination of the $D/2$ columns of
# $\delta(V_S)$:
#
# $$\operatorname{rank} A_S \le \min(N', D/2),$$
#
# whatever the image and however many nodes it has. $A_S$ is a low-rank matrix handed to us in
# factored form, and the reordering of Section 1 is nothing but *never multiplying the factors
# out*. Once $N' > D/2$, most of the $N'^2$ numbers of the literal $A_S$ are redundant.
#
# **Linear attention.** Call $Q = \delta(V_S)$ and $K = \Psi(V_S)$ the queries and keys of
# the nodes, and $\nu(V_S)$ their values. Then $A_S \nu(V_S) = Q K^\top \nu(V_S)$: dot-product
# attention without the softmax (and without the $1/\sqrt{D/2}$). Softmax attention must form
# $\operatorname{softmax}(QK^\top)$ row by row, because the exponential of a dot product does
# not factor. An attention whose similarity *does* factor can be computed as
# $Q\,(K^\top \nu(V_S))$; Katharopoulos et al. (2020) call this **linear attention**: they
# replace $\exp(q_i \cdot k_j)$ by $\varphi(q_i) \cdot \varphi(k_j)$ for a feature map
# $\varphi$ and divide row $i$ by $\varphi(q_i) \cdot \sum_j \varphi(k_j)$. The coordinate
# graph is the case $\varphi$ = identity *without* that division, and the missing division is
# exactly the un-normalised sum of Section 1.
#
# **The crossover.** Each node carries $D/2$ channels after the projections. The literal order
# costs $N'^2 D/2$ multiply-adds for $QK^\top$ and as many to apply it, $N'^2 D$ in all, and
# an $N' \times N'$ matrix; the linear order costs $N' (D/2)^2$ for $K^\top \nu(V_S)$ and as
# many to apply it, $N' D^2/2$ in all, and a $D/2 \times D/2$ matrix. The ratio of the work is
#
# $$\frac{N'^2 D}{N' D^2 / 2} = \frac{N'}{D/2},$$
#
# and that of the memory, $N'^2 / (D/2)^2$, its square: both cross 1 at $N' = D/2$. The
# reordering pays only when the graph has more nodes than channels, $N' > D/2$; below that
# the literal order is the cheaper one.
#
# First the rank, on the package's module: $D = 16$ channels ($D/2 = 8$), no downsampling
# ($d = 1$) so that we can choose $N'$ freely, random weights and features, in float64.

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
low_rank = models.CoordinateGCN(16, downsample=1).double().eval()
with torch.no_grad():
    for side in (2, 3, 4, 8, 16):
        adjacency = low_rank.adjacency(torch.randn(1, 16, side, side, dtype=torch.float64))[0]
        rank = int(torch.linalg.matrix_rank(adjacency))
        assert rank == min(side * side, 16 // 2)
        print(f"N' = {side * side:3d} nodes: A_S is {side * side} x {side * side}, rank {rank}")

# %% [markdown]
# The rank stops at $D/2 = 8$ however large the graph. Section 4 finds the same on the trained
# model's $A_S$.
#
# Now the time. We time both orders on random $Q$, $K$ and $\nu(V_S)$ for $D/2 = 32$ and
# $D/2 = 128$ over a range of $N'$ around and above $D/2$, on one CPU thread: each measurement
# is the best of a few runs, each run a loop long enough (a few milliseconds) for
# `time.perf_counter` to resolve it (`models.profile.best_time`). The memory columns count the
# largest intermediate matrix in float32 ($A_S$ against $\Psi(V_S)^\top \nu(V_S)$), no clock
# needed: $4 N'^2$ bytes against $4 (D/2)^2$.

# %%
import pandas as pd

best_time = models.profile.best_time  # seconds per call: the fastest of `repeats` timed loops
threads = torch.get_num_threads()
torch.set_num_threads(1)  # one core: steadier timings on a shared machine
torch.manual_seed(0)
records = []
try:
    for half in CHANNEL_WIDTHS:  # D/2
        for count in NODE_COUNTS:
            q, k, v = (torch.randn(count, half) for _ in range(3))
            literal_s = best_time(lambda q=q, k=k, v=v: (q @ k.T) @ v, TIMING_REPEATS)
            linear_s = best_time(lambda q=q, k=k, v=v: q @ (k.T @ v), TIMING_REPEATS)
            seconds = (1e3 * literal_s, 1e3 * linear_s, literal_s / linear_s)
            records.append((half, count, *seconds, 4 * count**2 / 2**20, 4 * half**2 / 2**20))
finally:
    torch.set_num_threads(threads)
index = ["D/2", "nodes N'"]
columns = [*index, "literal ms", "linear ms", "literal / linear", "literal MiB", "linear MiB"]
timings = pd.DataFrame(records, columns=columns).set_index(index)

# %%
# where the ratio crosses 1: the last crossing from below, interpolated in log-log
crossovers = {}
for half in CHANNEL_WIDTHS:
    ratio = timings.loc[half, "literal / linear"]
    crossovers[half] = at = models.profile.crossover(ratio.index, ratio)
    print(f"D/2 = {half:3d}: the linear order is faster from N' ~ {at:,.0f} ({at / half:.1f} D/2)")
timings.round(3)

# %%
fig = viz.new_figure((7.6, 3.0))
ax_time, ax_ratio = fig.subplots(1, 2)
for half, color in zip(CHANNEL_WIDTHS, ("tab:blue", "tab:orange"), strict=True):
    rows, width, style = timings.loc[half], f"D/2={half}", {"color": color, "ms": 3}
    ax_time.loglog(rows.index, rows["literal ms"], "o-", label=f"literal, {width}", **style)
    ax_time.loglog(rows.index, rows["linear ms"], "s--", label=f"linear, {width}", **style)
    ax_time.axvline(half, color=color, ls=":", lw=1)
    ax_ratio.loglog(rows.index / half, rows["literal / linear"], "o-", label=width, **style)
ax_ratio.loglog([1 / 8, 64], [1 / 8, 64], color="grey", lw=1, ls="--", label="N'/(D/2) (FLOPs)")
ax_ratio.axhline(1, color="black", lw=0.8)
ax_time.set_xlabel("nodes N'")
ax_time.set_ylabel("time per product (ms)")
ax_time.set_title("A_S nu(V_S), both orders (dotted: N' = D/2)", fontsize=9)
ax_ratio.set_xlabel("N' / (D/2)")
ax_ratio.set_ylabel("literal time / linear time")
ax_ratio.set_title("above 1: the reordering pays", fontsize=9)
for ax in (ax_time, ax_ratio):
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
fig

# %% [markdown]
# The literal time grows with the square of $N'$ and the linear one in proportion to $N'$, and
# plotted against $N'/(D/2)$ the two widths fall on one curve that follows the FLOP ratio
# $N'/(D/2)$ (the grey line) once the products are large. The measured crossover, printed
# above, sits near $N' = D/2$; at the smallest sizes, where a product takes microseconds, call
# overheads blur it, so the printed numbers move between runs and machines (the FLOP count
# does not).
#
# **Where do real configurations sit?** The node count depends on the backbone: its stride-8
# feature size sets $N'$. The table takes the feature sizes from the package's backbones
# (traced on the meta device, no weights) for three cases: the committed MiniCity model (micro
# ResNet, $D = 128$, $d = 2$), the `cityscapes-paper` preset (torchvision's ResNet-101,
# the graph on the raw $D = 2048$ feature, $d = 8$) and a module of the paper's form on the
# authors' 512-channel head feature (their deep-stem ResNet-101, whose ceil-mode max-pool
# gives 105 for 832 and 129 x 257 for a frame, as notebook 04 derives).


# %%
def feature_size(model_name: str, size: tuple[int, int]) -> tuple[int, int]:
    """The stride-8 feature size of a package model's backbone, traced on the meta device."""
    with torch.device("meta"):
        net = models.build_model(model_name, 19).eval()
    with torch.no_grad():
        return tuple(net.backbone(torch.empty(1, 3, *size, device="meta"))["out"].shape[-2:])


# %%
# NBVAL_CHECK_OUTPUT
cases = [  # (configuration, model, input size, D of the graph's input, d)
    ("MiniCity, paper head (micro ResNet)", "dgcnet_paper_micro", (128, 256), 128, 2),
    ("cityscapes-paper, 768 crop (torchvision R101)", "dgcnet_paper_r101", (768, 768), 2048, 8),
    ("cityscapes-paper, frame (torchvision R101)", "dgcnet_paper_r101", (1024, 2048), 2048, 8),
    ("authors' head, 832 crop (deep-stem R101)", "dgcnet_official_r101", (832, 832), 512, 8),
    ("authors' head, frame (deep-stem R101)", "dgcnet_official_r101", (1024, 2048), 512, 8),
]
rows = []
for label, name, size, channels, rate in cases:
    fh, fw = feature_size(name, size)
    nh, nw, half = math.ceil(fh / rate), math.ceil(fw / rate), channels // 2
    ratio = round(nh * nw / half, 2)
    rows.append((label, f"{fh} x {fw}", rate, f"{nh} x {nw} = {nh * nw}", half, ratio))
columns = ["configuration", "feature", "d", "nodes", "D/2", "literal / linear FLOPs"]
configurations = pd.DataFrame(rows, columns=columns).set_index("configuration")
assert configurations.loc["cityscapes-paper, frame (torchvision R101)", "nodes"] == "16 x 32 = 512"
assert configurations.loc["authors' head, frame (deep-stem R101)", "nodes"] == "17 x 33 = 561"
configurations

# %% [markdown]
# Only the MiniCity model (128 nodes, $D/2 = 64$) and the authors' head feature on a whole
# frame (561 nodes, $D/2 = 256$) are above the crossover, by 2x. The `cityscapes-paper` preset
# has $D/2 = 1024$: its 144 nodes on a 768 crop and 512 on a frame are *below* it, so there the
# literal order would be the cheaper one (by 7x on the crop), with a harmless matrix of at
# most 1 MiB. The reordering matters when the graph is large: without downsampling ($d = 1$)
# a frame's graph has 129 x 257 = 33,153 nodes on the authors' backbone, and the literal $A_S$
# needs 4.1 GiB (notebook 01) where the linear order's $D/2 \times D/2$ matrix needs at most
# 4 MiB ($D/2 = 1024$).

# %% [markdown]
# ## 4. What one node gathers, on a MiniCity image
#
# The repository commits DGCNet models trained on MiniCity (`experiments/checkpoints/`). We
# load `minicity-dgcnet-paper.pt`: this notebook's `CoordinateGCN` and notebook 03's
# `FeatureGCN` added to the 128-channel layer4 feature $X$ of a micro ResNet at stride 8,
# $X + \tilde X_S + \tilde X_F$ (the paper's fusion, as summarised). As the row with both
# graphs of the CPU ablation (`dgcn reproduce`, preset `minicity-ablation`, notebook 08), the
# backbone was trained once, end to end, then frozen, and only the head trained on its
# features, for the iterations printed below. We catch the feature map that enters the graph
# and draw rows of $A_S$.
#
# **Why $d = 2$.** A 128 x 256 MiniCity image gives a 16 x 32 feature at stride 8; $d = 8$
# would leave 2 x 4 nodes. With $d = 2$ there are 8 x 16 = 128 nodes, each the average of a
# 2 x 2 block of features on a 16 x 16 pixel patch of the image (each feature sees far beyond
# its patch, notebook 01): the order of node count of Cityscapes at $d = 8$ (Section 3's
# table: 144 to 561 nodes).
#
# **How much did the graph learn?** The reprojection's BN scale $\gamma$ multiplies all that
# the graph adds. With `zero_init` (the package's default, Section 1) it starts at 0, and
# $\delta$ and $\Psi$ receive a gradient proportional to $\gamma$, none in the first step, so
# the graph terms can stay small; without it $\gamma$ starts at BN's default, 1. The cell
# prints which start this model had. Training seeds the initialisation with `train.seed`, so
# rebuilding the model after that seed gives the head's exact initial weights (the rebuilt
# backbone is random, unused): we print how far $\delta$ and $\Psi$ have moved, and the mean
# $|\gamma|$, which says how much of $\tilde X_S$ the network actually adds to $X$.

# %%
model, cfg = dgcn.committed_model("minicity-dgcnet-paper")
coordinate = model.head.graph.coordinate
print(f"{CHECKPOINT}: {cfg.model.name} {cfg.model.overrides}")
print(f"head trained {cfg.train.iterations} iterations on the frozen {cfg.frozen.backbone}")

torch.manual_seed(cfg.train.seed)  # the head was initialised right after this seed
initial = models.build_model(cfg.model.name, cfg.num_classes, **cfg.model.overrides)
initial_coordinate = initial.head.graph.coordinate.eval()
for name in ("query", "key"):
    w_now = getattr(coordinate, name).weight
    w_init = getattr(initial_coordinate, name).weight
    change = (w_now - w_init).norm() / w_init.norm()
    print(f"{name:5s} (delta / Psi) weight moved by {100 * change:.1f} % of its initial norm")
scale = float(coordinate.reproject[1].weight.detach().abs().mean())
start = float(initial_coordinate.reproject[1].weight.detach().abs().mean())
print(f"reprojection BN scale: mean |gamma| = {scale:.4f} (at initialisation: {start:g})")

# %% [markdown]
# A validation image of MiniCity version 2, the generator's default (its rules:
# `dgcn/datasets/minicity/scene.py`): on the cross street behind the cars, a train on the far
# lane and a truck on the near one. The two share their body material, height, windows and
# wheels; only an object's length against its height tells them apart. MiniCity draws image
# $i$ of a split from the seed, the split and $i$ alone, so the default MiniCity of the other
# notebooks holds the same first validation images as the ablation's larger set (the call
# checks that seed and size are the checkpoint's). The model's prediction first, with how it
# labels the two vehicles' pixels.

# %%
TRAIN, TRUCK, ROAD = 16, 14, 0  # train ids (datasets.CLASS_NAMES)
height_px, width_px = cfg.data.minicity_size
root = datasets.ensure_minicity(
    MINICITY, seed=cfg.data.minicity_seed, height=height_px, width=width_px, progress=False
)  # generated on first use (a few seconds), then reused
val_set = datasets.Cityscapes(root, "val")
image, mask = val_set[1]
with torch.no_grad():
    prediction = model(image[None])["out"].argmax(1)
names, labelled = datasets.CLASS_NAMES, {}  # labelled[class]: the two most predicted classes
for cls in (TRAIN, TRUCK):
    votes = torch.bincount(prediction[mask[None] == cls], minlength=len(names))
    share = votes / votes.sum()
    labelled[cls] = [(names[k], float(share[k])) for k in share.argsort(descending=True)[:2]]
    print(f"{names[cls]} pixels predicted as", ", ".join(f"{n} {p:.0%}" for n, p in labelled[cls]))
viz.prediction_grid(image[None], mask[None], prediction, titles=["val image 1"])

# %% [markdown]
# Then the node grid: each cell is one node, the average of the features on a 16 x 16 patch of
# the image. The pixel whose node we follow is found from the label, not typed in: the centre
# of a node whose patch the train covers most (of several such nodes, the middle one in scan
# order), so that the node lies inside the train and not on its outline. The same rule picks a
# truck pixel and a road pixel for comparison.

# %%
graph, features = viz.graphs.capture_graph_input(model, image[None])
assert graph is model.head.graph and features.shape[-2:] == (16, 32)
with torch.no_grad():
    assert torch.equal(features, model.backbone(image[None])["out"])  # the layer4 feature X
node_grid = tuple(coordinate.nodes(features).shape[-2:])
patch = 8 * coordinate.downsample_rate  # image pixels per node side: stride 8 times d
patches = mask.unfold(0, patch, patch).unfold(1, patch, patch).flatten(-2)  # [8, 16, 256]
picture = viz.denormalize(image)


def inside(class_id: int) -> tuple[tuple[int, int], int, float]:
    """(pixel, node, share): the centre pixel of a node whose patch the class covers most."""
    share = (patches == class_id).float().mean(-1).flatten()  # the class's share of each patch
    best = (share == share.max()).nonzero().flatten()
    node = int(best[len(best) // 2])
    i, j = divmod(node, node_grid[1])
    pixel = (i * patch + patch // 2, j * patch + patch // 2)
    assert mask[pixel] == class_id  # inside the class
    in_feature = viz.graphs.feature_pixel(pixel, picture.shape[:2], features.shape[-2:])
    assert viz.graphs.node_of_pixel(coordinate, in_feature, node_grid) == node  # its own node
    return pixel, node, float(share[node])


chosen = {name: inside(cls) for name, cls in (("train", TRAIN), ("truck", TRUCK), ("road", ROAD))}
pixels = {name: pixel for name, (pixel, _, _) in chosen.items()}
for name, (pixel, node, share) in chosen.items():
    where = divmod(node, node_grid[1])
    print(f"{name:5s}: pixel {pixel}, node {where}, whose patch is {share:.0%} {name}")

# %%
(y, x), node, _ = chosen["train"]
viz.graphs.plot_node_grid(picture, node_grid, patch, (y, x), node)

# %% [markdown]
# Now the row of $A_S$ of that node, $(A_S)_{ij} = \delta(v_i)\cdot\Psi(v_j)$ for every node
# $j$, drawn over the image (`viz.graphs.coordinate_affinity` and `plot_affinity`): the larger
# the value, the more node $j$'s message counts in what the train's node gathers in $M_S$.
# Then the same for the road pixel. The values are unnormalised and can be negative (a
# negative weight subtracts that node's message), so both maps share one diverging colour
# scale centred on 0, symmetric about it (`limit=` of `plot_affinity`; the colour bar beside
# each map gives the values): red adds, blue subtracts, white ignores.

# %%
affinity = {
    name: viz.graphs.coordinate_affinity(coordinate, features, pixel, image_size=picture.shape[:2])
    for name, pixel in pixels.items()
}
limit = max(float(row.abs().max()) for row in affinity.values())  # one scale for all maps
trained = f"{cfg.train.iterations} head iterations"
viz.graphs.plot_affinity(
    picture, affinity["train"], pixels["train"], f"row of A_S (train), {trained}", limit=limit
)

# %%
viz.graphs.plot_affinity(
    picture, affinity["road"], pixels["road"], f"row of A_S (road), {trained}", limit=limit
)

# %% [markdown]
# The same rows as numbers: the mean weight each chosen node gives the nodes of a region (a
# node counts for the class that covers most of its 16 x 16 patch), for the train's, the
# truck's and the road's node, and how alike the train's and the truck's rows are.

# %%
node_class = patches.mode(-1).values  # the majority class of each node's patch
regions = {"building": 2, "sky": 10, "train": TRAIN, "truck": TRUCK, "road": ROAD, "car": 13}
region_means = pd.DataFrame(
    {
        name: {r: float(row[node_class == c].mean()) for r, c in regions.items()}
        for name, row in affinity.items()
    }
).T.rename_axis("row of the node of")
region_means.columns.name = "mean weight on the nodes of"
alike = torch.corrcoef(torch.stack([affinity["train"].flatten(), affinity["truck"].flatten()]))
print(f"correlation of the train's and the truck's rows over the 128 nodes: {alike[0, 1]:.2f}")
region_means.round(1)

# %% [markdown]
# The maps follow the image's regions rather than the distance to the pixel. The train's node
# adds the upper band, most of all the buildings, then the sky and both vehicles, and
# subtracts a little of the road and the cars. The road's node subtracts the road, the cars
# and the sky and adds the buildings and the vehicles, wherever they are: its own neighbours
# on the road get negative weights, the far-away facades positive ones. The graph weighs
# nodes by what their features are, not by where they are.
#
# The truck's chosen node gathers otherwise: it adds the road and a little of the buildings
# and the sky, and subtracts the cars and both vehicles, its own among them; its row
# correlates only weakly with the train node's (printed above). Is that a difference between
# the classes? The generator draws the two vehicles with the same body material, height,
# windows and wheels, and the two chosen nodes sit on different parts of them (the train's in
# the lower of the two node rows the vehicles cover, the truck's in the upper). The next cell
# compares the rows of *every* node whose patch is mostly train or mostly truck.

# %%
signs = {  # what the text reads off each row: (regions added, regions subtracted)
    "train": (["building", "sky", "train", "truck"], ["road", "car"]),
    "road": (["building", "train", "truck"], ["road", "car", "sky"]),
    "truck": (["road", "building", "sky"], ["car", "train", "truck"]),
}
for name, (added, subtracted) in signs.items():
    assert (region_means.loc[name, added] > 0).all(), name
    assert (region_means.loc[name, subtracted] < 0).all(), name
assert region_means.loc["train"].idxmax() == "building" and alike[0, 1] < 0.5
assert (chosen["train"][1] // node_grid[1], chosen["truck"][1] // node_grid[1]) == (3, 2)
with torch.no_grad():
    full = coordinate.adjacency(features)[0]  # every row of A_S: [128, 128]
on_train = (node_class == TRAIN).flatten().nonzero().flatten()
on_truck = (node_class == TRUCK).flatten().nonzero().flatten()
both = torch.corrcoef(full[torch.cat([on_train, on_truck])])  # train rows first
across = both[: len(on_train), len(on_train) :]  # [train nodes, truck nodes]
nearest = across.max(1).values.min()  # the worst train node's most alike truck node
within = both[: len(on_train), : len(on_train)].min()  # the least alike two train nodes
print(f"{len(on_train)} train nodes, {len(on_truck)} truck nodes; every train node's row")
print(f"correlates >= {nearest:.2f} with a truck node's; two train rows as little as {within:.2f}")
assert labelled[TRAIN][0][0] == "train" and labelled[TRUCK][0][0] == "bus"  # the text's claims
assert min(labelled[TRAIN][0][1], labelled[TRUCK][0][1]) > 0.5
assert nearest > 0.85 and within < 0.3

# %% [markdown]
# The rows do not separate the classes: every train node has a truck node that gathers nearly
# the same context, while two train nodes can gather very different context. A row of $A_S$
# weighs the *other* nodes; what it gathers does not say which of two look-alike vehicles its
# own node lies on. On this image the model labels most of the train's pixels right and most
# of the truck's as bus (printed under the prediction): on MiniCity version 2 it is an
# object's whole extent that tells a truck from a bus or a train, and this image shows the
# coordinate graph's rows not separating the two. (The ablation's per-class table, notebook
# 08, has the coordinate graph alone at 13 % truck IoU against 20 % for the feature graph.)

# %% [markdown]
# The whole $128 \times 128$ adjacency of this image (rows and columns in row-major node order,
# 16 nodes per row of the grid, so a block of 16 rows is one horizontal band of the image).
# Nodes of the same region have similar features and hence similar rows and columns: the
# matrix is made of blocks that follow the image's layout. Part of that structure is the
# features' doing: they come from a trained backbone, and even random $\delta$ and $\Psi$ map
# similar features to similar rows. To see what training added, the cell also forms $A_S$ with
# the *initial* $\delta$ and $\Psi$ on the same features, prints how far the projections of
# this image's nodes and the two matrices are apart, and draws both. The weight changes
# printed above average over all input directions; on the nodes the change can be larger,
# because training moves the weights along the directions the features actually occupy.

# %%
with torch.no_grad():
    full_initial = initial_coordinate.adjacency(features)[0]
    nodes_v = coordinate.nodes(features)
    for name in ("query", "key"):
        now = getattr(coordinate, name)(nodes_v)
        before = getattr(initial_coordinate, name)(nodes_v)
        moved = (now - before).norm() / before.norm()
        print(f"{name:5s} of this image's nodes, trained vs initial: {100 * moved:.0f} % apart")
assert torch.allclose(full[chosen["train"][1]].view(node_grid), affinity["train"])
apart = (full - full_initial).norm() / full_initial.norm()
print(f"A_S, trained vs initial delta and Psi: {100 * apart:.0f} % apart")
viz.graphs.adjacency_heatmap(full, title=f"A_S of val image 1 (paper head, {trained})")

# %%
viz.graphs.adjacency_heatmap(full_initial, title="A_S of val image 1, initial delta and Psi")

# %% [markdown]
# This $A_S$ is 128 x 128, but by Section 3 its rank is at most $D/2 = 64$: the micro
# backbone's layer4 has $D = 128$ channels. Its singular values, with the module and the
# features copied to float64 so that rounding does not fill the null space:

# %%
import copy

exact = copy.deepcopy(coordinate).double()
with torch.no_grad():
    singular = torch.linalg.svdvals(exact.adjacency(features.double())[0])
trained_rank = int((singular > 1e-10 * singular[0]).sum())
assert trained_rank == coordinate.channels // 2 == 64
print(f"A_S {tuple(full.shape)}, D = {coordinate.channels}: rank {trained_rank}")
fig = viz.new_figure((4.6, 2.6))
ax = fig.add_subplot()
ax.semilogy(torch.arange(1, len(singular) + 1), (singular / singular[0]).clamp_min(1e-20), ".")
ax.axvline(coordinate.channels // 2 + 0.5, color="grey", ls=":", lw=1)
ax.set_xlabel("index of the singular value")
ax.set_ylabel("s_k / s_1 (singular values)")
ax.set_title(f"singular values of the trained A_S: rank {trained_rank} = D/2", fontsize=9)
ax.grid(alpha=0.3)
fig

# %% [markdown]
# The authors' head (`minicity-dgcnet-official.pt`, drawn in notebooks 03 and 07) has no such
# matrix to show: its coordinate branch, `OfficialCoordinateGCN`, normalises a
# channel-by-channel matrix instead of forming a node-by-node one (notebook 09 measures what
# that normalisation changes).

# %% [markdown]
# ## 5. Average pooling or strided convolutions?
#
# The paper builds $H_S$ either by average pooling or by strided depthwise convolutions and
# reports that both work about equally well and that the rate $d$ matters little, with
# $d = 8$ used elsewhere (the paper, as summarised: `docs/reference/paper_summary.md`; the
# numbers of that study are not available to us; notebook 08 runs it on MiniCity). In the
# package, `pooling="avg"` is a parameter-free $d \times d$ average pooling in ceil mode, and
# `pooling="conv"` is $\log_2 d$ depthwise 3x3 convolutions of stride 2 and padding 1.
#
# **Node grids.** Both give $\lceil H/d \rceil \times \lceil W/d \rceil$ nodes, also when $d$
# does not divide the size (each stride-2 step maps $n$ to $\lceil n/2 \rceil$):

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for size in [(16, 32), (13, 21), (97, 97), (129, 257)]:
    for rate in (2, 8):
        grids = {}
        for pooling in ("avg", "conv"):
            module = models.CoordinateGCN(8, downsample=rate, pooling=pooling)
            with torch.no_grad():
                grids[pooling] = tuple(module.nodes(torch.zeros(1, 8, *size)).shape[-2:])
        expected = (math.ceil(size[0] / rate), math.ceil(size[1] / rate))
        assert grids["avg"] == grids["conv"] == expected
        rows.append({"feature": f"{size[0]} x {size[1]}", "d": rate, "nodes": expected})
pd.DataFrame(rows).set_index(["feature", "d"])

# %% [markdown]
# **Parameters.** Average pooling has none; the convolutions add $9 D$ per step, a small
# share of the module:

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for channels in (128, 512, 2048):
    for pooling in ("avg", "conv"):
        module = models.CoordinateGCN(channels, downsample=8, pooling=pooling)
        downsampling = sum(p.numel() for p in module.downsample.parameters())
        rows.append((channels, pooling, downsampling, sum(p.numel() for p in module.parameters())))
columns = ["D", "pooling", "downsampling params", "module params"]
params = pd.DataFrame(rows, columns=columns).set_index(["D", "pooling"])
assert params.loc[(2048, "conv"), "downsampling params"] == 3 * 9 * 2048
params

# %% [markdown]
# **Borders and overlap.** The two also differ in *which* pixels a node sees. An average-pooling
# node covers its own $d \times d$ window, disjoint from its neighbours', and a partial window
# at the border averages only what it covers. A stride-2 convolution node is centred on every
# second position and its 3x3 windows overlap; three of them give node $i$ a 15-pixel window
# centred on pixel $8i$, half of which lies in the zero padding at the border. Give the
# convolutions averaging weights (1/9) and feed a constant map of ones: the pooled nodes are
# all exactly 1, the convolved ones fade towards the border.

# %%
# NBVAL_CHECK_OUTPUT
ones = torch.ones(1, 1, 13, 21)
pooled = models.CoordinateGCN(2, downsample=8, pooling="avg").downsample(ones)
convs = models.CoordinateGCN(2, downsample=8, pooling="conv").downsample
with torch.no_grad():
    for conv in convs:
        conv.weight.fill_(1 / 9)
    convolved = convs(ones.expand(1, 2, 13, 21))[:, :1]
print("average pooling:\n", pooled[0, 0].numpy().round(3))
print("strided convolutions (weights 1/9):\n", convolved[0, 0].numpy().round(3))

# %% [markdown]
# Learned convolutions can compensate for the border, and the backbone feature is not
# constant; the paper found the two choices about equivalent in accuracy (as summarised,
# `docs/reference/paper_summary.md`). The package defaults to average pooling: no parameters,
# and a node is exactly the mean of its patch, which makes the views of Section 4 easy to read.

# %% [markdown]
# ## 6. Image size and the sliding window: notebook 09
#
# $m_i$ adds the messages of all $N'$ nodes without dividing by $N'$ (Section 1), so $M_S$ grows
# with the image; the BN after the reprojection divides that out in training mode only.
# Notebook 09 (`notebooks/09_image_size.ipynb`) derives the factor, measures whole-image
# against sliding-window prediction on MiniCity mosaics with the model of Section 4, and says
# why the `cityscapes-paper` preset evaluates by sliding window at its training crop.

# %% [markdown]
# ## Summary
#
# - The coordinate graph downsamples the feature to $N' = \lceil H/d\rceil\lceil W/d\rceil$
#   nodes, $V_S = H_S X$ (an average), connects all nodes by $A_S = \delta(V_S)\Psi(V_S)^\top$
#   and gathers $M_S = A_S \nu(V_S) W_S$; the package's `CoordinateGCN` equals these equations
#   in float64, with $H_S$ as an explicit matrix. It has no non-linearity $\sigma$: the paper,
#   as summarised, applies no ReLU and no batch normalisation in this graph convolution.
# - $A_S$ has rank at most $D/2$ (checked: 8 for $D = 16$ at any $N'$, 64 for the trained
#   MiniCity model's 128 x 128 $A_S$). Computing $\delta(V_S)[\Psi(V_S)^\top \nu(V_S)]$ is
#   linear attention without a softmax: $N' D^2/2$ instead of $N'^2 D$ multiply-adds, so it
#   pays only when $N' > D/2$; timed on this CPU (one thread) the measured crossover falls
#   near $N' = D/2$, within a factor that call overheads and other work move from run to run.
# - The sum over the nodes in $A_S\nu(V_S)$ is not normalised (notebook 09: what that does
#   on images larger than the training crops).
# - A row of the trained $A_S$, drawn on a colour scale centred on 0 for a node inside the
#   train (found from the label), follows image regions rather than distance. On a MiniCity
#   v2 image the rows do not separate the train from the look-alike truck: every train node's
#   row correlates at least 0.88 with some truck node's, while two train nodes' rows can
#   correlate as little as 0.23; the model labels that truck as a bus. Average pooling and
#   strided convolutions give the same node grid, pooling without parameters or border fading.

# %% [markdown]
# ## Check your understanding
#
# **Q1.** One layer of a graph convolution is $\sigma(A X W)$. Where is $\sigma$ in the
# coordinate graph, and would a ReLU after $W_S$ stop the reordering of Section 1?
#
# <details><summary>Answer</summary>
#
# There is none: the paper, as summarised, applies no ReLU and no batch normalisation in the
# coordinate-space graph convolution, so the package computes $M_S = A_S \nu(V_S) W_S$ and
# nothing after it but the reprojection. A ReLU after $W_S$ would act on the finished product,
# $\sigma(A_S \nu(V_S) W_S)$, and the product inside could still be reordered. What would stop
# the reordering is a non-linearity on $A_S$ itself, such as a softmax over its rows: that is
# softmax attention, which must form the $N' \times N'$ matrix (Section 3).
#
# </details>
#
# **Q2.** $A_S$ of a 1024 x 2048 frame on the authors' backbone at $d = 8$ is 561 x 561. What
# is its largest possible rank for the authors' 512-channel head feature, and why?
#
# <details><summary>Answer</summary>
#
# 256. $A_S = \delta(V_S)\Psi(V_S)^\top$ is the product of two $561 \times 256$ matrices
# ($D/2 = 256$), and a product's rank is at most the inner dimension.
#
# </details>
#
# **Q3.** For the `cityscapes-paper` preset ($D = 2048$, 144 nodes on a 768 crop), which order
# of $\delta\Psi^\top\nu$ is cheaper, and is the package's choice wrong there?
#
# <details><summary>Answer</summary>
#
# The literal one: $N' = 144 < D/2 = 1024$, so forming the 144 x 144 matrix costs
# $N'/(D/2) \approx 0.14$ of the linear order's work. The package's order is still correct and
# cheap in absolute terms (the graph is a small part of a ResNet-101's cost); it is the choice
# that never fails when $N'$ is large.
#
# </details>
#
# **Q4.** The rows of $A_S$ in Section 4 share one colour scale centred on 0. What would a
# scale from each map's minimum to its maximum (`plot_affinity`'s default, magma) hide?
#
# <details><summary>Answer</summary>
#
# The sign. A row of $A_S$ is not normalised and has both signs, and a negative weight
# subtracts that node's message. On a scale from minimum to maximum, 0 falls wherever the
# map's range puts it, so a node that subtracts looks merely darker than one that adds little,
# and two maps each with its own range cannot be compared colour for colour. Centred on 0,
# with one limit for both maps, white is "ignored", red "adds" and blue "subtracts" in both.
#
# </details>

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Write $H_S$ for `pooling="conv"` with $d = 2$ as an explicit matrix for one
# channel on a 13 x 21 map (a stride-2 3x3 convolution with padding 1 is linear) and check it
# against `module.downsample`. What is its shape?
#
# <details><summary>Worked answer</summary>
#
# Apply the convolution to every unit vector of the input: column $p$ of $H_S$ is the output
# for the one-hot image at pixel $p$.
#
# ```python
# module = models.CoordinateGCN(2, downsample=2, pooling="conv")
# conv = module.downsample[0]  # depthwise: channel 0 has its own 3x3 kernel
# eye = torch.eye(13 * 21).view(-1, 1, 13, 21)
# columns = F.conv2d(eye, conv.weight[:1], stride=2, padding=1)  # [273, 1, 7, 11]
# H_S = columns.flatten(1).T  # [77, 273]
# x = torch.randn(1, 2, 13, 21)
# assert torch.allclose(module.downsample(x)[0, 0].flatten(), H_S @ x[0, 0].flatten())
# ```
#
# $H_S$ is $77 \times 273$: $\lceil 13/2\rceil \lceil 21/2\rceil = 7 \cdot 11 = 77$ nodes by
# 273 pixels, with at most 9 non-zero entries per row (fewer at the border, where the window
# reaches into the padding).
#
# </details>
#
# **Exercise 2.** Redo the cost comparison of Section 3 for the `cityscapes-paper` preset,
# $D/2 = 1024$. Where is the crossover, and how much more work does the package's linear
# order do than the literal one on a 768 crop and on a whole frame?
#
# <details><summary>Worked answer</summary>
#
# The crossover is at $N' = D/2 = 1024$ nodes (by the FLOP count; a timing would put it near
# there). The preset has 12 x 12 = 144 nodes on a 768 crop and 16 x 32 = 512 on a frame
# (Section 3's table), so the linear order does $(D/2)/N' = 1024/144 = 7.1$ times the literal
# order's work on a crop and $1024/512 = 2.0$ times on a frame. In absolute terms,
# $N' D^2/2 = 2 \cdot 144 \cdot 1024^2 = 0.30$ G multiply-adds per crop, small next to the
# backbone.
#
# </details>

# %%
# The numeric answers above, checked

# Exercise 1: H_S of the strided convolutions, 77 x 273, equals module.downsample
module = models.CoordinateGCN(2, downsample=2, pooling="conv")
eye = torch.eye(13 * 21).view(-1, 1, 13, 21)
H_conv = F.conv2d(eye, module.downsample[0].weight[:1], stride=2, padding=1).flatten(1).T
probe = torch.randn(1, 2, 13, 21)
with torch.no_grad():
    assert torch.allclose(module.downsample(probe)[0, 0].flatten(), H_conv @ probe[0, 0].flatten())
assert tuple(H_conv.shape) == (77, 273) and int((H_conv != 0).sum(1).max()) == 9

# Exercise 2: the preset's node counts and the work ratios of the two orders
crop_nodes = configurations.loc["cityscapes-paper, 768 crop (torchvision R101)", "nodes"]
assert crop_nodes == "12 x 12 = 144"
assert round(1024 / 144, 1) == 7.1 and round(1024 / 512, 1) == 2.0
assert 144 * 2048**2 // 2 == 2 * 144 * 1024**2 and round(2 * 144 * 1024**2 / 1e9, 2) == 0.30
print("all numeric answers check out")


# %%
# Section 4's quote of the ablation (truck IoU, coordinate graph alone 13 %, feature graph
# 20 %) and the Summary's correlations of the train's and the truck's rows, as rounded
def near(value: float, stated: float, within: float = 0.5) -> bool:
    """Whether `value` is `stated` to within `within` (0.5: a point of IoU, rounded)."""
    return abs(float(value) - stated) <= within


runs = pd.DataFrame(dgcn.read_results("experiments/results/minicity"))
truck_iou = 100 * runs.set_index("row")["per_class"].map(lambda c: c["truck"]).groupby("row").mean()
assert near(truck_iou["coordinate"], 13) and near(truck_iou["feature"], 20)
assert near(nearest, 0.88, 0.005) and near(within, 0.23, 0.005)
print("the quoted numbers check out")

# %% [markdown]
# ## References
#
# - L. Zhang et al., *Dual Graph Convolutional Network for Semantic Segmentation*, BMVC 2019,
#   arXiv:1909.06121: the coordinate-space GCN, its letters and the stated detail that no ReLU
#   and no batch normalisation are applied in its graph convolution, as summarised in
#   `docs/reference/paper_summary.md` (the package's docstrings cite it as Sec. 3.2, Eq. 3-5;
#   section and equation numbers unverified here), and the downsampling study (average
#   pooling vs strided convolutions, rate $d$). The paper's numbers and training and
#   evaluation settings used by this book, each with its source (paper as summarised, or the
#   authors' released scripts): `docs/reference/paper_results.md`.
# - The authors' code, github.com/lxtGH/GALD-DGCNet, `libs/models/DualGCNNet.py`: `SpatialGCN`
#   and the `local` downsampling (three stride-2 depthwise convolutions + BN); see
#   `dgcn.models.OfficialCoordinateGCN` and `docs/reference/official_dgcnet.md`.
# - A. Katharopoulos, A. Vyas, N. Pappas, F. Fleuret, *Transformers are RNNs: Fast
#   Autoregressive Transformers with Linear Attention*, ICML 2020 (linear attention,
#   $\varphi(Q)(\varphi(K)^\top V)$).
# - X. Wang, R. Girshick, A. Gupta, K. He, *Non-local Neural Networks*, CVPR 2018 (the dense
#   $N \times N$ affinity this module avoids; zero-initialised output BN).
# - S. Ioffe, C. Szegedy, *Batch Normalization*, ICML 2015 (the BN after the reprojection).
# - Package: `dgcn/models/coordinate_gcn.py`, `dgcn/viz/graphs.py`, `dgcn/training/frozen.py`
#   (how the committed heads were trained), `experiments/configs/minicity-ablation.yaml`,
#   `experiments/configs/cityscapes-paper.yaml`. Notebook 09 (`notebooks/09_image_size.ipynb`)
#   continues with the image size.
# - PyTorch: `nn.AvgPool2d(ceil_mode=True)`, `nn.Conv2d(groups=channels)`,
#   `torch.linalg.svdvals`, `torch.nn.functional.interpolate(align_corners=True)`.
