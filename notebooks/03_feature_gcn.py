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
# DGCNet connects *kinds of content*: every pixel is assigned to a small set of $D_2 = D/4$
# abstract nodes, the nodes exchange information through a learned $D_2 \times D_2$ adjacency,
# and the result is projected back onto the pixels (the paper, as summarised:
# `docs/reference/paper_summary.md`; letters and sizes as on the book's notation card,
# `docs/reference/notation.md`). You will:
#
# - derive $V_F = H_F^\top \theta(X) = \phi(X)^\top \theta(X)$, $M_F = (I - A_F) V_F W_F$ and
#   $\tilde X_F = \Phi(H_F M_F)$ with every shape, and verify `dgcn.models.FeatureGCN` on it;
# - count FLOPs and memory against the image size and see the graph stay $D_2 \times D_2$;
# - see on four nodes why $(I - A)$ with a normalised $A$ sharpens while Laplacian smoothing,
#   $(I - \gamma L)$, smooths;
# - measure what training did to $A_F$ and to the node assignments of the two DGCNets trained
#   on MiniCity, the paper's head and the authors';
# - verify the authors' `OfficialFeatureGCN` and relate its $(I + A)$ to $(I - A_F)$.
#
# | mode | what runs | time |
# |---|---|---|
# | smoke (`DGCN_SMOKE=1`) | every cell; the trained models are loaded, not trained | ~15 s |
# | full | the same cells: nothing here depends on the mode | as smoke |
#
# (Smoke time measured on this project's 2-core CPU, shared with other jobs.)

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
# Where the trained models and the data are, set here once; the models are loaded, not trained.

# %%
# ruff: noqa: E402 (a notebook imports in the cell where a module is first needed)
# %matplotlib inline
import copy
import math

import pandas as pd
import torch

PAPER_CHECKPOINT = "experiments/checkpoints/minicity-dgcnet-paper.pt"  # paper-equation head
OFFICIAL_CHECKPOINT = "experiments/checkpoints/minicity-dgcnet-official.pt"  # the authors' head
MINICITY = "data/minicity"  # the default MiniCity, generated on first use
_ = torch.manual_seed(0)
print(f"SMOKE={SMOKE}: the same cells in both modes")

# %% [markdown]
# ## 1. Derivation: nodes that are regions of feature space
#
# Write the feature that enters the graph as a matrix $X \in \mathbb{R}^{N \times D}$: one row
# per pixel, $N = HW$. The coordinate graph of notebook 02 keeps the pixels' positions; the
# feature-space graph forgets them. It first **assigns** the pixels to $D_2$ nodes and lets the
# nodes gather the pixels' features (the paper, as summarised):
#
# $$H_F = \phi(X) \in \mathbb{R}^{N \times D_2}, \qquad
#   V_F = H_F^\top \theta(X) = \phi(X)^\top \theta(X) \in \mathbb{R}^{D_2 \times D_1}
#   \qquad (D_2 = D/4,\; D_1 = D/2).$$
#
# $\phi$ ($D \to D_2$) and $\theta$ ($D \to D_1$) are 1x1 convolutions: $\phi$ says how much
# each pixel belongs to each node, $\theta$ makes the $D_1$ features each pixel brings. Row $k$
# of $V_F$, $V_F[k] = \sum_{p=1}^{N} H_F[p, k]\, \theta(X)[p]$, is a sum of the features of
# *all* pixels, weighted by how much pixel $p$ belongs to node $k$. A node is a soft region of
# the image defined by what it looks like, not by where it is: two cars at opposite ends of the
# street can feed the same node.
#
# Then **one graph convolution** over the $D_2$ nodes, the layer $\sigma(A X W)$ with no
# $\sigma$ written, $A_F$ and $W_F$ both learned (the paper, as summarised):
#
# $$M_F = (I - A_F)\, V_F\, W_F, \qquad A_F \in \mathbb{R}^{D_2 \times D_2},\;
#   W_F \in \mathbb{R}^{D_1 \times D_1}.$$
#
# Unlike $A_S$ of the coordinate graph, $A_F$ is **not computed from the image**: it is the
# same for every input, and nothing makes it normalised, symmetric or non-negative.
# $(I - A_F)\, V_F$ gives every node its own state minus a learned combination of all the node
# states; $W_F$ updates the $D_1$ features of every node.
#
# **"Laplacian smoothing" names a form, not a behaviour.** The summary calls the step
# "Laplacian smoothing considered" (the paper, as summarised). For a *fixed* graph, two
# different operators hide behind the words:
#
# - With the row-normalised adjacency $\hat A$ of a graph (rows sum to 1), $L = I - \hat A$ is
#   its (random-walk) Laplacian, and $(I - \hat A) V = L V$ is every node's state **minus** its
#   neighbours' mean. It maps a constant signal to zero ($L \mathbf{1} = 0$) and amplifies what
#   differs from its neighbourhood: a high-pass, *sharpening* filter.
# - **Laplacian smoothing** is $V \leftarrow (I - \gamma L)\, V = (1 - \gamma) V + \gamma \hat A V$
#   with $0 < \gamma \le 1$: every node moves towards its neighbours' mean, a low-pass filter
#   (Li, Han and Wu, AAAI 2018, read a GCN layer of Kipf and Welling as this with $\gamma = 1$;
#   not checked against their text here).
#
# $(I - A_F)$ *is* Laplacian smoothing when $A_F = \gamma L$, and the difference operator when
# $A_F = \hat A$; an unconstrained $A_F$ can be either, or neither. Section 2 shows both on a
# graph of four nodes; Section 4 measures the trained $A_F$.
#
# Finally the nodes are **reprojected** onto the pixels with the same assignment $H_F$ (the
# paper, as summarised), $\Phi$ a 1x1 convolution $D_1 \to D$:
#
# $$\tilde X_F = \Phi(H_F M_F) \in \mathbb{R}^{N \times D}.$$
#
# The package follows $\Phi$ with a BatchNorm (its choice; the summary names none): $V_F$ sums
# over all $N$ pixels without a $1/N$, so its scale grows with the image. In training mode the
# BN divides that growth out with the batch's statistics; in eval mode it applies statistics
# frozen on the training crops, which is why the paper preset evaluates with a sliding window
# of its training crop (notebook 09). The BN's scale starts at zero (`zero_init` in
# `dgcn/models/dual_gcn.py`): training starts from $\tilde X_F = 0$, which the network adds to
# $X$ (notebook 04).
#
# **Where code and equations meet.** In the package $\phi$ is `to_nodes` (it gives $H_F$),
# $\theta$ is `to_features`, $A_F$ is `adjacency` and $W_F$ is `state_update`, the last two
# stored as kernel-1 `Conv1d` weights: `adjacency.weight[:, :, 0]` $= A_F$ (the conv runs with
# the nodes as channels) and `state_update.weight[:, :, 0]` $= W_F^\top$ (it runs on
# $((I - A_F) V_F)^\top$, features as channels). $\Phi$ is `reproject`, a 1x1 conv plus that
# BatchNorm. **The authors' released code swaps the two Greek names**: its `theta` is the $D/4$
# node assignment (the summary's $\phi$, our `to_nodes`) and its `phi` the $D/2$ features (the
# summary's $\theta$, our `to_features`; `docs/reference/official_dgcnet.md`). This book keeps
# the summary's letters, and the package's attribute names are the same in both variants.

