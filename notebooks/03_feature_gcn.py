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
# # 03 · The feature-space GCN
#
# [![Open In
# Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/03_feature_gcn.ipynb)
#
# The coordinate-space graph of notebook 02 connects *places* in the image. The second half of
# DGCNet connects *kinds of content*: every pixel is projected onto a small set of $D/4$ abstract
# nodes, the nodes exchange information through a learned $D/4 \times D/4$ adjacency, and the
# result is projected back onto the pixels (paper Sec. 3.3; numbering unverified). This notebook
# derives the
# feature-space GCN, checks the package's `FeatureGCN` against the literal matrix formula in
# float64, measures why it is cheap (its graph does not grow with the image), measures what
# training did to the adjacency and the node assignments of the DGCNets trained on MiniCity
# that the repository commits, and compares the paper's $(I - A_F)$ with the authors' released
# $(I + A)$ with BatchNorm.
#
# You will:
#
# - derive $V_F = \theta(X)^\top \phi(X)$, $M_F = (I - A_F) V_F W_F$ and
#   $\tilde X_F = \Phi(H_F M_F)$ with every shape;
# - verify `dgcn.models.FeatureGCN` against that formula, reading the weights from the module;
# - count FLOPs and memory against the image size and see the graph stay $D_2 \times D_2$;
# - see why $(I - A)$ with a normalised $A$ is a difference (sharpening) operator and Laplacian
#   smoothing is $(I - \gamma L)$, on a graph of four nodes;
# - load the DGCNets trained on MiniCity and measure what training did to $A_F$ and to the
#   node assignments, for the paper's and for the authors' head;
# - verify the authors' `OfficialFeatureGCN` and show how its $(I + A)$ relates to $(I - A_F)$.
#
# | mode | what runs | time |
# |---|---|---|
# | smoke (`DGCN_SMOKE=1`) | every cell; the trained models are loaded, not trained | ~15 s |
# | full | the same cells: nothing here depends on the mode | as smoke |
#
# (Smoke time measured on this project's 2-core CPU while other jobs shared the cores.)

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
            subprocess.run(clone, check=True)
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
# Where the trained models and the data are, set here once. Nothing in this notebook costs
# enough to need a smaller smoke setting: the models of Section 4 are loaded, not trained.

# %%
PAPER_CHECKPOINT = "experiments/checkpoints/minicity-dgcnet-paper.pt"  # paper-equation head
OFFICIAL_CHECKPOINT = "experiments/checkpoints/minicity-dgcnet-official.pt"  # the authors' head
MINICITY = "data/minicity"  # the default MiniCity, generated on first use
print(f"SMOKE={SMOKE}: the same cells in both modes")

# %%
# ruff: noqa: E402 (a notebook imports in the cell where a module is first needed)
# %matplotlib inline
import math

import pandas as pd
import torch

_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. Derivation: nodes that are regions of feature space
#
# Write the backbone feature as a matrix $X \in \mathbb{R}^{N \times D}$: one row per pixel,
# $N = HW$. The coordinate graph of notebook 02 keeps the pixels' positions and connects them.
# The feature-space graph forgets positions. It first **projects** the pixels onto $D_2$ nodes:
#
# $$H_F = \theta(X) \in \mathbb{R}^{N \times D_2}, \qquad
#   V_F = H_F^\top \, \phi(X) = \theta(X)^\top \phi(X) \in \mathbb{R}^{D_2 \times D_1}
#   \qquad (D_2 = D/4,\; D_1 = D/2).$$
#
# $\theta$ ($D \to D_2$) and $\phi$ ($D \to D_1$) are 1x1 convolutions: $\theta$ says how much
# each pixel belongs to each node, $\phi$ reduces the features each pixel brings. Row $k$ of
# $V_F$, $V_F[k] = \sum_{p=1}^{N} H_F[p, k]\, \phi(X)[p]$, is a weighted sum of the reduced
# features of *all* pixels, with weights "how much pixel $p$ belongs to node $k$". A node is a
# soft region of the image defined by what it looks like, not by where it is: two cars at
# opposite ends of the street can feed the same node.
#
# **The letters.** This book writes $\theta$ for the projection onto the nodes and $\phi$ for
# the reduction, as the authors' released code does (`theta`: $C \to C/4$, `phi`:
# $C \to C/2$; `docs/reference/official_dgcnet.md`) and as GloRe (Chen et al., CVPR 2019) does,
# whose construction the feature graph follows. Whether the paper's own text letters them the
# same way is unverified here (check arXiv 1909.06121).
#
# Then **one graph convolution** over the $D_2$ nodes (the paper's Sec. 3.1, numbering unverified:
# $\sigma(A X W)$, here without
# a non-linearity):
#
# $$M_F = (I - A_F)\, V_F\, W_F, \qquad A_F \in \mathbb{R}^{D_2 \times D_2},\;
#   W_F \in \mathbb{R}^{D_1 \times D_1}.$$
#
# Unlike $A_S$ of the coordinate graph, $A_F$ is **not computed from the image**: it is a
# learned parameter, the same for every input, and nothing constrains it (it need not be
# normalised, symmetric or non-negative). $(I - A_F)\, V_F$ gives every node its own state
# minus a learned combination of all the node states, and $W_F$ updates the $D_1$ features of
# every node (the "state update"). GloRe (Chen et al., CVPR 2019) uses the same construction.
#
# **"Laplacian smoothing" is a nominal name here.** The $(I - A_F)$ step is often called
# Laplacian smoothing (whether the paper uses the phrase is unverified here; check arXiv
# 1909.06121). For a *fixed* graph, two different operators hide behind the words:
#
# - With the row-normalised adjacency $\hat A$ of a graph (every row sums to 1),
#   $L = I - \hat A$ is its (random-walk) graph Laplacian, and $(I - \hat A) V = L V$ is every
#   node's state **minus** the mean of its neighbours'. That is a difference operator: it maps
#   a signal that is constant over the graph to zero ($L \mathbf{1} = 0$) and amplifies what
#   differs from its neighbourhood, a high-pass, *sharpening* filter.
# - **Laplacian smoothing** is $V \leftarrow (I - \gamma L)\, V = (1 - \gamma) V + \gamma \hat A V$
#   with $0 < \gamma \le 1$: every node moves towards the mean of its neighbours, a low-pass
#   filter. Li, Han and Wu (AAAI 2018) read a GCN layer of Kipf and Welling as this with
#   $\gamma = 1$ on the graph with self-loops.
#
# $(I - A_F)$ *is* Laplacian smoothing when the learned matrix is $A_F = \gamma L$, and it is the
# difference operator when $A_F = \hat A$. A learned, unconstrained $A_F$ can be either, or
# neither: training decides, and the name says nothing about what a trained $A_F$ does. Section
# 2 shows both operators on a graph of four nodes; Section 4 measures the trained $A_F$.
#
# Finally the nodes are **reprojected** onto the pixels with the same projection $H_F$:
#
# $$\tilde X_F = \Phi(H_F M_F) \in \mathbb{R}^{N \times D},$$
#
# $\Phi$ a 1x1 convolution $D_1 \to D$. Our paper variant follows $\Phi$ with a BatchNorm:
# $V_F$ is a sum over all $N$ pixels without a $1/N$, so its scale grows with the image. In
# training mode the BN divides that growth out with the batch's statistics; in eval mode it
# applies the statistics frozen on the training crops and passes the growth on, which is why
# the paper preset evaluates with a sliding window of its training crop (notebook 02, Section
# 6, measures it). The BN's scale starts at zero, so training starts from
# $\tilde X_F = 0$ (the docstring of `dgcn/models/feature_gcn.py` gives the reasons). The
# network adds $\tilde X_F$ to $X$ (notebook 04).
#
# In the package, $\theta$ is `to_nodes`, $\phi$ is `to_features`, $A_F$ is `adjacency` and
# $W_F$ is `state_update`, both stored as kernel-1 `Conv1d` weights:
# `adjacency.weight[:, :, 0]` $= A_F$ (the conv runs with the nodes as channels) and
# `state_update.weight[:, :, 0]` $= W_F^\top$ (it runs on $M^\top$, features as channels).
# $\Phi$ is `reproject`, a 1x1 conv plus that BatchNorm.

