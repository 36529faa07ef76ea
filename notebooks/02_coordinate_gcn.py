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
# # 02 · Coordinate-space GCN
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/02_coordinate_gcn.ipynb)
#
# The first of DGCNet's two graphs reasons over *positions*. The feature map is downsampled to
# a coarse grid of nodes, every node is connected to every other node with a weight computed
# from their features, and one graph convolution lets each node gather the whole image before
# the result is projected back to the pixels (paper Sec. 3.2, Eq. 3-5). This notebook derives
# the module, shows the reordering of the matrix products that makes it linear in the number of
# nodes, checks both against the package's `models.CoordinateGCN`, measures the two orders,
# looks at what a node gathers on a MiniCity image, and compares the two ways of downsampling.
#
# You will:
#
# - derive $V_S = H_S X$, $A_S = \delta(V_S)\Psi(V_S)^\top$ and $M_S = A_S \nu(V_S) W_S$ and
#   write $H_S$ as an explicit matrix;
# - verify the package's module against the literal equations in float64;
# - rewrite $A_S \nu(V_S)$ as $\delta(V_S)\,[\Psi(V_S)^\top \nu(V_S)]$ and measure time and
#   memory of both orders as the graph grows;
# - load a DGCNet trained on MiniCity (committed with the repository) and draw the affinities
#   of a chosen pixel;
# - compare average pooling with strided convolutions: node grids and parameters.
#
# | mode | what runs | time |
# |---|---|---|
# | CPU smoke (`DGCN_SMOKE=1`) | timings to 4,096 nodes; trained model loaded | ~15 s |
# | CPU full | timings to 16,384 nodes; the same trained model | not measured |
#
# (Times for 2 CPU cores when the machine is otherwise idle.)

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
# Every constant that costs time, set once from `SMOKE`, and where the trained model and the
# data are. The MiniCity model uses $d = 2$ instead of the paper's 8: its stride-8 feature of a
# 128 x 256 image is only 16 x 32, and $d = 8$ would leave a 2 x 4 graph (Section 4 explains
# the choice).

# %%
# ruff: noqa: E402, B018 (imports where first needed; a cell's last expression is shown)
# %matplotlib inline
NODE_COUNTS = [64, 256, 1024, 4096] if SMOKE else [64, 256, 1024, 4096, 8192, 16384]
TIMING_REPEATS = 3 if SMOKE else 5  # best of this many runs per measurement
CHECKPOINT = "experiments/checkpoints/minicity-dgcnet-paper.pt"  # committed, trained (Sec. 4)
MINICITY = "data/minicity"  # the default MiniCity, generated on first use

# %% [markdown]
# ## 1. The equations
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
#    the graph is dense and depends on the image. The paper normalises it in no way.
# 3. **Graph convolution.** $M_S = A_S\, \nu(V_S)\, W_S \in \mathbb{R}^{N' \times D/2}$ with
#    $\nu$ a third 1x1 convolution $D \to D/2$ and $W_S \in \mathbb{R}^{D/2 \times D/2}$. Row
#    by row, $m_i = \sum_{j=1}^{N'} \big(\delta(v_i) \cdot \Psi(v_j)\big)\, \nu(v_j)\, W_S$:
#    every node gathers *every* node, weighted by similarity.
# 4. **Reprojection.** $\tilde X_S$ = a 1x1 convolution $D/2 \to D$ of $M_S$ followed by
#    BatchNorm, upsampled bilinearly to $H \times W$. The network adds it, $X + \tilde X_S$
#    (fusion with the feature graph in notebook 04).
#
# The BatchNorm in step 4 is ours (the released code has one in the same place): $A_S$ is not
# normalised, so the scale of $M_S$ grows with $N'$; the BN removes that dependence. Its scale
# starts at zero (`zero_init=True`), so a fresh module adds exactly nothing and a pretrained
# backbone's features pass unchanged until the graph has learned something.
#
# **Cost.** Read literally, step 3 forms $A_S$: $N'^2 \cdot D/2$ multiply-adds and $N'^2$
# numbers of memory, then as many again to apply it. Matrix products are associative, so
#
# $$A_S\, \nu(V_S) = \big(\delta(V_S) \Psi(V_S)^\top\big) \nu(V_S)
#   = \delta(V_S) \big(\Psi(V_S)^\top \nu(V_S)\big),$$
#
# where the bracket is only $D/2 \times D/2$: $N' (D/2)^2$ multiply-adds to form, as many to
# apply, $(D/2)^2$ numbers of memory. The cost becomes linear in the number of nodes, $O(N')$
# instead of $O(N'^2)$, and $A_S$ is never formed. The package evaluates this order.