# %% [markdown]
# ## 2. Verify: the package against the explicit formula, in float64
#
# A small `FeatureGCN` ($D = 16$: $D_2 = 4$ nodes of $D_1 = 8$ features), its BatchNorm given
# random statistics and a non-zero scale (else the output would be exactly zero and the test
# empty), in eval mode (BN is then an affine map per channel), recomputed with plain matrix
# products. `set_bn` also serves Section 5.


# %%
def set_bn(module, identity: bool = False):
    """Every BN of `module` at random statistics, or at the identity (and eps 0)."""
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    with torch.no_grad():
        for norm in (m for m in module.modules() if isinstance(m, norms)):
            norm.reset_parameters()  # weight 1, bias 0, running mean 0, running var 1
            if identity:
                norm.eps = 0.0
                continue
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_()
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)


def batchnorm_eval(rows, norm):
    """BN in eval mode on [N, channels] rows: (x - running mean) / sqrt(running var + eps) w + b."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return (rows - norm.running_mean) * scale + norm.bias


# %%
D = 16
fgcn = models.FeatureGCN(D).double().eval()
set_bn(fgcn)  # the package zero-initialises the BN's scale: make it non-trivial
bn = fgcn.reproject[1]
x = torch.randn(2, D, 6, 10, dtype=torch.float64)

phi = fgcn.to_nodes.weight[:, :, 0, 0]  # [D2, D]: phi, the node assignment
theta = fgcn.to_features.weight[:, :, 0, 0]  # [D1, D]: theta, the features the nodes gather
A_F = fgcn.adjacency.weight[:, :, 0]  # [D2, D2]
W_F = fgcn.state_update.weight[:, :, 0].T  # [D1, D1]: the conv stores W_F^T
Phi = fgcn.reproject[0].weight[:, :, 0, 0]  # [D, D1]
eye = torch.eye(D // 4, dtype=torch.float64)

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    out = fgcn(x)
    h_pkg, v_pkg = fgcn.nodes(x)
    for b in range(x.shape[0]):
        X = x[b].flatten(1).T  # [N, D]
        H_F = X @ phi.T  # [N, D2]
        V_F = H_F.T @ (X @ theta.T)  # [D2, D1]
        M_F = (eye - A_F) @ V_F @ W_F  # [D2, D1]
        pre_bn = (H_F @ M_F) @ Phi.T  # [N, D]
        expected = batchnorm_eval(pre_bn, bn)
        torch.testing.assert_close(h_pkg[b], H_F.T, rtol=0, atol=1e-12)
        torch.testing.assert_close(v_pkg[b], V_F, rtol=0, atol=1e-12)
        torch.testing.assert_close(out[b], expected.T.reshape(D, 6, 10), rtol=0, atol=1e-10)
    # the pre-BN tensor Phi(H_F M_F) does not depend on the BN's mode: compare it directly
    y = torch.bmm(fgcn.state_update((v_pkg - fgcn.adjacency(v_pkg)).transpose(1, 2)), h_pkg)
    pre_bn_pkg = fgcn.reproject[0](y.view(2, -1, 6, 10))
torch.testing.assert_close(pre_bn_pkg[1], pre_bn.T.reshape(D, 6, 10), rtol=0, atol=1e-10)
print("FeatureGCN == Phi(H_F (I - A_F) V_F W_F), then BN, for both images (pre-BN too)")
print(f"H_F {tuple(H_F.shape)}   V_F {tuple(V_F.shape)}   A_F {tuple(A_F.shape)}")
print(f"W_F {tuple(W_F.shape)}   M_F {tuple(M_F.shape)}   X~_F {tuple(out.shape[1:])}")

# %% [markdown]
# ### Difference or smoothing: $(I - \hat A)$ and $(I - \gamma L)$ on a graph you can draw
#
# A path of 4 nodes, 0 - 1 - 2 - 3, its row-normalised adjacency $\hat A$ and Laplacian
# $L = I - \hat A$, and a signal that is 1 everywhere but at node 3, where it is 5. We apply
# $\hat A V$ (the neighbours' mean), $(I - \hat A) V = L V$ (the difference operator) and
# $(I - \gamma L) V$ with $\gamma = 1/2$ (Laplacian smoothing, what the form $(I - A_F)$
# computes when $A_F = \gamma L$: asserted below), and measure how rough each result is with
# the *Dirichlet energy* $\sum_{(i,j) \in E} (v_i - v_j)^2$ over the 3 edges (0 for a constant).

# %%
edges = [(0, 1), (1, 2), (2, 3)]
W_path = torch.zeros(4, 4, dtype=torch.float64)  # the path's 0/1 edge weights
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


# %%
# NBVAL_CHECK_OUTPUT
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
# gives 8. So $(I - A)$ with a normalised $A$ is *not* a smoothing but its opposite, unless the
# learned matrix takes the form $\gamma L$. Exercise 1 finds the $\gamma$ that smooths most.

# %% [markdown]
# ## 3. Cost: the graph is $D_2 \times D_2$ whatever the image
#
# Count the multiply-adds of one forward pass on the $N = HW$ pixels of the feature map:
#
# | step | multiply-adds |
# |---|---|
# | $\phi(X)$, $\theta(X)$ | $N D D_2 + N D D_1$ |
# | $V_F = H_F^\top \theta(X)$ | $N D_2 D_1$ |
# | $(I - A_F) V_F$, then $W_F$ | $D_2^2 D_1 + D_2 D_1^2$ (no $N$) |
# | $\Phi$ on $H_F M_F$: $W_\Phi M_F^\top$, then times $H_F^\top$ | $D D_1 D_2 + N D D_2$ |
#
# The last row uses that $\Phi$'s convolution is one matrix $W_\Phi$ ($D \times D_1$) applied
# at every pixel: $W_\Phi (H_F M_F)^\top = (W_\Phi M_F^\top) H_F^\top$. Left to right, as the
# equation reads, it costs $N D_2 D_1 + N D_1 D = 0.625\,N D^2$ and forms a $D_1 \times N$
# tensor; right to left $N D D_2 = 0.25\,N D^2$ and forms nothing of size $N$ but the output
# (the package's order, `feature_gcn.reassociated_conv`; asserted below). Everything is linear
# in $N$, and the graph convolution does not depend on $N$ at all: its tensors ($A_F$, $V_F$,
# $M_F$) hold a fixed $D_2^2 + 2 D_2 D_1$ numbers, where a graph over the pixels (a non-local
# block's $N \times N$ affinity) would need $N^2$. We check the count (2 FLOPs per multiply-add)
# against `torch.utils.flop_counter` on the meta device (nothing is allocated), for the paper's
# $D = 2048$ at output stride 8.


# %%
# NBVAL_CHECK_OUTPUT
def feature_gcn_macs(D, D2, D1, n):
    """Multiply-adds of one FeatureGCN pass on n pixels (the table): (in all, graph conv)."""
    graph = D2 * D2 * D1 + D2 * D1 * D1  # (I - A_F) V_F, then W_F: no n
    return n * D * (D2 + D1) + n * D2 * D1 + graph + D * D1 * D2 + n * D * D2, graph


D_paper = 2048
D2, D1 = D_paper // 4, D_paper // 2
assert (D2 * D1 + D1 * D_paper, D_paper * D2) == (0.625 * D_paper**2, 0.25 * D_paper**2)
rows = []
for height, width in [(512, 1024), (768, 768), (832, 832), (1024, 2048)]:
    h, w = math.ceil(height / 8), math.ceil(width / 8)  # dilated ResNet, output stride 8
    macs, graph_macs = feature_gcn_macs(D_paper, D2, D1, h * w)
    with torch.device("meta"):
        counted = models.profile.count_flops(models.FeatureGCN(D_paper), (1, D_paper, h, w))
    assert counted["Global"] == 2 * macs, (counted["Global"], 2 * macs)
    assert counted["adjacency"] + counted["state_update"] == 2 * graph_macs
    row = {"image": f"{height}x{width}", "feature map": f"{h}x{w}", "N": h * w}
    row["GFLOPs GCN_f"] = round(counted["Global"] / 1e9, 1)
    row["GFLOPs graph conv"] = round(2 * graph_macs / 1e9, 2)
    row["graph MiB (A_F, V_F, M_F)"] = round((D2 * D2 + 2 * D2 * D1) * 4 / 2**20, 1)
    row["pixel graph N x N, MiB"] = round((h * w) ** 2 * 4 / 2**20)
    rows.append(row)
print(pd.DataFrame(rows).to_string(index=False))

# %% [markdown]
# The graph convolution costs 1.6 GFLOPs and its tensors 5 MiB (float32) at every size; what
# grows with the image, linearly in $N$, is the way onto the nodes and back. An $N \times N$
# affinity over the pixels of one 1024x2048 frame would take 4096 MiB, 4 GiB.
#
# ## 4. A trained feature graph on MiniCity
#
# The repository commits two DGCNets trained on version 2 of MiniCity, the book's synthetic
# city in the Cityscapes layout (notebook 05), in `experiments/checkpoints/`: one micro ResNet
# backbone (stride 8) trained once and frozen, and on it two heads trained for the iterations
# printed below (the CPU ablation, preset `minicity-ablation`, notebook 08).
# `minicity-dgcnet-paper.pt` holds the paper-equation head, this notebook's `FeatureGCN` on the
# 128-channel layer4 feature ($D = 128$: $D_2 = 32$ nodes of $D_1 = 64$ features);
# `minicity-dgcnet-official.pt` the authors' head. Both modes load the same files. They show
# how the graphs behave on a synthetic city, not Cityscapes accuracy. The image is the first
# validation image with two big-vehicle classes: in version 2 a truck, a bus and a train share
# one body, and only each object's extent tells them apart (notebook 00, Section 2).

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
A_shape, W_shape = feature_gcn.adjacency.weight.shape[:2], feature_gcn.state_update.weight.shape
print(f"A_F is {tuple(A_shape)}, W_F is {tuple(W_shape[:2])}")

# %% [markdown]
# ### What training did to $A_F$
#
# A heat map of the trained $A_F$ alone cannot say what training did: PyTorch initialises it
# at random (uniform in $\pm 1/\sqrt{D_2}$), and a random matrix looks as "structured" as a
# learned one. Training seeds the head's initialisation with `train.seed`
# (`dgcn/training/frozen.py`), so rebuilding the model right after that seed gives the exact
# initial weights, and we can subtract. Two things move a weight: the loss's gradient, and
# weight decay, which shrinks every weight by the same factor whatever the loss.
# `dgcn.training.weight_decay_factor` replays that factor with the trainers' SGD and poly
# schedule on a weight whose gradient is always zero; `dgcn.training.split_change` writes the
# trained matrix as $A = c\, A_{\text{init}} + R$ with the least-squares factor $c$. A $c$ near
# the decay factor and a small $R$ mean that only weight decay moved it; $R$ is what the
# gradient did beyond a uniform shrink (`dgcn/training/weight_change.py`). The table does this
# for every weight matrix of the feature graph.

# %%
LETTERS = {
    "to_nodes": "phi: node assignment H_F (to_nodes)",
    "to_features": "theta: features (to_features)",
    "adjacency": "adjacency (A_F; authors' A)",
    "state_update": "state update (W_F)",
    "reproject": "reprojection conv (Phi)",
}


def weight_table(trained_gcn, initial_gcn) -> pd.DataFrame:
    """dgcn.training.weight_changes of a feature GCN: one row per weight matrix, in per cent."""
    changes = dgcn.training.weight_changes(trained_gcn, initial_gcn)
    table = pd.DataFrame([vars(change) for change in changes.values()])
    table.index = [LETTERS[name.split(".")[0]] for name in changes]
    table[["moved", "beyond_shrink"]] *= 100
    return table.rename(columns={"moved": "moved %", "beyond_shrink": "beyond the shrink %"})


def initial_model(cfg):
    """The model as training began: built right after the run's seed (the head's init)."""
    torch.manual_seed(cfg.train.seed)
    return models.build_model(cfg.model.name, cfg.num_classes, **cfg.model.overrides)


untrained_gcn = initial_model(cfg).head.graph.feature
decay = dgcn.training.weight_decay_factor(cfg.train)
print(f"weight decay alone scales every weight by {decay:.4f} (-{100 * (1 - decay):.1f} %)")
paper_changes = weight_table(feature_gcn, untrained_gcn)
paper_changes.round({"c": 4, "moved %": 1, "beyond the shrink %": 2})

# %% [markdown]
# For $A_F$: the trained matrix, its change $A_F - A_F(\text{init})$, and the change beyond the
# uniform shrink, $R = A_F - c\, A_F(\text{init})$, each on its own colour bar; the cell first
# prints the largest entries of the matrix and of its change, and the column of $R$ that holds
# most of it.

# %%
ADJACENCY = LETTERS["adjacency"]
A_trained = feature_gcn.adjacency.weight[:, :, 0].detach()
A_init = untrained_gcn.adjacency.weight[:, :, 0].detach()
R = A_trained - paper_changes.loc[ADJACENCY, "c"] * A_init
column = R.norm(dim=0)  # how much each node's state feeds the others changed
column_share = float(column.max() ** 2 / R.pow(2).sum())
largest = float(A_trained.abs().max()), float((A_trained - A_init).abs().max())
print(f"largest |entry| of A_F: {largest[0]:.2f}; of A_F - A_F(init): {largest[1]:.2f}")
print(f"column {int(column.argmax())} of R, one of 32, holds {100 * column_share:.0f} % of |R|^2")
fig = viz.graphs.plot_matrix_change(A_trained, A_init, "A_F")
fig.suptitle(f"paper-equation head, {trained}: A_F is D_2 x D_2", fontsize=10)
fig

# %% [markdown]
# Does the change matter for what the graph adds to $X$? We run the module on this image's
# feature with its trained $A_F$, with $A_F(\text{init})$ put back, and with $A_F = 0$ (no
# mixing between the nodes), and compare the outputs $\tilde X_F$. The row sums of the trained
# $A_F$ would be all 1 for a row-normalised adjacency, all 0 for $A_F = \gamma L$.


# %%
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
# What this says about the committed paper-equation head (1000 head iterations on a frozen
# micro backbone; the numbers printed above):
#
# - $A_F$ moved by about 7 % of its initial norm, almost all of it (6.8 %) the gradient's work:
#   weight decay alone would shrink it by 2.6 %, and the fitted $c = 0.979$ lies above the
#   decay factor 0.974, so along $A_F(\text{init})$ the gradient even pushed back a little. $R$
#   is largest in node 7's column (the vertical stripe on the right: 14 % of $|R|^2$ in one of
#   32 columns), i.e. in how node 7's state feeds the others. Entries changed by up to 0.03,
#   against entries up to 0.18: the left panel is, to the eye, still the initialisation.
# - The mixing matters: $A_F = 0$ changes $\tilde X_F$ by about 37 %. What training did to
#   $A_F$ matters less: putting $A_F(\text{init})$ back changes it by about 7 %. The head uses
#   $A_F$ mostly as the random mixing it started with and learned *around* it: $\phi$, $\theta$
#   and $W_F$ moved by 15 to 38 % (the table; $\phi$ the most).
# - The row sums are neither all 1 nor all 0, so $(I - A_F)$ is neither the difference
#   operator $(I - \hat A)$ nor the smoothing $(I - \gamma L)$ of Section 1 for any
#   row-normalised graph: the summary's "Laplacian smoothing" stays a name.
# - The head was trained with `zero_init` off (the configuration printed above): the
#   reprojection's BN scale started at 1 and is still near it. With the default `zero_init` it
#   starts at 0, so no gradient reaches $A_F$ in the first step and the graph's weights move
#   slowly at first (their gradient is proportional to that scale).

# %% [markdown]
# The node assignment $H_F = \phi(X)$ of the six nodes with the largest total response: how
# strongly every pixel is assigned to each (signed, red positive, blue negative, each panel on
# its own colour bar). A node collects whatever its pixels look like, wherever they are. The
# cell prints how far the maps are from those of the *initial* $\phi$ on the same features,
# i.e. how much of them the head's training shaped.

# %%
image_uint8 = viz.denormalize(image)
assignment = viz.graphs.feature_assignment(feature_gcn, features)
initial_assignment = viz.graphs.feature_assignment(untrained_gcn, features)
apart = float((assignment - initial_assignment).norm() / initial_assignment.norm())
print(f"assignment: {tuple(assignment.shape)} (nodes, feature rows, feature columns)")
print(f"H_F of this image, trained vs initial phi: {100 * apart:.0f} % apart")
fig = viz.graphs.plot_assignment(image_uint8, assignment, nodes=6)
fig.suptitle(f"H_F = phi(X), six of its D_2 = 32 nodes: paper head, {trained}", fontsize=10)
fig

# %% [markdown]
# Which classes do these nodes cover? The mean assignment of the pixels of each class present
# in this image (`viz.graphs.class_projections`: the label downsampled to the feature grid by
# nearest neighbour). Rows that look alike are classes the nodes do not tell apart.


# %%
def class_table(assignment: torch.Tensor, nodes: int = 6) -> pd.DataFrame:
    """Mean assignment of each class of this image's `mask` to the `nodes` strongest nodes."""
    ids, means = viz.graphs.class_projections(assignment, mask)
    strongest = assignment.abs().sum((1, 2)).argsort(descending=True)[:nodes]
    names = [datasets.CLASS_NAMES[c] for c in ids]
    columns = [f"node {int(k)}" for k in strongest]
    return pd.DataFrame(means[:, strongest].numpy(), index=names, columns=columns).round(2)