# %% [markdown]
# ## 2. Verify: the package against the explicit formula, in float64
#
# We build a small `FeatureGCN` ($D = 16$, so $D_2 = 4$ nodes with $D_1 = 8$ features), give
# its BatchNorm non-trivial statistics and a non-zero scale (otherwise the output would be
# exactly zero and the test empty), switch to eval mode (BN then applies its running
# statistics, an affine map per channel), and recompute everything with plain matrix products.

# %%
D = 16
fgcn = models.FeatureGCN(D).double().eval()
bn = fgcn.reproject[1]
with torch.no_grad():
    bn.weight.uniform_(0.5, 1.5)  # zero-initialised in the package: make it non-trivial
    bn.bias.normal_()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
x = torch.randn(2, D, 6, 10, dtype=torch.float64)

theta = fgcn.to_nodes.weight[:, :, 0, 0]  # [D2, D]: the projection onto the nodes
phi = fgcn.to_features.weight[:, :, 0, 0]  # [D1, D]: the reduction
A_F = fgcn.adjacency.weight[:, :, 0]  # [D2, D2]
W_F = fgcn.state_update.weight[:, :, 0].T  # [D1, D1]: the conv stores W_F^T
Phi = fgcn.reproject[0].weight[:, :, 0, 0]  # [D, D1]
eye = torch.eye(D // 4, dtype=torch.float64)


def batchnorm_eval(rows, norm):
    """BN in eval mode on [N, C] rows: (x - running mean) / sqrt(running var + eps) * w + b."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return (rows - norm.running_mean) * scale + norm.bias


with torch.no_grad():
    out = fgcn(x)
    h_pkg, v_pkg = fgcn.nodes(x)
    for b in range(x.shape[0]):
        X = x[b].flatten(1).T  # [N, D]
        H_F = X @ theta.T  # [N, D2]
        V_F = H_F.T @ (X @ phi.T)  # [D2, D1]
        M_F = (eye - A_F) @ V_F @ W_F  # [D2, D1]
        pre_bn = (H_F @ M_F) @ Phi.T  # [N, D]
        expected = batchnorm_eval(pre_bn, bn)
        torch.testing.assert_close(h_pkg[b], H_F.T, rtol=0, atol=1e-12)
        torch.testing.assert_close(v_pkg[b], V_F, rtol=0, atol=1e-12)
        torch.testing.assert_close(out[b], expected.T.reshape(D, 6, 10), rtol=0, atol=1e-10)
print("FeatureGCN == Phi(H_F (I - A_F) V_F W_F), then BN, for both images")

# %%
# NBVAL_CHECK_OUTPUT
print(f"H_F {tuple(H_F.shape)}   V_F {tuple(V_F.shape)}   A_F {tuple(A_F.shape)}")
print(f"W_F {tuple(W_F.shape)}   M_F {tuple(M_F.shape)}   X~_F {tuple(out.shape[1:])}")

# %% [markdown]
# In training mode the package's BN uses batch statistics; the pre-BN tensor
# $\Phi(H_F M_F)$ does not depend on the mode, so we can also compare it directly by running
# the module's own `reproject[0]` conv:

# %%
with torch.no_grad():
    y = torch.bmm(fgcn.state_update((v_pkg - fgcn.adjacency(v_pkg)).transpose(1, 2)), h_pkg)
    pre_bn_pkg = fgcn.reproject[0](y.view(2, -1, 6, 10))
torch.testing.assert_close(pre_bn_pkg[1], pre_bn.T.reshape(D, 6, 10), rtol=0, atol=1e-10)
print("pre-BN tensors agree")

# %% [markdown]
# ### Difference or smoothing: $(I - \hat A)$ and $(I - \gamma L)$ on a graph you can draw
#
# Take a path of 4 nodes, 0 - 1 - 2 - 3, with the row-normalised adjacency $\hat A$ (each node
# averages its neighbours) and its Laplacian $L = I - \hat A$, and a signal that is 1 everywhere
# except at node 3, where it is 5. We apply the three operators of Section 1 and measure how
# rough each result is with the *Dirichlet energy* $\sum_{(i,j) \in E} (v_i - v_j)^2$, the
# sum of squared differences along the 3 edges (0 for a constant signal).
#
# - $\hat A V$ replaces every node by its neighbours' mean;
# - $(I - \hat A) V = L V$ is each node minus that mean: the difference operator;
# - $(I - \gamma L) V$ with $\gamma = 1/2$ is Laplacian smoothing, which the package's form
#   $(I - A_F)$ computes when $A_F = \gamma L$ (asserted below).

# %%
# NBVAL_CHECK_OUTPUT
edges = [(0, 1), (1, 2), (2, 3)]
W_path = torch.zeros(4, 4, dtype=torch.float64)
for i, j in edges:
    W_path[i, j] = W_path[j, i] = 1.0
A_hat = W_path / W_path.sum(1, keepdim=True)  # row-normalised: every row sums to 1
eye4 = torch.eye(4, dtype=torch.float64)
L_path = eye4 - A_hat
signal = torch.tensor([[1.0], [1.0], [1.0], [5.0]], dtype=torch.float64)  # node 3 stands out
ones = torch.ones(4, 1, dtype=torch.float64)
assert torch.allclose(L_path @ ones, 0 * ones)  # L 1 = 0: a constant signal is mapped to 0


def dirichlet_energy(v):
    """Sum over the path's edges of the squared difference of the two end nodes."""
    return float(sum((v[i] - v[j]).pow(2).sum() for i, j in edges))


gamma = 0.5
columns = {
    "V": signal,
    "A V (neighbours' mean)": A_hat @ signal,
    "(I - A) V = L V (difference)": L_path @ signal,
    "(I - gamma L) V (smoothing)": (eye4 - gamma * L_path) @ signal,
}
# the package's form (I - A_F) V covers both: A_F = A gives L V, A_F = gamma L gives smoothing
assert torch.allclose((eye4 - A_hat) @ signal, columns["(I - A) V = L V (difference)"])
assert torch.allclose((eye4 - gamma * L_path) @ signal, signal - gamma * L_path @ signal)
energy = {name: dirichlet_energy(value) for name, value in columns.items()}
assert energy["(I - A) V = L V (difference)"] > energy["V"] > energy["(I - gamma L) V (smoothing)"]
table = pd.DataFrame({name: value[:, 0] for name, value in columns.items()})
table.loc["Dirichlet energy"] = list(energy.values())
print(table.round(3).to_string())

# %% [markdown]
# The difference operator turns the spike at node 3 into $+4$ and pushes its neighbour to $-2$:
# the energy grows from 16 to 40, the signal is sharper, and the constant part (the 1s) is
# gone. Laplacian smoothing with $\gamma = 1/2$ spreads the spike over its neighbours,
# $(1, 1, 2, 3)$, and the energy drops to 2; the plain neighbour mean $\hat A V$ ($\gamma = 1$)
# gives 8. So $(I - A)$ with a normalised $A$ is *not* a smoothing: it is the opposite, and it
# becomes one only when the learned matrix takes the form $\gamma L$. Exercise 1 finds the
# $\gamma$ that smooths this signal most.

# %% [markdown]
# ## 3. Cost: the graph is $D_2 \times D_2$ whatever the image
#
# Count the multiply-adds of one forward pass, $N = hw$ pixels of the feature map:
#
# | step | multiply-adds |
# |---|---|
# | $\theta(X)$, $\phi(X)$ | $N D D_2 + N D D_1$ |
# | $V_F = H_F^\top \phi(X)$ | $N D_2 D_1$ |
# | $(I - A_F) V_F$, then $W_F$ | $D_2^2 D_1 + D_2 D_1^2$ (no $N$) |
# | $\Phi$ on $H_F M_F$, as $(\Phi M_F^\top)$ first, then times $H_F^\top$ | $D D_1 D_2 + N D D_2$ |
#
# The last row uses that $\Phi$'s convolution is a matrix $W$ ($D \times D_1$) applied at every
# pixel: $W (H_F M_F)^\top = (W M_F^\top) H_F^\top$. Computed left to right, as the equation
# reads, it costs $N D_2 D_1 + N D_1 D = 0.625\,N D^2$ and forms a $D_1 \times N$ tensor;
# right to left $N D D_2 = 0.25\,N D^2$ and forms nothing of size $N$ but the output. The
# package takes the second order (`feature_gcn.reassociated_conv`); the numbers are the same.
#
# Everything is linear in $N$, and the graph convolution itself does not depend on $N$ at
# all. The memory of the graph ($A_F$, $V_F$, $M_F$) is fixed, $D_2^2 + 2 D_2 D_1$ numbers; a
# graph over the pixels (a non-local block's $N \times N$ affinity) would need $N^2$. We check
# the formula (2 FLOPs per multiply-add) against `torch.utils.flop_counter`, on the meta device
# (no memory is allocated), for the paper's $D = 2048$ at output stride 8.

# %%
# NBVAL_CHECK_OUTPUT
D_paper = 2048
D2, D1 = D_paper // 4, D_paper // 2
rows = []
for height, width in [(512, 1024), (768, 768), (832, 832), (1024, 2048)]:
    h, w = math.ceil(height / 8), math.ceil(width / 8)  # dilated ResNet, output stride 8
    n = h * w
    with torch.device("meta"):
        counted = models.profile.count_flops(models.FeatureGCN(D_paper), (1, D_paper, h, w))
    graph_macs = D2 * D2 * D1 + D2 * D1 * D1
    macs = n * D_paper * (D2 + D1) + n * D2 * D1 + graph_macs
    macs += D_paper * D1 * D2 + n * D_paper * D2  # Phi M_F^T first, then times H_F^T
    assert counted["Global"] == 2 * macs, (counted["Global"], 2 * macs)
    assert counted["adjacency"] + counted["state_update"] == 2 * graph_macs
    rows.append(
        {
            "image": f"{height}x{width}",
            "feature map": f"{h}x{w}",
            "N": n,
            "GFLOPs GCN_f": round(counted["Global"] / 1e9, 1),
            "GFLOPs graph conv": round(2 * graph_macs / 1e9, 2),
            "graph MiB (A_F, V_F, M_F)": round((D2 * D2 + 2 * D2 * D1) * 4 / 2**20, 1),
            "pixel graph N x N, MiB": round(n * n * 4 / 2**20),
        }
    )
print(pd.DataFrame(rows).to_string(index=False))

# %% [markdown]
# The graph convolution costs 1.6 GFLOPs at every size, and the graph's tensors ($A_F$, $V_F$,
# $M_F$) take 5 MiB in float32 at every size; what grows with the image is the projection onto
# the nodes and back, linearly in $N$. An $N \times N$ affinity over the pixels of one
# 1024x2048 frame would take 4 GiB.
#
# ## 4. A trained feature graph on MiniCity
#
# MiniCity is the synthetic city of this book (notebook 05): 128x256 street scenes in the
# Cityscapes layout, generated in a few seconds. The repository commits two DGCNets trained on
# its version 2 (`experiments/checkpoints/`), on the same micro ResNet backbone (stride 8,
# layer3 and layer4 not dilated), which was trained once on MiniCity and then frozen; only the
# head was trained on the frozen backbone's features, for the number of iterations printed
# below (the CPU ablation, `dgcn reproduce`, preset `minicity-ablation`, notebook 08).
# `minicity-dgcnet-paper.pt` holds the paper-equation head with both graphs: this notebook's
# `FeatureGCN` on the 128-channel layer4 feature, so $D = 128$, $D_2 = 32$ nodes of $D_1 = 64$
# features. `minicity-dgcnet-official.pt` holds the authors' head with both graphs, drawn at
# the end of the section. Both load in a fraction of a second, so smoke and full mode show the same
# models. What they show is how the graphs behave on a synthetic city, not Cityscapes
# accuracy. The image of this section is the first validation image that holds two
# big-vehicle classes: in version 2 a truck, a bus and a train share one body and stand side by
# side, and only each object's extent tells them apart (notebook 00, Section 2).

# %%
model, cfg = dgcn.committed_model("minicity-dgcnet-paper")
trained = f"{cfg.train.iterations} head iterations"
print(f"{PAPER_CHECKPOINT}: {cfg.model.name} {cfg.model.overrides}, {trained}")
print(f"on the frozen backbone {cfg.frozen.backbone}")
height_px, width_px = cfg.data.minicity_size
root = datasets.ensure_minicity(
    MINICITY, seed=cfg.data.minicity_seed, height=height_px, width=width_px, progress=False
)  # the same seed and size as the checkpoint's data: the same validation images
val = datasets.Cityscapes(root, "val")
BIG_VEHICLES = {14, 15, 16}  # truck, bus, train: told apart only by each object's extent
EXAMPLE = next(
    i for i in range(len(val)) if len(BIG_VEHICLES & set(val[i][1].unique().tolist())) > 1
)
image, mask = val[EXAMPLE]  # the first validation image with two big-vehicle classes
print(f"validation image {EXAMPLE}: {val.image_path(EXAMPLE).name}")
graph, features = viz.graphs.capture_graph_input(model, image[None])
feature_gcn = graph.feature
assert isinstance(feature_gcn, models.FeatureGCN)
print(f"the graph module sees {tuple(features.shape)}: D = {features.shape[1]}")
print(
    f"A_F is {tuple(feature_gcn.adjacency.weight.shape[:2])}, W_F is "
    f"{tuple(feature_gcn.state_update.weight.shape[:2])}"
)

# %% [markdown]
# ### What training did to $A_F$
#
# A heat map of the trained $A_F$ alone cannot say what training did: PyTorch initialises the
# matrix at random (uniform in $\pm 1/\sqrt{D_2}$), and a random matrix drawn as a heat map
# looks as "structured" as a learned one. We need the matrix it started from. Training seeds
# the head's initialisation with `train.seed` (`dgcn/training/frozen.py`), so rebuilding the
# model right after that seed gives the head's exact initial weights, and we can subtract.
#
# Two things move a weight during training: the gradient of the loss, and weight decay, which
# shrinks every weight by the same factor whatever the loss. We replay that factor with
# `torch.optim.SGD` (the run's learning rate, poly schedule, momentum and decay) on a weight whose
# gradient is always zero. Then we split the trained matrix as $A = c\, A_{\text{init}} + R$
# with the least-squares factor $c$: $c$ close to the decay factor and a small $R$ mean that
# only weight decay moved it; $R$ is what the gradient did beyond a uniform shrink. The table
# does this for every weight matrix of the feature graph.


# %%
def weight_decay_factor(train) -> float:
    """The factor by which SGD's weight decay alone (zero gradient) scales a weight over the
    run's schedule: the run's lr, momentum, weight decay and poly power."""
    w = torch.nn.Parameter(torch.ones(()))
    sgd = torch.optim.SGD(
        [w], lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay
    )
    for i in range(train.iterations):
        sgd.param_groups[0]["lr"] = train.lr * (1 - i / train.iterations) ** train.poly_power
        w.grad = torch.zeros_like(w)
        sgd.step()
    return float(w.detach())


def split_change(trained: torch.Tensor, initial: torch.Tensor) -> dict:
    """trained = c initial + R: c (least squares), |trained - initial| and |R|, both relative
    to |initial|."""
    c = float((trained * initial).sum() / (initial * initial).sum())
    return {
        "c": c,
        "moved %": 100 * float((trained - initial).norm() / initial.norm()),
        "beyond the shrink %": 100 * float((trained - c * initial).norm() / initial.norm()),
    }


LETTERS = {
    "to_nodes": "theta: projection (to_nodes)",
    "to_features": "phi: reduction (to_features)",
    "adjacency": "adjacency (A_F; authors' A)",
    "state_update": "state update (W_F; authors' W)",
    "reproject": "reprojection conv (Phi)",
}


def weight_table(trained_gcn, initial_gcn) -> pd.DataFrame:
    """split_change for every weight matrix (not the BN scales and shifts) of a feature GCN."""
    initial = dict(initial_gcn.named_parameters())
    rows = {
        LETTERS[name.split(".")[0]]: split_change(w.detach(), initial[name].detach())
        for name, w in trained_gcn.named_parameters()
        if w.dim() > 1
    }
    return pd.DataFrame(rows).T


torch.manual_seed(cfg.train.seed)  # the head was initialised right after this seed
untrained = models.build_model(cfg.model.name, cfg.num_classes, **cfg.model.overrides)
untrained_gcn = untrained.head.graph.feature
decay = weight_decay_factor(cfg.train)
print(f"weight decay alone scales every weight by {decay:.4f} over {trained}")
paper_changes = weight_table(feature_gcn, untrained_gcn)
paper_changes.round({"c": 4, "moved %": 1, "beyond the shrink %": 2})

# %% [markdown]
# The figure shows, for $A_F$: the trained matrix, its change $A_F - A_F(\text{init})$, and the
# part of the change that is not the uniform shrink, $R = A_F - c\, A_F(\text{init})$, each
# with its own colour scale (read the colour bars).


# %%
def adjacency_change(trained: torch.Tensor, initial: torch.Tensor, label: str):
    """Trained adjacency | its change | the change beyond a uniform shrink, one colour bar each."""
    parts = split_change(trained, initial)
    panels = [
        (trained, f"{label} after training"),
        (trained - initial, f"A - A(init): {parts['moved %']:.1f} % of |A(init)|"),
        (
            trained - parts["c"] * initial,
            f"A - c A(init), c = {parts['c']:.4f}: {parts['beyond the shrink %']:.2f} %",
        ),
    ]
    fig = viz.new_figure((11.0, 3.1), dpi=80)
    for ax, (matrix, title) in zip(fig.subplots(1, 3), panels, strict=True):
        limit = float(matrix.abs().max())
        shown = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("node j", fontsize=8)
        ax.set_ylabel("node i", fontsize=8)
        ax.set_xticks(range(0, len(matrix), 4))
        ax.set_yticks(range(0, len(matrix), 4))
        ax.tick_params(labelsize=7)
        fig.colorbar(shown, ax=ax, shrink=0.85).ax.tick_params(labelsize=7)
    return fig


A_trained = feature_gcn.adjacency.weight[:, :, 0].detach()
A_init = untrained_gcn.adjacency.weight[:, :, 0].detach()
fig = adjacency_change(A_trained, A_init, "A_F")
fig.suptitle(f"paper-equation head, {trained}", fontsize=10)
fig

# %% [markdown]
# Does the change matter for what the graph adds to $X$? We run the trained module on this
# image's feature with its own $A_F$, with $A_F(\text{init})$ put back, and with $A_F = 0$ (no
# mixing between the nodes at all), and compare the outputs $\tilde X_F$. The cell also prints
# the range of the trained $A_F$'s row sums: 1 for a row-normalised adjacency (where
# $I - A_F$ would be a Laplacian), 0 for $A_F = \gamma L$ (Laplacian smoothing).

# %%
import copy


def feature_term(module, adjacency: torch.Tensor) -> torch.Tensor:
    """X~_F of `features` through a copy of `module` whose A_F is `adjacency`."""
    probe = copy.deepcopy(module).eval()
    with torch.no_grad():
        probe.adjacency.weight.copy_(adjacency[:, :, None])
        return probe(features)


with torch.no_grad():
    term = feature_gcn.eval()(features)
effect_init = float((feature_term(feature_gcn, A_init) - term).norm() / term.norm())
effect_zero = float((feature_term(feature_gcn, 0 * A_init) - term).norm() / term.norm())
row_sums = A_trained.sum(1)
print(f"|X~_F| / |X| = {float(term.norm() / features.norm()):.2f}: what the graph adds")
print(f"X~_F with A_F(init) instead of the trained A_F: {100 * effect_init:.1f} % different")
print(f"X~_F with A_F = 0:                              {100 * effect_zero:.1f} % different")
print(f"row sums of the trained A_F: {float(row_sums.min()):.2f} to {float(row_sums.max()):.2f}")
scale = float(feature_gcn.reproject[1].weight.detach().abs().mean())
start = float(untrained_gcn.reproject[1].weight.detach().abs().mean())
print(f"reprojection BN scale: mean |weight| = {scale:.3f} (at initialisation: {start:g})")

# %% [markdown]
# What this says about the committed paper-equation head (the numbers are those printed
# above; the checkpoint is committed, so they are the same in smoke and full mode):
#
# - $A_F$ moved by about 7 % of its initial norm, and almost all of that (about 6.8 %) is
#   the gradient's work rather than weight decay (which alone would shrink it by 2.6 %; the
#   fitted factor $c = 0.979$ lies above the decay factor 0.974, so along $A_F(\text{init})$
#   itself the gradient even pushed back a little against the shrink). The part beyond the
#   shrink is largest in node 7's column (the vertical stripe in the right panel: 14 % of
#   $|R|^2$ in one of 32 columns), i.e. in how node 7's state feeds the other nodes, and the
#   change is small next to the random matrix it started from (entries up to about 0.03
#   against about 0.18): the left panel is, to the eye, still the initialisation.
# - The graph's mixing matters: $A_F = 0$ changes $\tilde X_F$ by about 37 %. What training
#   did to $A_F$ matters less: putting $A_F(\text{init})$ back changes $\tilde X_F$ by about
#   7 %. The head uses $A_F$ mostly as the random mixing it started with, and learned *around*
#   it: its projections $\theta$ and $\phi$ and the state update $W_F$ moved by 15 to 38 %
#   (the table; $\theta$ the most).
# - The row sums of the trained $A_F$ are neither all 1 nor all 0, so $(I - A_F)$ is neither
#   the difference operator $(I - \hat A)$ nor the smoothing $(I - \gamma L)$ of Section 1 for
#   any row-normalised graph: the name stays nominal.
# - This checkpoint was trained with `zero_init` off (the configuration printed above), so the
#   reprojection's BN scale started at 1 and is still near it: the graph's output was not
#   gated by a small scale during training. With the package's default `zero_init` the scale
#   starts at 0, no gradient reaches $A_F$ in the first step, and the graph's weights move
#   more slowly at first (the gradient that reaches them is proportional to that scale).
#
# These are 1,000 head iterations on a frozen micro backbone; the notebook's full mode loads
# the same checkpoints, so it shows the same matrices.

# %% [markdown]
# The node assignments $H_F = \theta(X)$: for each node, how strongly every pixel projects onto
# it (signed: red positive, blue negative), for the six nodes with the largest total response.
# A node collects whatever the pixels it covers look like, wherever they are. The maps depend
# on $\theta$ and on the trained backbone's features; the cell prints how far they are from the
# maps of the *initial* $\theta$ on the same features, i.e. how much of them the head's training
# shaped.

# %%
image_uint8 = viz.denormalize(image)
assignment = viz.graphs.feature_assignment(feature_gcn, features)
initial_assignment = viz.graphs.feature_assignment(untrained_gcn, features)
apart = float((assignment - initial_assignment).norm() / initial_assignment.norm())
print(f"assignment: {tuple(assignment.shape)} (nodes, feature rows, feature columns)")
print(f"H_F of this image, trained vs initial theta: {100 * apart:.0f} % apart")
fig = viz.graphs.plot_assignment(image_uint8, assignment, nodes=6)
fig.suptitle(f"H_F = theta(X), paper-equation head, {trained}", fontsize=10)
fig

# %% [markdown]
# Which classes do these nodes cover? The mean projection of the pixels of each class present
# in this image (the label downsampled to the feature grid by nearest neighbour). Rows that
# look alike are classes the nodes do not tell apart.


# %%
def class_table(assignment: torch.Tensor, mask: torch.Tensor, nodes: int = 6) -> pd.DataFrame:
    """Mean projection of each class's pixels (``mask``) onto the ``nodes`` strongest nodes."""
    grid = torch.nn.functional.interpolate(
        mask[None, None].float(), size=assignment.shape[-2:], mode="nearest"
    )[0, 0].long()
    strongest = assignment.abs().sum((1, 2)).argsort(descending=True)[:nodes]
    table = {}
    for class_id in grid.unique().tolist():
        if class_id == datasets.IGNORE_INDEX:
            continue
        where = grid == class_id
        table[datasets.CLASS_NAMES[class_id]] = [
            float(assignment[k][where].mean()) for k in strongest
        ]
    return pd.DataFrame(table, index=[f"node {int(k)}" for k in strongest]).T.round(2)


class_table(assignment, mask)

# %% [markdown]
# ### The authors' head on the same image
#
# `minicity-dgcnet-official.pt` puts the authors' graph (`OfficialFeatureGCN`, Section 5) on the
# head's 64-channel reduction of the backbone feature (`reduce`, their `conva`), so it has
# $64 / 4 = 16$ nodes. Its projection $B$ is `to_nodes`, a 1x1 convolution followed by BN,
# with no softmax; `viz.graphs.feature_assignment` returns it as it returns $H_F$ for the
# paper's module. BN after every step normalises its node states in training whatever the
# number of pixels (end of Section 5), and no zero-initialised scale gates its gradients;
# notebook 08 measures what this head's graphs add over the same head without them. The cell
# prints how far `to_nodes` moved from its initialisation, then draws the six strongest nodes
# as above.

# %%
official, official_cfg = dgcn.committed_model("minicity-dgcnet-official")
official_graph, reduced = viz.graphs.capture_graph_input(official, image[None])
official_gcn = official_graph.feature
assert isinstance(official_gcn, models.OfficialFeatureGCN)
torch.manual_seed(official_cfg.train.seed)
official_init = models.build_model(
    official_cfg.model.name, official_cfg.model.num_classes, **official_cfg.model.overrides
).head.graph.feature
w_now, w_init = official_gcn.to_nodes[0].weight, official_init.to_nodes[0].weight
official_trained = f"{official_cfg.train.iterations} head iterations"
print(f"{OFFICIAL_CHECKPOINT}: {official_cfg.model.name} {official_cfg.model.overrides}")
print(f"{official_trained} on the same frozen backbone {official_cfg.frozen.backbone}")
print(f"the graph module sees {tuple(reduced.shape)}: {w_now.shape[0]} nodes")
print(f"to_nodes weight moved by {100 * (w_now - w_init).norm() / w_init.norm():.1f} %")
official_assignment = viz.graphs.feature_assignment(official_gcn, reduced)
fig = viz.graphs.plot_assignment(image_uint8, official_assignment, nodes=6)
fig.suptitle(f"B = to_nodes(reduce(X)), authors' head, {official_trained}", fontsize=10)
fig

# %% [markdown]
# Its class table. Compare the columns with those of the paper head's table above: a node
# that separates classes has large entries of both signs down its column (some classes
# project onto it positively, others negatively); a column of one sign weighs all the classes
# present alike.

# %%
class_table(official_assignment, mask)

# %% [markdown]
# Over all the nodes, not only the six strongest: the distance between the mean projections of
# every two classes of this image, and the three closest pairs for each head. For the paper
# head the truck and the train are the closest pair (their rows of its table are near copies);
# for the authors' head they come second, after road and sidewalk. Both heads' nodes barely
# tell apart the very classes that only an object's extent, or a region's place, decides. (One
# image; the truck and the train cover 20 and 50 cells of the 16 x 32 feature grid.)


# %%
def closest_pairs(assignment: torch.Tensor, mask: torch.Tensor, pairs: int = 3) -> pd.DataFrame:
    """The pairs of classes of ``mask`` whose mean projections onto all nodes are closest."""
    grid = torch.nn.functional.interpolate(
        mask[None, None].float(), size=assignment.shape[-2:], mode="nearest"
    )[0, 0].long()
    ids = [c for c in grid.unique().tolist() if c != datasets.IGNORE_INDEX]
    means = torch.stack([assignment[:, grid == c].mean(1) for c in ids])
    distance = torch.cdist(means, means)
    found = sorted(
        (
            round(float(distance[a, b]), 2),
            datasets.CLASS_NAMES[ids[a]],
            datasets.CLASS_NAMES[ids[b]],
        )
        for a in range(len(ids))
        for b in range(a + 1, len(ids))
    )
    return pd.DataFrame(found[:pairs], columns=["distance", "class", "and class"])


pairs = {
    "paper head": closest_pairs(assignment, mask),
    "authors' head": closest_pairs(official_assignment, mask),
}
pd.concat(pairs, axis=1)

# %% [markdown]
# ### What training did to the authors' adjacency
#
# The same measurement for the authors' head: its adjacency $A$ is `adjacency[0]`, used as
# $Z \leftarrow \mathrm{BN}(A Z) + Z$ (Section 5). The run used the same learning rate,
# schedule and weight decay, so the decay factor is the same.

# %%
official_changes = weight_table(official_gcn, official_init)
assert weight_decay_factor(official_cfg.train) == decay  # the same optimiser settings
A_official = official_gcn.adjacency[0].weight[:, :, 0].detach()
A_official_init = official_init.adjacency[0].weight[:, :, 0].detach()
official_changes.round({"c": 4, "moved %": 1, "beyond the shrink %": 2})

# %%
fig = adjacency_change(A_official, A_official_init, "A")
fig.suptitle(f"authors' head, {official_trained}", fontsize=10)
fig

# %% [markdown]
# Here $c$ equals the weight-decay factor to four digits and the residual $R$ is under a
# tenth of a per cent of the matrix (0.07 %): **the gradient did essentially nothing to the
# authors' adjacency**; weight decay alone shrank it. The next cell measures why. $Z = B^\top F$
# is a sum over all $N$ pixels without $1/N$, so its entries are large; $\mathrm{BN}(A Z)$ is
# normalised to about unit scale. The cell compares the two terms of $\mathrm{BN}(A Z) + Z$ on
# this image, and runs the branch once with the adjacency term removed (the scale and shift of
# the BN after $A$ set to zero, so $\mathrm{BN}(A Z) = 0$).

# %%
with torch.no_grad():
    f_official = official_gcn.to_features(reduced).flatten(2)  # F: [1, D1, N]
    b_official = official_gcn.to_nodes(reduced).flatten(2)  # B: [1, D2, N]
    z = torch.bmm(f_official, b_official.transpose(1, 2))  # Z as the authors: [1, D1, D2]
    az = official_gcn.adjacency(z.transpose(1, 2)).transpose(1, 2)  # BN(A Z)
    branch = official_gcn.eval()(reduced)
    no_adjacency = copy.deepcopy(official_gcn).eval()
    no_adjacency.adjacency[1].weight.zero_()
    no_adjacency.adjacency[1].bias.zero_()
    without = no_adjacency(reduced)
adjacency_share = float(az.norm() / z.norm())
adjacency_effect = float((without - branch).norm() / branch.norm())
print(f"|BN(A Z)| / |Z| = {100 * adjacency_share:.2f} %  (std of Z {float(z.std()):.0f})")
print(f"branch output without the adjacency term: {100 * adjacency_effect:.2f} % different")

# %% [markdown]
# The adjacency term is about half a per cent of the node states it is added to, and removing
# it changes the branch's output by about a fifth of a per cent. A term with so little
# influence on the output gets almost no gradient, which is what the residual $R$ showed. On
# this checkpoint the authors' feature graph is in effect $Z \leftarrow Z$: project, update
# with $W$, reproject; its learning went into the projections and $W$ (the table). Because
# $Z$ grows with $N$ and $\mathrm{BN}(A Z)$ does not, larger images would make the share smaller
# still if their features were alike (not measured here). Notebook 08 measures what this
# head's graphs add to the mIoU.


# %% [markdown]
# ## 5. The authors' variant: $(I + A)$ with BatchNorm
#
# The released code (the feature half of `DualGCN` in GALD-DGCNet; see the docstring of
# `dgcn/models/feature_gcn.py`) computes the same three steps with BN after every projection
# and a residual ReLU. In the paper's notation (pixels as rows, nodes as rows of $Z$):
#
# $$F = \mathrm{BN}(\phi(X)),\; B = \mathrm{BN}(\theta(X)),\; Z = B^\top F,\quad
#   Z \leftarrow \mathrm{BN}(A Z) + Z,\quad Z \leftarrow \mathrm{BN}(Z W),\quad
#   \text{out} = \mathrm{ReLU}\big(X + \mathrm{BN}(\Phi(B Z))\big),$$
#
# where $\mathrm{BN}(A Z)$ normalises every node (row) and $\mathrm{BN}(Z W)$ every feature
# (column). The letters are those of Section 1: the authors' `theta` is the projection $B$
# (`to_nodes`) and their `phi` the reduced features $F$ (`to_features`), the same names on both
# variants. We verify `OfficialFeatureGCN` against this formula in float64 with random BN
# statistics.

# %%
off = models.OfficialFeatureGCN(D).double().eval()
with torch.no_grad():
    for norm in off.modules():
        if isinstance(norm, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_()
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)


def official_formula(module, xb):
    """The released feature branch for one image xb [D, H, W], with plain matrix products."""
    X = xb.flatten(1).T  # [N, D]
    F = batchnorm_eval(X @ module.to_features[0].weight[:, :, 0, 0].T, module.to_features[1])
    B = batchnorm_eval(X @ module.to_nodes[0].weight[:, :, 0, 0].T, module.to_nodes[1])
    Z = B.T @ F  # [D2, D1]: nodes x features (the transpose of the authors' F B^T)
    A = module.adjacency[0].weight[:, :, 0]
    Z = batchnorm_eval((A @ Z).T, module.adjacency[1]).T + Z  # BN over each node's row
    W = module.state_update[0].weight[:, :, 0]
    Z = batchnorm_eval(Z @ W.T, module.state_update[1])  # BN over each feature
    Y = B @ Z  # [N, D1]: back to the pixels
    out = batchnorm_eval(Y @ module.reproject[0].weight[:, :, 0, 0].T, module.reproject[1])
    return torch.relu(X + out).T.reshape(xb.shape)


with torch.no_grad():
    out_official = off(x)
for b in range(x.shape[0]):
    torch.testing.assert_close(out_official[b], official_formula(off, x[b]), rtol=0, atol=1e-10)
print("OfficialFeatureGCN == ReLU(X + BN(Phi(B (BN(W (BN(A Z) + Z)))))), for both images")

# %% [markdown]
# **The sign is absorbed.** With every BN at identity statistics (mean 0, variance 1, scale 1,
# shift 0), $(I + A)$ with $A = -A_F$ is exactly $(I - A_F)$, and the whole released branch is
# $\mathrm{ReLU}(X + \tilde X_F)$ of the paper's module. We copy the weights across, negating
# the adjacency, and check it numerically. What remains different in practice is everything
# the BNs do: they rescale the node states whatever the number of pixels.


# %%
def identity_bn(module):
    with torch.no_grad():
        for norm in module.modules():
            if isinstance(norm, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                norm.reset_parameters()  # weight 1, bias 0, running mean 0, running var 1
                norm.eps = 0.0


torch.manual_seed(0)
paper = models.FeatureGCN(D, zero_init=False).double().eval()
official = models.OfficialFeatureGCN(D).double().eval()
identity_bn(paper)
identity_bn(official)
with torch.no_grad():
    official.to_features[0].weight.copy_(paper.to_features.weight)
    official.to_nodes[0].weight.copy_(paper.to_nodes.weight)
    official.adjacency[0].weight.copy_(-paper.adjacency.weight)  # (I + A) with A = -A_F
    official.state_update[0].weight.copy_(paper.state_update.weight)
    official.reproject[0].weight.copy_(paper.reproject[0].weight)
    torch.testing.assert_close(official(x), torch.relu(x + paper(x)), rtol=0, atol=1e-10)
print("official branch == ReLU(X + paper's X~_F) when A = -A_F and every BN is the identity")

# %% [markdown]
# **Why BN matters: no $1/N$.** $V_F$ is a sum over the pixels, so an image with four times
# as many pixels of the same content gives four times larger node states. Tile the input 2x2
# and compare (exact, as everything up to the reprojection is linear in $V_F$):

# %%
# NBVAL_CHECK_OUTPUT
tiled = x.repeat(1, 1, 2, 2)  # the same content, 4x the pixels
with torch.no_grad():
    _, v_small = paper.nodes(x)
    _, v_big = paper.nodes(tiled)
error = float((v_big - 4 * v_small).norm() / v_small.norm())
assert error < 1e-12, error
print("V_F(tiled) == 4 x V_F(original) (relative error below 1e-12)")

# %% [markdown]
# In training mode a BN after the reprojection (ours) or after every step (the authors')
# divides this growth out with the batch statistics. In eval mode BN applies fixed running
# statistics, so the scale still depends on $N$: evaluating on windows of the training crop
# size (the authors' sliding-window evaluation, notebook 07) keeps $N$ as it was in training.

# %% [markdown]
# ## Summary
#
# - The feature-space GCN projects the $N$ pixels onto $D_2 = D/4$ nodes with $H_F = \theta(X)$,
#   forms $V_F = \theta(X)^\top \phi(X)$, runs one graph convolution $M_F = (I - A_F) V_F W_F$
#   with a learned, input-independent $A_F$, and reprojects, $\tilde X_F = \Phi(H_F M_F)$;
#   `dgcn.models.FeatureGCN` equals that formula to $10^{-10}$ in float64.
# - The graph is $D_2 \times D_2$ at every image size: 1.6 GFLOPs and 5 MiB at $D = 2048$,
#   while the projections grow linearly in $N$ (313 GFLOPs in all at 1024x2048).
# - $(I - \hat A)$ with a row-normalised $\hat A$ is a difference (sharpening) operator,
#   Laplacian smoothing is $(I - \gamma L)$; on the 4-node path the energy went 16 -> 40 and
#   16 -> 2. A learned $A_F$ can be either, so the name is nominal.
# - The committed paper-equation head (MiniCity version 2) moved $A_F$ by 7 % of its initial
#   norm (weight decay alone: 2.6 %); swapping the initial $A_F$ back changes $\tilde X_F$ by
#   7 %, removing $A_F$ by 37 %. Its learning went mostly into $\theta$, $\phi$ and $W_F$
#   (15 to 38 %).
# - The authors' head's adjacency was moved by weight decay alone (residual 0.07 %): its term
#   $\mathrm{BN}(A Z)$ is 0.55 % of the un-normalised $Z$ it is added to.
# - On an image with a truck and a train, the truck's and the train's pixels project onto the
#   paper head's 32 nodes more alike than any other two classes of the image do.
# - The released $(I + A)$ is the paper's $(I - A_F)$ with the sign absorbed, plus BN after each
#   step and a residual ReLU; $V_F$ grows with $N$ (4x for a 2x2 tiling), which only the BNs in
#   training mode divide out.

# %% [markdown]
# ## Check your understanding
#
# **Q1.** Why does the cost of the graph convolution $(I - A_F) V_F W_F$ not depend on the size
# of the image, while the whole module's cost does?
#
# <details><summary>Answer</summary>
#
# $V_F$, $A_F$, $W_F$ and $M_F$ have the shapes $D_2 \times D_1$, $D_2 \times D_2$,
# $D_1 \times D_1$ and $D_2 \times D_1$, none of which involves $N$. Only the projection onto
# the nodes ($\theta$, $\phi$, the sum $\theta(X)^\top \phi(X)$) and the reprojection touch
# every pixel, so they grow linearly in $N$.
#
# </details>
#
# **Q2.** A colleague says "$(I - \hat A) V$ smooths the node states, that is why it is called
# Laplacian smoothing". What is wrong, and when does $(I - A_F)$ smooth?
#
# <details><summary>Answer</summary>
#
# With a row-normalised $\hat A$, $(I - \hat A) V = L V$ is each node minus its neighbours'
# mean: it removes the constant part and amplifies differences (a high-pass filter; the path's
# energy went from 16 to 40). Laplacian smoothing is $(I - \gamma L) V$; the form $(I - A_F)$
# computes it only if the learned matrix is $A_F = \gamma L$. Nothing makes a learned $A_F$ take
# either form.
#
# </details>
#
# **Q3.** Why is a heat map of the trained $A_F$ alone no evidence of what the network learned?
#
# <details><summary>Answer</summary>
#
# $A_F$ starts as a random matrix, which looks patterned as a heat map too. Only the
# difference from the initial matrix (rebuilt from the training seed) shows what training did,
# and part of that difference is weight decay, a uniform shrink that no loss asked for; the
# least-squares split $A = c\,A_{\text{init}} + R$ separates the two.
#
# </details>
#
# **Q4.** In the authors' head the adjacency received almost no gradient. Which property of
# the released branch explains it?
#
# <details><summary>Answer</summary>
#
# $Z = F B^\top$ sums over all pixels without $1/N$, so its entries are large (std about 200
# here), while the term $\mathrm{BN}(A Z)$ added to it is normalised to about unit scale: it is
# 0.55 % of $Z$, so it barely changes the output and the loss, and the gradient reaching $A$ is
# correspondingly small.
#
# </details>
#
# **Q5.** The feature graph is said to "forget positions". In what precise sense?
#
# <details><summary>Answer</summary>
#
# Permuting the pixels leaves $V_F = \theta(X)^\top \phi(X)$ unchanged (a sum over pixels) and
# permutes $\tilde X_F$ in the same way (every step after $V_F$ is per pixel or per node): the
# module is permutation-equivariant, so nothing in it depends on where a pixel is.
#
# </details>

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** On the 4-node path of Section 2, write the Dirichlet energy of
# $(I - \gamma L)V$ as a function of $\gamma$ and find the $\gamma$ that makes it smallest.
# Check that $\gamma = 1/2$ and $\gamma = 1$ give the values of the table.
#
# <details><summary>Worked answer</summary>
#
# $L V = (0, 0, -2, 4)^\top$, so $(I - \gamma L) V = V - \gamma L V = (1, 1, 1 + 2\gamma,
# 5 - 4\gamma)$. The edge differences are $0$, $2\gamma$ and $4 - 6\gamma$, so
# $E(\gamma) = 4\gamma^2 + (4 - 6\gamma)^2 = 40\gamma^2 - 48\gamma + 16$. It is smallest at
# $\gamma = 48 / 80 = 0.6$, where $E = 1.6$; $E(1/2) = 2$ and $E(1) = 8$ (the neighbour mean
# $\hat A V$), as in the table. Past $\gamma = 0.6$ the step overshoots node 3.
#
# ```python
# gammas = torch.linspace(0, 1, 101, dtype=torch.float64)
# energies = [dirichlet_energy((eye4 - g * L_path) @ signal) for g in gammas]
# ```
#
# </details>
#
# **Exercise 2.** With $D = 2048$ at 1024x2048 ($N = 128 \cdot 256$), the module costs
# 313.0 GFLOPs (Section 3). How much does it cost with $D_2 = D/8$ nodes instead of $D/4$
# (keep $D_1 = D/2$)? Which terms change?
#
# <details><summary>Worked answer</summary>
#
# Every term with $D_2$ in it: the projection $N D D_2$, the sum $N D_2 D_1$, the graph
# convolution $D_2^2 D_1 + D_2 D_1^2$ and the reprojection $D D_1 D_2 + N D D_2$; the reduction
# $N D D_1$ stays. With the formula of Section 3 (2 FLOPs per multiply-add) the total drops
# from 313.0 to 225.1 GFLOPs: the reduction $\phi$ (137.4 GFLOPs) does not shrink.
#
# ```python
# def gcn_f_gflops(D, D2, D1, n):
#     macs = n * D * (D2 + D1) + n * D2 * D1  # projection, reduction, V_F
#     macs += D2 * D2 * D1 + D2 * D1 * D1 + D * D1 * D2 + n * D * D2  # graph, reprojection
#     return 2 * macs / 1e9
# ```
#
# </details>
#
# **Exercise 3.** Verify the answer of Q5 numerically: shuffle the pixels of a feature map,
# run a `FeatureGCN` in eval mode on both, and un-shuffle the output.
#
# <details><summary>Worked answer</summary>
#
# Flatten the $N$ pixels, permute them with `torch.randperm`, reshape to a $1 \times N$ image,
# and compare: $V_F$ agrees to rounding and the un-shuffled output equals the original output
# (maximum difference below $10^{-12}$ in float64).
#
# ```python
# perm = torch.randperm(60)
# shuffled = x[:1].flatten(2)[:, :, perm].view(1, D, 1, 60)
# out_shuffled = fgcn(shuffled).flatten(2)
# torch.testing.assert_close(out_shuffled, fgcn(x[:1].view(1, D, 1, 60)).flatten(2)[:, :, perm])
# ```
#
# </details>
#
# **Exercise 4.** In the trained authors' head, how much does the branch's output change if
# the adjacency term is removed, and how much if instead the adjacency is reset to its initial
# matrix?
#
# <details><summary>Worked answer</summary>
#
# Removing the term (BN scale and shift after $A$ set to zero) changes the output by about
# 0.21 % (Section 4). Resetting $A$ to $A_{\text{init}}$ changes it by about 0.005 %: the
# trained $A$ is $0.974\,A_{\text{init}}$ plus a residual of 0.07 %, so the reset makes $AZ$
# about 2.6 % larger; in eval mode the BN after $A$ applies fixed statistics and passes that on,
# and 2.6 % of a term worth 0.21 % of the output is about 0.005 %.
#
# ```python
# probe = copy.deepcopy(official_gcn).eval()
# with torch.no_grad():
#     probe.adjacency[0].weight.copy_(official_init.adjacency[0].weight)
#     reset = probe(reduced)
# ```
#
# </details>

# %%
# The numeric answers above, checked
ADJACENCY = LETTERS["adjacency"]
gammas = torch.linspace(0, 1, 101, dtype=torch.float64)
energies = torch.tensor([dirichlet_energy((eye4 - g * L_path) @ signal) for g in gammas])
assert round(float(gammas[energies.argmin()]), 2) == 0.6 and round(float(energies.min()), 1) == 1.6
assert [round(dirichlet_energy((eye4 - g * L_path) @ signal), 6) for g in (0.5, 1.0)] == [2, 8]
assert round(energy["(I - A) V = L V (difference)"]) == 40 and round(energy["V"]) == 16


def gcn_f_gflops(D, D2, D1, n):
    """Section 3's multiply-add count of one FeatureGCN forward pass, in GFLOPs."""
    macs = n * D * (D2 + D1) + n * D2 * D1  # projection, reduction, V_F
    macs += D2 * D2 * D1 + D2 * D1 * D1 + D * D1 * D2 + n * D * D2  # graph, reprojection
    return 2 * macs / 1e9


n_full = 128 * 256
assert round(gcn_f_gflops(2048, 512, 1024, n_full), 1) == 313.0 == rows[-1]["GFLOPs GCN_f"]
assert round(gcn_f_gflops(2048, 256, 1024, n_full), 1) == 225.1
assert round(2 * n_full * 2048 * 1024 / 1e9, 1) == 137.4  # the reduction phi alone

perm = torch.randperm(60)
with torch.no_grad():
    flat = x[:1].view(1, D, 1, 60)
    shuffled = flat.flatten(2)[:, :, perm].view(1, D, 1, 60)
    torch.testing.assert_close(fgcn.nodes(shuffled)[1], fgcn.nodes(flat)[1], rtol=0, atol=1e-12)
    gap = (fgcn(shuffled).flatten(2) - fgcn(flat).flatten(2)[:, :, perm]).abs().max()
assert gap < 1e-12, gap

probe = copy.deepcopy(official_gcn).eval()
with torch.no_grad():
    probe.adjacency[0].weight.copy_(official_init.adjacency[0].weight)
    reset = probe(reduced)
reset_effect = float((reset - branch).norm() / branch.norm())
assert round(100 * adjacency_effect, 2) == 0.21, adjacency_effect
assert round(100 * reset_effect, 3) == 0.005, reset_effect
assert round(official_changes.loc[ADJACENCY, "c"], 4) == round(decay, 4) == 0.9744
assert round(official_changes.loc[ADJACENCY, "beyond the shrink %"], 2) == 0.07
# the numbers of the Summary and of Section 4's text
assert round(paper_changes.loc[ADJACENCY, "moved %"]) == 7
assert round(100 * (1 - decay), 1) == 2.6
assert (round(100 * effect_init), round(100 * effect_zero)) == (7, 37)
assert round(100 * adjacency_share, 2) == 0.55 and round(float(z.std()), -2) == 200
assert round(paper_changes.loc[ADJACENCY, "beyond the shrink %"], 1) == 6.8
assert round(paper_changes.loc[ADJACENCY, "c"], 3) == 0.979 > round(decay, 3) == 0.974
learned = paper_changes["moved %"].drop([ADJACENCY, LETTERS["reproject"]])
assert round(learned.min()) == 15 and round(learned.max()) == 38, learned
assert learned.idxmax() == LETTERS["to_nodes"]  # theta moved the most
R = A_trained - paper_changes.loc[ADJACENCY, "c"] * A_init
column = R.norm(dim=0)  # how much each node's state feeds the others changed
assert int(column.argmax()) == 7 and round(100 * float(column[7] ** 2 / R.pow(2).sum())) == 14
assert round(float((A_trained - A_init).abs().max()), 2) == 0.03
assert round(float(A_trained.abs().max()), 2) == 0.18
assert row_sums.min() < -1 and row_sums.max() > 1  # neither all 1 nor all 0
assert pairs["paper head"].iloc[0, 1:].tolist() == ["truck", "train"]
assert [pairs["authors' head"].iloc[k, 1:].tolist() for k in (0, 1)] == [
    ["road", "sidewalk"],
    ["truck", "train"],
]
cells = torch.nn.functional.interpolate(mask[None, None].float(), size=(16, 32), mode="nearest")
assert [int((cells == k).sum()) for k in (14, 16)] == [20, 50]  # truck, train
print("every numeric answer checked")

# %% [markdown]
# ## References
#
# - Zhang, Li, Arnab, Yang, Tong, Torr, *Dual Graph Convolutional Network for Semantic
#   Segmentation*, BMVC 2019 (arXiv 1909.06121): Sec. 3.1 (graph convolution), Sec. 3.3
#   (feature-space GCN, Eq. 6-8), Sec. 3.4 (fusion). Section and equation numbers, the letters
#   and the phrase "Laplacian smoothing" are unverified here against the paper's text.
# - Chen, Rohrbach, Yan, Yan, Feng, Kalantidis, *Graph-Based Global Reasoning Networks*,
#   CVPR 2019 (GloRe: the projection $\theta$ / reduction $\phi$, $(I - A_g)$, reprojection).
# - Li, Han, Wu, *Deeper Insights into Graph Convolutional Networks for Semi-Supervised
#   Learning*, AAAI 2018 (a GCN layer as Laplacian smoothing).
# - Kipf, Welling, *Semi-Supervised Classification with Graph Convolutional Networks*,
#   ICLR 2017.
# - The authors' code: github.com/lxtGH/GALD-DGCNet, `libs/models/DualGCNNet.py` (`DualGCN`:
#   `phi`, `theta`, `conv_adj`, `conv_wg`, `conv3`; commit be7ebfe), described in
#   `docs/reference/official_dgcnet.md` and mapped to ours in `dgcn/models/official.py`.
# - PyTorch: `torch.nn.Conv1d`, `torch.nn.BatchNorm1d`, `torch.optim.SGD`,
#   `torch.utils.flop_counter`.
# - Package: `dgcn/models/feature_gcn.py`, `dgcn/viz/graphs.py`, `dgcn/training/frozen.py`
#   (how the committed heads were trained), `experiments/checkpoints/README.md`,
#   `experiments/configs/minicity-ablation.yaml`.