# %% [markdown]
# ## 2. The package against the literal equations
#
# A module with $D = 16$ channels and $d = 4$ on a 13 x 21 map, so the borders hold partial
# windows. We build $H_S$ as an explicit matrix, compute every step of Section 1 from the
# module's weights with plain matrix products, and compare with the module's own
# `nodes`, `adjacency` and `forward`, in float64. The reprojection's BatchNorm gets random
# statistics and a non-zero scale first: with its zero initial scale the output would be
# identically zero and the comparison empty.

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


torch.manual_seed(0)
D, d, h, w = 16, 4, 13, 21
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


X = x[0].flatten(1).T  # [N, D]
H_S = pooling_matrix(h, w, d)  # [N', N]
V_S = H_S @ X  # [N', D]
A_S = conv1x1(gcn.query, V_S) @ conv1x1(gcn.key, V_S).T  # delta(V_S) Psi(V_S)^T: [N', N']
W_S = gcn.state_update.weight[:, :, 0, 0].T  # the conv stores W_S^T
M_S = A_S @ conv1x1(gcn.value, V_S) @ W_S  # [N', D/2]
Y = conv1x1(gcn.reproject[0], M_S)  # back to D channels, at node resolution
Y = (Y - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
hn, wn = math.ceil(h / d), math.ceil(w / d)
X_S = F.interpolate(Y.T.reshape(1, D, hn, wn), size=(h, w), mode="bilinear", align_corners=True)

with torch.no_grad():
    torch.testing.assert_close(gcn.nodes(x)[0].flatten(1).T, V_S)
    torch.testing.assert_close(gcn.adjacency(x)[0], A_S)
    torch.testing.assert_close(gcn(x), X_S)
print(f"N = {h * w} pixels -> N' = {hn} x {wn} = {hn * wn} nodes; H_S {tuple(H_S.shape)}")
print("V_S = H_S X, A_S = delta(V_S) Psi(V_S)^T and the module's output: equal to the literal")
print("row sums of H_S (every node is an average):", H_S.sum(1).unique().tolist())

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
# ## 3. Time and memory of the two orders
#
# With $C = D/2$ channels per node, the literal order costs $2 N'^2 C$ multiply-adds and an
# $N' \times N'$ matrix; the linear order $2 N' C^2$ and a $C \times C$ matrix. Their ratio is
# $N'/C$: the reordering pays once the graph has more nodes than channels. We time both on
# random $\delta, \Psi, \nu$ with $C = 128$ on one CPU thread (best of a few runs,
# `time.perf_counter`) and count the bytes of the largest intermediate matrix in float32.

# %%
import time

import pandas as pd

C = 128


def best_time(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


threads = torch.get_num_threads()
torch.set_num_threads(1)  # one core: steadier timings on a shared machine
torch.manual_seed(0)
records = []
try:
    for count in NODE_COUNTS:
        q, k, v = (torch.randn(count, C) for _ in range(3))
        literal_s = best_time(lambda q=q, k=k, v=v: (q @ k.T) @ v, TIMING_REPEATS)
        linear_s = best_time(lambda q=q, k=k, v=v: q @ (k.T @ v), TIMING_REPEATS)
        records.append(
            {
                "nodes N'": count,
                "literal ms": 1e3 * literal_s,
                "linear ms": 1e3 * linear_s,
                "literal MiB": 4 * count**2 / 2**20,  # the N' x N' matrix A_S
                "linear MiB": 4 * C**2 / 2**20,  # the C x C matrix Psi^T nu
            }
        )
finally:
    torch.set_num_threads(threads)
timings = pd.DataFrame(records).set_index("nodes N'")
timings.round(3)

# %%
fig = viz.new_figure((7.6, 3.0))
ax_time, ax_memory = fig.subplots(1, 2)
for column, style in (("literal", "o-"), ("linear", "s-")):
    ax_time.loglog(timings.index, timings[f"{column} ms"], style, label=column, ms=4)
    ax_memory.loglog(timings.index, timings[f"{column} MiB"], style, label=column, ms=4)
for ax, unit in ((ax_time, "time (ms)"), (ax_memory, "largest matrix (MiB, float32)")):
    ax.axvline(C, color="grey", ls=":", lw=1)
    ax.set_xlabel("nodes N'")
    ax.set_ylabel(unit)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
ax_time.set_title(f"A_S nu(V_S), C = {C} (dotted: N' = C)", fontsize=9)
ax_memory.set_title("memory of the intermediate", fontsize=9)
fig

# %% [markdown]
# The literal time grows with the square of $N'$ and the linear one in proportion to $N'$
# (the timings are noisy on a shared CPU, but the slopes are clear); the literal memory grows
# quadratically while the linear order needs the same 64 KiB at every size.
#
# Where do real configurations sit? On a 1024 x 2048 Cityscapes frame with $d = 8$ the graph
# has $17 \times 33 = 561$ nodes. The authors' head works on $C = 256$ ($D = 512$): the linear
# order is about 2x cheaper. The paper's variant on the raw backbone feature has
# $C = 1024$ ($D = 2048$): there $N' < C$ and the literal order would even be the cheaper one,
# with a harmless 1.2 MiB matrix. The reordering matters when the graph is large: without
# downsampling ($d = 1$) the frame's graph has 33,153 nodes, and the literal $A_S$ needs 4.1 GiB
# (notebook 01) where the linear order needs 4 MiB.

# %% [markdown]
# ## 4. What one node gathers, on a MiniCity image
#
# The repository commits DGCNet models trained on MiniCity (`experiments/checkpoints/`). We
# load `minicity-dgcnet-paper.pt`: the paper's equations, this notebook's `CoordinateGCN` and
# notebook 03's `FeatureGCN` added to the feature as in Eq. 9, on the 128-channel layer4
# feature $X$ of a micro ResNet at stride 8. It was trained in two stages, as the row with
# both graphs of the CPU ablation (`dgcn reproduce`, preset `minicity-ablation`, notebook 08):
# the backbone once, end to end on MiniCity, then frozen; then only the head, for the number
# of iterations printed below, on the frozen backbone's features. Loading takes a fraction of a
# second, so smoke and full mode draw the same trained model. We catch the feature map that
# enters the graph and draw rows of $A_S$.
#
# **Why $d = 2$.** A 128 x 256 MiniCity image gives a 16 x 32 feature at stride 8; with $d = 8$
# the graph would have 2 x 4 nodes. With $d = 2$ it has 8 x 16 = 128 nodes, each the average of
# a 2 x 2 block of features, which sit on a 16 x 16 pixel patch of the image (each feature
# itself sees far beyond its patch, notebook 01): the same order of node count as Cityscapes
# at $d = 8$ (13 x 13 on a 769 crop, 17 x 33 on a full frame).
#
# **How much did the graph learn?** The reprojection's BN scale $\gamma$ multiplies all that
# the graph adds. With `zero_init` (the package's default, Section 1) it starts at 0: then
# $\delta$ and $\Psi$ receive no gradient in the first step and, while $\gamma$ is small, only
# a small one (the gradient that reaches them is proportional to $\gamma$), so the graph terms
# can stay small; without it $\gamma$ starts at BN's default, 1. The cell prints which start
# this model had. Training seeds the initialisation with `train.seed`, so rebuilding the model
# after that seed gives the head's exact initial weights (the rebuilt backbone is random; the
# loaded one is the frozen backbone): we print how far $\delta$ and $\Psi$ have moved, and the
# mean $|\gamma|$, which says how much of $\tilde X_S$ the network actually adds to $X$.

# %%

model, cfg = dgcn.load_for_inference(CHECKPOINT)
coordinate = model.head.graph.coordinate
print(f"{CHECKPOINT}: {cfg.model.name} {cfg.model.overrides}")
print(f"head trained {cfg.train.iterations} iterations on the frozen {cfg.frozen.backbone}")

torch.manual_seed(cfg.train.seed)  # the head was initialised right after this seed
initial = models.build_model(cfg.model.name, cfg.model.num_classes, **cfg.model.overrides)
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
# A validation image with a train crossing behind cars. MiniCity draws image $i$ of a split
# from the seed, the split and $i$ alone, so the default MiniCity of the other notebooks holds
# the same first validation images as the ablation's larger set (the call checks that seed
# and size are the checkpoint's). The model's prediction first, then the
# node grid: each cell is one node, the average of the features on a 16 x 16 patch of the
# image; the highlighted cell holds the chosen pixel.

# %%
from matplotlib.patches import Rectangle

TRAIN, ROAD = 16, 0
height_px, width_px = cfg.data.minicity_size
root = datasets.ensure_minicity(
    MINICITY, seed=cfg.data.minicity_seed, height=height_px, width=width_px, progress=False
)  # generated on first use (a few seconds), then reused
val_set = datasets.Cityscapes(root, "val")
image, mask = val_set[1]
with torch.no_grad():
    prediction = model(image[None])["out"].argmax(1)
viz.prediction_grid(image[None], mask[None], prediction, titles=["val image 1"])

# %%
graph, features = viz.graphs.capture_graph_input(model, image[None])
assert graph is model.head.graph and features.shape[-2:] == (16, 32)
with torch.no_grad():
    assert torch.equal(features, model.backbone(image[None])["out"])  # the layer4 feature X
node_grid = tuple(coordinate.nodes(features).shape[-2:])
patch = 8 * coordinate.downsample_rate  # image pixels per node side: stride 8 times d


def pixel_of(class_id: int) -> tuple[int, int]:
    """The middle pixel (in scan order) of a class in the label: a deterministic choice."""
    ys, xs = (mask == class_id).nonzero(as_tuple=True)
    middle = len(ys) // 2
    return int(ys[middle]), int(xs[middle])


pixels = {"train": pixel_of(TRAIN), "road": pixel_of(ROAD)}
picture = viz.denormalize(image)
y, x = pixels["train"]
node = viz.graphs.node_of_pixel(
    coordinate, viz.graphs.feature_pixel((y, x), picture.shape[:2], features.shape[-2:]), node_grid
)
i, j = divmod(node, node_grid[1])
fig = viz.new_figure((5.2, 2.9), dpi=72)
ax = fig.add_subplot()
ax.imshow(picture)
for k in range(1, node_grid[0]):
    ax.axhline(k * patch - 0.5, color="white", lw=0.5, alpha=0.7)
for k in range(1, node_grid[1]):
    ax.axvline(k * patch - 0.5, color="white", lw=0.5, alpha=0.7)
ax.add_patch(Rectangle((j * patch - 0.5, i * patch - 0.5), patch, patch, fill=False))
ax.patches[-1].set(edgecolor="cyan", linewidth=2)
ax.plot([x], [y], "x", color="cyan", ms=8, mew=2)
ax.set_title(
    f"{node_grid[0]} x {node_grid[1]} nodes; node ({i}, {j}) holds pixel {y, x}", fontsize=9
)
ax.set_axis_off()
fig

# %% [markdown]
# Now the row of $A_S$ of that node, $(A_S)_{ij} = \delta(v_i)\cdot\Psi(v_j)$ for every node
# $j$, drawn over the image (`viz.graphs.coordinate_affinity` and `plot_affinity`): the larger
# the value, the more node $j$'s message counts in what the train's node gathers in $M_S$.
# Then the same for a road pixel. The values are unnormalised and can be negative (a negative
# weight subtracts that node's message): read the colour bar, not only the brightness. The
# maps follow the image's regions (train, cars, road, buildings, sky) rather than distance to
# the pixel: the graph weighs nodes by what their features are, not by where they are.

# %%
affinity = {
    name: viz.graphs.coordinate_affinity(coordinate, features, pixel, image_size=picture.shape[:2])
    for name, pixel in pixels.items()
}
trained = f"{cfg.train.iterations} head iterations"
viz.graphs.plot_affinity(
    picture, affinity["train"], pixels["train"], title=f"row of A_S (train), {trained}"
)

# %%
viz.graphs.plot_affinity(
    picture, affinity["road"], pixels["road"], title=f"row of A_S (road), {trained}"
)

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
    full = coordinate.adjacency(features)[0]
    full_initial = initial_coordinate.adjacency(features)[0]
    nodes_v = coordinate.nodes(features)
    for name in ("query", "key"):
        now = getattr(coordinate, name)(nodes_v)
        before = getattr(initial_coordinate, name)(nodes_v)
        moved = (now - before).norm() / before.norm()
        print(f"{name:5s} of this image's nodes, trained vs initial: {100 * moved:.0f} % apart")
assert torch.allclose(full[node].view(node_grid), affinity["train"])
apart = (full - full_initial).norm() / full_initial.norm()
print(f"A_S, trained vs initial delta and Psi: {100 * apart:.0f} % apart")
viz.graphs.adjacency_heatmap(full, title=f"A_S of val image 1 (paper head, {trained})")

# %%
viz.graphs.adjacency_heatmap(full_initial, title="A_S of val image 1, initial delta and Psi")

# %% [markdown]
# The authors' head (`minicity-dgcnet-official.pt`, drawn in notebooks 03 and 07) has no such matrix
# to show: its coordinate branch, `OfficialCoordinateGCN`, normalises a channel-by-channel
# matrix instead of forming a node-by-node one (exercise 2).

# %% [markdown]
# ## 5. Average pooling or strided convolutions?
#
# The paper builds $H_S$ either by average pooling or by strided depthwise convolutions and
# reports that both work about equally well and that the rate $d$ matters little (the exact
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
        rows.append(
            {
                "D": channels,
                "pooling": pooling,
                "downsampling params": sum(p.numel() for p in module.downsample.parameters()),
                "module params": sum(p.numel() for p in module.parameters()),
            }
        )
params = pd.DataFrame(rows).set_index(["D", "pooling"])
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
# constant; the paper found the two choices equivalent in accuracy. The package defaults to
# average pooling: no parameters, and a node is exactly the mean of its patch, which makes the
# views of Section 4 easy to read.

# %% [markdown]
# ## Summary
#
# - The coordinate graph downsamples the feature to $N' = \lceil H/d\rceil\lceil W/d\rceil$
#   nodes, $V_S = H_S X$, connects all nodes by $A_S = \delta(V_S)\Psi(V_S)^\top$ and gathers
#   $M_S = A_S \nu(V_S) W_S$; a 1x1 convolution and BN reproject it, and it is upsampled back.
# - The package's `CoordinateGCN` equals the literal equations (checked in float64, with
#   $H_S$ as an explicit matrix).
# - Evaluating $\delta(V_S)\,[\Psi(V_S)^\top \nu(V_S)]$ instead of $[\delta \Psi^\top]\nu$ makes
#   the cost linear in $N'$ and never forms $A_S$; it pays when $N'$ exceeds the channels $D/2$.
# - On MiniCity a node of a $d = 2$ graph is a 16 x 16 patch, and a row of $A_S$ of the
#   committed trained model shows which nodes it gathers from, by region rather than by
#   distance; how far $\delta$, $\Psi$ and $\gamma$ moved from their initialisation tells how
#   much of that the graph learned and how much it owes to the trained features.
# - Average pooling and strided convolutions give the same node grid; pooling has no
#   parameters and no border fading.

# %% [markdown]
# ## Exercises
#
# 1. Write $H_S$ for `pooling="conv"` with $d = 2$ as an explicit matrix for one channel (a
#    stride-2 3x3 convolution with padding 1 is linear) and check it against
#    `module.downsample`. *Hint:* apply the convolution to every unit vector of the input.
# 2. Add a row-wise softmax to $A_S$ (as non-local networks do). Can the linear order still
#    be used? *Hint:* the softmax needs the whole row $\delta(v_i)\cdot\Psi(v_j)$ for all $j$;
#    compare with what the authors' released code normalises (`OfficialCoordinateGCN`).
# 3. Redo the timing of Section 3 with $C = 1024$ (the paper's variant on ResNet-101). Where
#    is the crossover now, and which order is cheaper for a Cityscapes frame at $d = 8$?
# 4. Train the head of Section 4 with another $d$ on the same frozen backbone:
#    `dgcn reproduce --rows both --opt model.overrides.downsample=4 --out runs/d4`, then
#    load `runs/d4/both-seed0/last.pt` and redraw the affinity maps; the same with
#    `downsample=1`. *Hint:* with $d = 1$ every node is one stride-8 feature position.
# 5. With `zero_init=False`, check that a fresh `CoordinateGCN` changes the network's output
#    at initialisation, and explain why that can hurt a pretrained backbone.

# %% [markdown]
# ## References
#
# - L. Zhang et al., *Dual Graph Convolutional Network for Semantic Segmentation*, BMVC 2019,
#   arXiv:1909.06121: Sec. 3.2 (coordinate-space GCN, Eq. 3-5; the reordering of the product)
#   and the downsampling study (average pooling vs strided convolutions, rate $d$).
# - The authors' code, github.com/lxtGH/GALD-DGCNet, `libs/models/DualGCNNet.py`: `SpatialGCN`
#   and the `local` downsampling (three stride-2 depthwise convolutions + BN); see
#   `dgcn.models.OfficialCoordinateGCN` and `docs/reference/official_dgcnet.md`.
# - X. Wang, R. Girshick, A. Gupta, K. He, *Non-local Neural Networks*, CVPR 2018 (the dense
#   $N \times N$ affinity this module avoids; zero-initialised output BN).
# - Package: `dgcn/models/coordinate_gcn.py`, `dgcn/viz/graphs.py`, `dgcn/training/frozen.py`
#   (how the committed head was trained), `experiments/configs/minicity-ablation.yaml`.
# - PyTorch: `nn.AvgPool2d(ceil_mode=True)`, `nn.Conv2d(groups=channels)`,
#   `torch.nn.functional.interpolate(align_corners=True)`.