class_table(assignment)

# %% [markdown]
# ### The authors' head on the same image
#
# `minicity-dgcnet-official.pt` puts the authors' graph (`OfficialFeatureGCN`, Section 5) on the
# head's 64-channel reduction of the backbone feature (`reduce`, their `conva`): $D = 64$,
# $D_2 = 16$ nodes. Its assignment $H_F = \mathrm{BN}(\phi(X))$ is `to_nodes`, a 1x1
# convolution and a BN, no softmax. BN after every step normalises its node states in training
# whatever the number of pixels (end of Section 5), and no zero-initialised scale gates its
# gradients; notebook 08 measures what this head's graphs add. The cell prints how far
# `to_nodes` moved from its initialisation and draws the six strongest nodes.

# %%
official, official_cfg = dgcn.committed_model("minicity-dgcnet-official")
official_graph, reduced = viz.graphs.capture_graph_input(official, image[None])
official_gcn = official_graph.feature
assert isinstance(official_gcn, models.OfficialFeatureGCN)
official_init = initial_model(official_cfg).head.graph.feature
w_now, w_init = official_gcn.to_nodes[0].weight, official_init.to_nodes[0].weight
official_trained = f"{official_cfg.train.iterations} head iterations"
print(f"{OFFICIAL_CHECKPOINT}: {official_cfg.model.name} {official_cfg.model.overrides}")
print(f"{official_trained} on the same frozen backbone {official_cfg.frozen.backbone}")
print(f"the graph module sees {tuple(reduced.shape)}: {w_now.shape[0]} nodes")
print(f"to_nodes weight moved by {100 * (w_now - w_init).norm() / w_init.norm():.1f} %")
official_assignment = viz.graphs.feature_assignment(official_gcn, reduced)
fig = viz.graphs.plot_assignment(image_uint8, official_assignment, nodes=6)
title = f"H_F = BN(phi(X)), six of its D_2 = 16 nodes: authors' head, {official_trained}"
fig.suptitle(title, fontsize=10)
fig

# %% [markdown]
# Its class table, to compare with the paper head's: a node that separates classes has large
# entries of both signs down its column; a column of one sign weighs all the classes alike.

# %%
class_table(official_assignment)

# %% [markdown]
# Over all the nodes, not only the six strongest: the three pairs of classes of this image
# whose mean assignments are closest (`viz.graphs.closest_class_pairs`). For the paper
# head the truck and the train are the closest pair (their rows of its table are near copies);
# for the authors' head they come second, after road and sidewalk. Both heads' nodes barely
# tell apart the very classes that only an object's extent, or a region's place, decides. (One
# image; the cell prints how many cells of the feature grid the truck and the train cover.)


# %%
def closest_pairs(assignment: torch.Tensor) -> pd.DataFrame:
    """The three pairs of classes of `mask` whose mean assignments to all nodes are closest."""
    found = viz.graphs.closest_class_pairs(assignment, mask, pairs=3)
    rows = [(round(d, 2), datasets.CLASS_NAMES[a], datasets.CLASS_NAMES[b]) for d, a, b in found]
    return pd.DataFrame(rows, columns=["distance", "class", "and class"])


size = tuple(assignment.shape[-2:])
grid = torch.nn.functional.interpolate(mask[None, None].float(), size=size, mode="nearest")
cells = {c: int((grid == datasets.CLASS_NAMES.index(c)).sum()) for c in ("truck", "train")}
print(f"cells of the {size[0]} x {size[1]} feature grid: {cells}")
pairs = {"paper head": assignment, "authors' head": official_assignment}
pairs = {head: closest_pairs(maps) for head, maps in pairs.items()}
pd.concat(pairs, axis=1)

# %% [markdown]
# ### What training did to the authors' adjacency
#
# The same measurement for the authors' head: its adjacency $A$ is `adjacency[0]`, used as
# $V_F \leftarrow \mathrm{BN}(A V_F) + V_F$ (Section 5). The run used the same learning rate,
# schedule and weight decay, so the decay factor is the same.

# %%
official_changes = weight_table(official_gcn, official_init)
assert dgcn.training.weight_decay_factor(official_cfg.train) == decay  # the same optimiser
A_official = official_gcn.adjacency[0].weight[:, :, 0].detach()
A_official_init = official_init.adjacency[0].weight[:, :, 0].detach()
official_changes.round({"c": 4, "moved %": 1, "beyond the shrink %": 2})

# %%
fig = viz.graphs.plot_matrix_change(A_official, A_official_init, "A")
fig.suptitle(f"authors' head, {official_trained}: A is D_2 x D_2", fontsize=10)
fig

# %% [markdown]
# Here $c$ equals the weight-decay factor to four digits and the residual $R$ is under a
# tenth of a per cent of the matrix (0.07 %): **the gradient did essentially nothing to the
# authors' adjacency**; weight decay alone shrank it. The next cell measures why.
# $V_F = H_F^\top \mathrm{BN}(\theta(X))$ ($D_2 \times D_1$) is a sum over all $N$ pixels
# without $1/N$, so its entries are large, while $\mathrm{BN}(A V_F)$ is normalised to about
# unit scale. The cell compares the two terms of $\mathrm{BN}(A V_F) + V_F$ on this image, and
# runs the branch once with the adjacency term removed (the scale and shift of the BN after
# $A$ set to zero, so $\mathrm{BN}(A V_F) = 0$).

# %%
with torch.no_grad():
    gathered = official_gcn.to_features(reduced).flatten(2)  # BN(theta(X))^T: [1, D1, N]
    assigned = official_gcn.to_nodes(reduced).flatten(2)  # H_F^T = BN(phi(X))^T: [1, D2, N]
    v_official = torch.bmm(assigned, gathered.transpose(1, 2))  # V_F: [1, D2, D1]
    av = official_gcn.adjacency(v_official)  # BN(A V_F), the nodes as channels
    branch = official_gcn.eval()(reduced)
    no_adjacency = copy.deepcopy(official_gcn).eval()
    no_adjacency.adjacency[1].weight.zero_()
    no_adjacency.adjacency[1].bias.zero_()
    without = no_adjacency(reduced)
adjacency_share = float(av.norm() / v_official.norm())
adjacency_effect = float((without - branch).norm() / branch.norm())
print(f"V_F is {tuple(v_official.shape[1:])}, the std of its entries {float(v_official.std()):.0f}")
print(f"|BN(A V_F)| / |V_F| = {100 * adjacency_share:.2f} %")
print(f"branch output without the adjacency term: {100 * adjacency_effect:.2f} % different")

# %% [markdown]
# The adjacency term is about half a per cent of the node states it is added to, and removing
# it changes the branch's output by about a fifth of a per cent: a term with so little
# influence on the output gets almost no gradient, as the residual $R$ showed. On this
# checkpoint the authors' feature graph is in effect $V_F \leftarrow V_F$ (assign, update with
# $W_F$, reproject); its learning went into $\phi$, $\theta$ and $W_F$ (the table). As $V_F$
# grows with $N$ and $\mathrm{BN}(A V_F)$ does not, larger images of alike features would make
# the share smaller still (not measured here).

# %% [markdown]
# ## 5. The authors' variant: $(I + A)$ with BatchNorm
#
# The released code (the feature half of `DualGCN` in GALD-DGCNet, described in
# `docs/reference/official_dgcnet.md`) computes the same three steps with a BN after every
# learned matrix and a residual ReLU. In the card's letters (pixels as rows):
#
# $$H_F = \mathrm{BN}(\phi(X)),\quad V_F = H_F^\top\, \mathrm{BN}(\theta(X)),\quad
#   V_F \leftarrow \mathrm{BN}(A V_F) + V_F,\quad M_F = \mathrm{BN}(V_F W_F),\quad
#   \text{out} = \mathrm{ReLU}\big(X + \mathrm{BN}(\Phi(H_F M_F))\big),$$
#
# with $H_F$ of size $N \times D_2$, $V_F$ and $M_F$ of size $D_2 \times D_1$ as on the card.
# $\mathrm{BN}(A V_F)$ normalises every node (row), $\mathrm{BN}(V_F W_F)$ every feature
# (column). The code holds the node states transposed, $D_1 \times D_2$ (features by nodes),
# and the swap of Section 1 applies: `to_nodes` is their `theta`, `to_features` their `phi`. We
# verify `OfficialFeatureGCN` against this formula in float64 with random BN statistics.


# %%
def official_formula(module, xb):
    """The released feature branch for one image xb [D, H, W], with plain matrix products."""
    X = xb.flatten(1).T  # [N, D]
    H_F = batchnorm_eval(X @ module.to_nodes[0].weight[:, :, 0, 0].T, module.to_nodes[1])
    gathered = X @ module.to_features[0].weight[:, :, 0, 0].T  # theta(X): [N, D1]
    V_F = H_F.T @ batchnorm_eval(gathered, module.to_features[1])  # [D2, D1]
    A = module.adjacency[0].weight[:, :, 0]  # [D2, D2]
    V_F = batchnorm_eval((A @ V_F).T, module.adjacency[1]).T + V_F  # BN over each node's row
    W_F = module.state_update[0].weight[:, :, 0].T  # [D1, D1]
    M_F = batchnorm_eval(V_F @ W_F, module.state_update[1])  # BN over each feature
    Phi = module.reproject[0].weight[:, :, 0, 0]  # [D, D1]
    out = batchnorm_eval((H_F @ M_F) @ Phi.T, module.reproject[1])  # [N, D]
    return torch.relu(X + out).T.reshape(xb.shape)


released = models.OfficialFeatureGCN(D).double().eval()
set_bn(released)
with torch.no_grad():
    out_official = released(x)
for b in range(x.shape[0]):
    expected = official_formula(released, x[b])
    torch.testing.assert_close(out_official[b], expected, rtol=0, atol=1e-10)
print("OfficialFeatureGCN == ReLU(X + BN(Phi(H_F BN((BN(A V_F) + V_F) W_F)))), both images")

# %% [markdown]
# **The sign is absorbed.** With every BN at identity statistics (mean 0, variance 1, scale 1,
# shift 0), $(I + A)$ with $A = -A_F$ is exactly $(I - A_F)$, and the whole released branch is
# $\mathrm{ReLU}(X + \tilde X_F)$ of the paper's module. We copy the weights across, negating
# the adjacency, and check it numerically. What remains different in practice is everything
# the BNs do: they rescale the node states whatever the number of pixels.


# %%
torch.manual_seed(0)
paper = models.FeatureGCN(D, zero_init=False).double().eval()
released = models.OfficialFeatureGCN(D).double().eval()
set_bn(paper, identity=True)
set_bn(released, identity=True)
with torch.no_grad():
    released.to_nodes[0].weight.copy_(paper.to_nodes.weight)  # phi
    released.to_features[0].weight.copy_(paper.to_features.weight)  # theta
    released.adjacency[0].weight.copy_(-paper.adjacency.weight)  # (I + A) with A = -A_F
    released.state_update[0].weight.copy_(paper.state_update.weight)
    released.reproject[0].weight.copy_(paper.reproject[0].weight)
    torch.testing.assert_close(released(x), torch.relu(x + paper(x)), rtol=0, atol=1e-10)
print("released branch == ReLU(X + paper's X~_F) when A = -A_F and every BN is the identity")

# %% [markdown]
# **Why BN matters: no $1/N$.** $V_F$ is a sum over the pixels, so an image with four times
# as many pixels of the same content gives four times larger node states. Tile the input 2x2
# and compare (exact up to rounding, $V_F$ being a sum over the pixels). In training mode a
# BN after the reprojection (ours) or after every step (the authors') divides this growth out
# with the batch statistics; in eval mode BN applies fixed running statistics, so the scale
# still depends on $N$, and evaluating on windows of the training crop (the authors'
# sliding-window evaluation, notebook 07) keeps $N$ as it was in training.

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
# ## Summary
#
# - The feature-space GCN (the paper, as summarised) assigns the $N$ pixels to $D_2 = D/4$
#   nodes, $H_F = \phi(X)$, gathers $V_F = \phi(X)^\top \theta(X)$ ($D_2 \times D_1$), runs one
#   graph convolution $M_F = (I - A_F) V_F W_F$ with a learned, input-independent $A_F$ and
#   reprojects, $\tilde X_F = \Phi(H_F M_F)$; `dgcn.models.FeatureGCN` equals that formula to
#   $10^{-10}$ in float64.
# - The graph is $D_2 \times D_2$ at every image size: 1.6 GFLOPs and 5 MiB at $D = 2048$; the
#   rest grows linearly in $N$ (313 GFLOPs in all at 1024x2048).
# - With a row-normalised $\hat A$, $(I - \hat A)$ sharpens and $(I - \gamma L)$ smooths (the
#   4-node path's energy: 16 -> 40 and 16 -> 2); a learned $A_F$ can be either.
# - The committed paper head moved $A_F$ by 7 % (weight decay alone: 2.6 %); putting the
#   initial $A_F$ back changes $\tilde X_F$ by 7 %, removing $A_F$ by 37 %; $\phi$, $\theta$
#   and $W_F$ moved by 15 to 38 %. Its nodes tell the truck and the train apart least.
# - The authors' head's adjacency was moved by weight decay alone (residual 0.07 %): its term
#   $\mathrm{BN}(A V_F)$ is 0.55 % of the un-normalised $V_F$ it is added to.
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
# $V_F$, $A_F$, $W_F$ and $M_F$ are $D_2 \times D_1$, $D_2 \times D_2$, $D_1 \times D_1$ and
# $D_2 \times D_1$: none involves $N$. Only $\phi(X)$, $\theta(X)$, the sum
# $\phi(X)^\top \theta(X)$ and the reprojection touch every pixel, so they grow linearly in $N$.
#
# </details>
#
# **Q2.** A colleague says "$(I - \hat A) V$ smooths the node states, that is why it is called
# Laplacian smoothing". What is wrong, and when does $(I - A_F)$ smooth?
#
# <details><summary>Answer</summary>
#
# With a row-normalised $\hat A$, $(I - \hat A) V = L V$ is each node minus its neighbours'
# mean: it removes the constant part and amplifies differences (the path's energy went from 16
# to 40). Laplacian smoothing is $(I - \gamma L) V$, which $(I - A_F)$ computes only if
# $A_F = \gamma L$; nothing makes a learned $A_F$ take either form.
#
# </details>
#
# **Q3.** Why is a heat map of the trained $A_F$ alone no evidence of what the network learned?
#
# <details><summary>Answer</summary>
#
# $A_F$ starts as a random matrix, which looks patterned too. Only the difference from the
# initial matrix (rebuilt from the training seed) shows what training did, and part of it is
# weight decay, a uniform shrink no loss asked for; $A = c\,A_{\text{init}} + R$ separates them.
#
# </details>
#
# **Q4.** In the authors' head the adjacency received almost no gradient. Which property of
# the released branch explains it?
#
# <details><summary>Answer</summary>
#
# $V_F = H_F^\top \mathrm{BN}(\theta(X))$ sums over all pixels without $1/N$, so its entries
# are large (std about 200 here), while $\mathrm{BN}(A V_F)$ is normalised to about unit scale:
# 0.55 % of $V_F$, it barely changes the output and the loss, so little gradient reaches $A$.
#
# </details>
#
# **Q5.** The feature graph is said to "forget positions". In what precise sense?
#
# <details><summary>Answer</summary>
#
# Permuting the pixels leaves $V_F = \phi(X)^\top \theta(X)$ unchanged (a sum over pixels) and
# permutes $\tilde X_F$ alike (every later step is per pixel or per node): the module is
# permutation-equivariant, nothing in it depends on where a pixel is.
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
# $\hat A V$), as in the table; past $\gamma = 0.6$ the step overshoots node 3 (scanned below).
#
# </details>
#
# **Exercise 2.** With $D = 2048$ at 1024x2048 ($N = 128 \cdot 256$), the module costs
# 313.0 GFLOPs (Section 3). How much does it cost with $D_2 = D/8$ nodes instead of $D/4$
# (keep $D_1 = D/2$)? Which terms change?
#
# <details><summary>Worked answer</summary>
#
# Every term with $D_2$ in it: the assignment $N D D_2$, the sum $N D_2 D_1$, the graph
# convolution $D_2^2 D_1 + D_2 D_1^2$ and the reprojection $D D_1 D_2 + N D D_2$; the features
# $\theta(X)$, $N D D_1$, stay. With Section 3's `feature_gcn_macs` (2 FLOPs per multiply-add)
# the total drops from 313.0 to 225.1 GFLOPs: $\theta(X)$ alone (137.4 GFLOPs) does not shrink.
#
# </details>
#
# **Exercise 3.** Verify the answer of Q5 numerically: shuffle the pixels of a feature map,
# run a `FeatureGCN` in eval mode on both, and un-shuffle the output.
#
# <details><summary>Worked answer</summary>
#
# Flatten the $N$ pixels, permute them with `torch.randperm`, reshape to a $1 \times N$ image,
# and compare: $V_F$ agrees and the un-shuffled output equals the original to below $10^{-12}$
# in float64 (the cell below does it and prints the gap).
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
# trained $A$ is $0.974\,A_{\text{init}}$ plus a residual of 0.07 %, so the reset makes
# $A V_F$ about 2.6 % larger; in eval mode the BN after $A$ applies fixed statistics and passes
# that on, and 2.6 % of a term worth 0.21 % of the output is about 0.005 % (measured below).
#
# </details>

# %%
# The worked answers' numbers, checked and printed
gammas = torch.linspace(0, 1, 101, dtype=torch.float64)
energies = torch.tensor([dirichlet_energy((eye4 - g * L_path) @ signal) for g in gammas])
best, least = float(gammas[energies.argmin()]), float(energies.min())
assert round(best, 2) == 0.6 and round(least, 1) == 1.6
assert [round(dirichlet_energy((eye4 - g * L_path) @ signal), 6) for g in (0.5, 1.0)] == [2, 8]
assert round(energy["(I - A) V = L V (difference)"]) == 40 and round(energy["V"]) == 16
n_full = 128 * 256
gflops = {k: round(2 * feature_gcn_macs(2048, 2048 // k, 1024, n_full)[0] / 1e9, 1) for k in (4, 8)}
theta_alone = round(2 * n_full * 2048 * 1024 / 1e9, 1)  # N D D_1 multiply-adds
assert gflops[4] == 313.0 == rows[-1]["GFLOPs GCN_f"] and gflops[8] == 225.1
assert theta_alone == 137.4
perm = torch.randperm(60)
with torch.no_grad():
    flat = x[:1].view(1, D, 1, 60)
    shuffled = flat.flatten(2)[:, :, perm].view(1, D, 1, 60)
    torch.testing.assert_close(fgcn.nodes(shuffled)[1], fgcn.nodes(flat)[1], rtol=0, atol=1e-12)
    gap = float((fgcn(shuffled).flatten(2) - fgcn(flat).flatten(2)[:, :, perm]).abs().max())
    probe = copy.deepcopy(official_gcn).eval()
    probe.adjacency[0].weight.copy_(official_init.adjacency[0].weight)
    reset_effect = float((probe(reduced) - branch).norm() / branch.norm())
assert gap < 1e-12, gap
assert round(100 * adjacency_effect, 2) == 0.21 and round(100 * reset_effect, 3) == 0.005
print(f"Exercise 1: gamma = {best:.2f}, E = {least:.1f}")
print(f"Exercise 2: {gflops[4]} -> {gflops[8]} GFLOPs; theta(X) alone {theta_alone}")
print(f"Exercise 3: largest difference {gap:.1e}")
print(f"Exercise 4: {100 * adjacency_effect:.2f} % without the term, {100 * reset_effect:.3f} %")

# %%
# The numbers of Section 4's text and of the Summary, checked
assert round(official_changes.loc[ADJACENCY, "c"], 4) == round(decay, 4) == 0.9744
assert round(official_changes.loc[ADJACENCY, "beyond the shrink %"], 2) == 0.07
assert round(paper_changes.loc[ADJACENCY, "moved %"]) == 7
assert round(100 * (1 - decay), 1) == 2.6
assert (round(100 * effect_init), round(100 * effect_zero)) == (7, 37)
assert round(100 * adjacency_share, 2) == 0.55 and round(float(v_official.std()), -2) == 200
assert round(paper_changes.loc[ADJACENCY, "beyond the shrink %"], 1) == 6.8
assert round(paper_changes.loc[ADJACENCY, "c"], 3) == 0.979 > round(decay, 3) == 0.974
learned = paper_changes["moved %"].drop([ADJACENCY, LETTERS["reproject"]])
assert round(learned.min()) == 15 and round(learned.max()) == 38, learned
assert learned.idxmax() == LETTERS["to_nodes"]  # phi moved the most
assert int(column.argmax()) == 7 and round(100 * column_share) == 14
assert [round(value, 2) for value in largest] == [0.18, 0.03]
assert row_sums.min() < -1 and row_sums.max() > 1  # neither all 1 nor all 0
assert pairs["paper head"].iloc[0, 1:].tolist() == ["truck", "train"]
assert [pairs["authors' head"].iloc[k, 1:].tolist() for k in (0, 1)] == [
    ["road", "sidewalk"],
    ["truck", "train"],
]
assert cells == {"truck": 20, "train": 50}
print("every number of the text checked")

# %% [markdown]
# ## References
#
# - Zhang, Li, Arnab, Yang, Tong, Torr, *Dual Graph Convolutional Network for Semantic
#   Segmentation*, BMVC 2019 (arXiv 1909.06121), as summarised in
#   `docs/reference/paper_summary.md`: the feature-space graph's three equations, the sizes of
#   $A_F$ and $W_F$, the phrase "Laplacian smoothing". The paper's section and equation
#   numbers are not cited: nobody on the project had its full text.
# - Chen et al., *Graph-Based Global Reasoning Networks* (GloRe), CVPR 2019: a graph over nodes
#   projected from the pixels (how closely DGCNet's feature graph follows it is not checked).
# - Li, Han, Wu, *Deeper Insights into Graph Convolutional Networks for Semi-Supervised
#   Learning*, AAAI 2018; Kipf, Welling, *Semi-Supervised Classification with Graph
#   Convolutional Networks*, ICLR 2017.
# - The authors' code: github.com/lxtGH/GALD-DGCNet, `libs/models/DualGCNNet.py` (`DualGCN`:
#   `phi`, `theta`, `conv_adj`, `conv_wg`, `conv3`; commit be7ebfe), described in
#   `docs/reference/official_dgcnet.md` and mapped to ours in `dgcn/models/official.py`.
# - PyTorch: `torch.nn.Conv1d`, `torch.nn.BatchNorm1d`, `torch.optim.SGD`,
#   `torch.utils.flop_counter`.
# - Package: `dgcn/models/feature_gcn.py`, `dgcn/viz/graphs.py`,
#   `dgcn/training/weight_change.py`, `dgcn/training/frozen.py` (how the committed heads were
#   trained), `experiments/checkpoints/README.md`, `experiments/configs/minicity-ablation.yaml`.
