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
# # 03 · The feature-space GCN
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/03_feature_gcn.ipynb)
#
# The coordinate-space graph of notebook 02 connects *places* in the image. The second half of
# DGCNet connects *kinds of content*: every pixel is projected onto a small set of $D/4$ abstract
# nodes, the nodes exchange information through a learned $D/4 \times D/4$ adjacency, and the
# result is projected back onto the pixels (paper Sec. 3.3). This notebook derives the
# feature-space GCN, checks the package's `FeatureGCN` against the literal matrix formula in
# float64, measures why it is cheap (its graph does not grow with the image), looks at the
# learned adjacency and node assignments of the DGCNets trained on MiniCity that the repository
# commits, and compares the paper's $(I - A_F)$ with the authors' released $(I + A)$ with
# BatchNorm.
#
# You will:
#
# - derive $V_F = \phi(X)^\top \theta(X)$, $M_F = (I - A_F) V_F W_F$ and
#   $\tilde X_F = \Phi(H_F M_F)$ with every shape;
# - verify `dgcn.models.FeatureGCN` against that formula, reading the weights from the module;
# - count FLOPs and memory against the image size and see the graph stay $D_2 \times D_2$;
# - load a DGCNet trained on MiniCity and draw its $A_F$ and node assignments, for the paper's
#   and for the authors' head;
# - verify the authors' `OfficialFeatureGCN` and show how its $(I + A)$ relates to $(I - A_F)$.
#
# | mode | what runs | time |
# |---|---|---|
# | smoke (`DGCN_SMOKE=1`) | every cell; the trained models are loaded, not trained | ~15 s |
# | full | the same cells: nothing here depends on the mode | as smoke |
#
# (Smoke time measured on this project's 2-core CPU while other jobs shared the cores.)

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
# $$H_F = \phi(X) \in \mathbb{R}^{N \times D_2}, \qquad
#   V_F = H_F^\top \, \theta(X) \in \mathbb{R}^{D_2 \times D_1}
#   \qquad (D_2 = D/4,\; D_1 = D/2).$$
#
# $\phi$ and $\theta$ are 1x1 convolutions. Row $k$ of $V_F$,
# $V_F[k] = \sum_{p=1}^{N} H_F[p, k]\, \theta(X)[p]$, is a weighted sum of the reduced
# features of *all* pixels, with weights "how much pixel $p$ belongs to node $k$". A node is a
# soft region of the image defined by what it looks like, not by where it is: two cars at
# opposite ends of the street can feed the same node.
#
# Then **one graph convolution** over the $D_2$ nodes (Sec. 3.1: $\sigma(A X W)$, here without
# a non-linearity):
#
# $$M_F = (I - A_F)\, V_F\, W_F, \qquad A_F \in \mathbb{R}^{D_2 \times D_2},\;
#   W_F \in \mathbb{R}^{D_1 \times D_1}.$$
#
# Unlike $A_S$ of the coordinate graph, $A_F$ is **not computed from the image**: it is a
# learned parameter, the same for every input. $(I - A_F)\, V_F$ mixes the node states (each
# node receives a learned combination of the others, the identity keeps its own state), and
# $W_F$ updates the $D_1$ features of every node (the "state update"). The paper calls the
# $(I - A_F)$ form *Laplacian smoothing*: for a normalised adjacency $A$ (rows summing to 1)
# the matrix $L = I - A$ is the graph Laplacian, and $L V$ is every node's state minus the
# average of its neighbours'. Since $A_F$ is learned and unconstrained, training decides how
# much each node keeps, smooths towards or departs from its neighbours; the form only fixes
# where the identity sits. The same construction is used by GloRe (Chen et al., CVPR 2019).
#
# Finally the nodes are **reprojected** onto the pixels with the same projection $H_F$:
#
# $$\tilde X_F = \Phi(H_F M_F) \in \mathbb{R}^{N \times D},$$
#
# $\Phi$ a 1x1 convolution $D_1 \to D$. Our paper variant follows $\Phi$ with a BatchNorm:
# $V_F$ is a sum over all $N$ pixels without a $1/N$, so its scale grows with the image, and
# the BN normalises it; the BN's scale starts at zero, so training starts from
# $\tilde X_F = 0$ (the docstring of `dgcn/models/feature_gcn.py` gives the reasons). The
# network adds $\tilde X_F$ to $X$ (Sec. 3.4, notebook 04).
#
# In the package, $\phi$ is `to_nodes`, $\theta$ is `to_features`, $A_F$ is `adjacency` and
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

phi = fgcn.to_nodes.weight[:, :, 0, 0]  # [D2, D]
theta = fgcn.to_features.weight[:, :, 0, 0]  # [D1, D]
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
        H_F = X @ phi.T  # [N, D2]
        V_F = H_F.T @ (X @ theta.T)  # [D2, D1]
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
# ### What $(I - A)$ does on a graph you can draw
#
# To see the "Laplacian" in the formula, take a path of 4 nodes with the row-normalised
# adjacency $A$ (each node averages its neighbours). $A V$ replaces every node by the mean of
# its neighbours (smoothing); $(I - A) V$ is each node *minus* that mean, and it maps a signal
# that is constant over the graph to zero ($L \mathbf{1} = 0$, the defining property of a
# Laplacian). In DGCNet $A_F$ is not constrained to be normalised or non-negative: the
# learned matrix can do either, and a little of both.

# %%
# NBVAL_CHECK_OUTPUT
W_path = torch.tensor([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=torch.float64)
A_path = W_path / W_path.sum(1, keepdim=True)  # row-normalised: every row sums to 1
L_path = torch.eye(4, dtype=torch.float64) - A_path
signal = torch.tensor([[1.0], [1.0], [1.0], [5.0]], dtype=torch.float64)  # node 3 stands out
ones = torch.ones(4, 1, dtype=torch.float64)
assert torch.allclose(L_path @ ones, 0 * ones)  # L 1 = 0
columns = {"V": signal, "A V (smooth)": A_path @ signal, "(I - A) V": L_path @ signal}
print(pd.DataFrame({name: value[:, 0] for name, value in columns.items()}).round(3))

# %% [markdown]
# ## 3. Cost: the graph is $D_2 \times D_2$ whatever the image
#
# Count the multiply-adds of one forward pass, $N = hw$ pixels of the feature map:
#
# | step | multiply-adds |
# |---|---|
# | $\phi(X)$, $\theta(X)$ | $N D D_2 + N D D_1$ |
# | $V_F = H_F^\top \theta(X)$ | $N D_2 D_1$ |
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
# it (`experiments/checkpoints/`), on the same micro ResNet backbone (stride 8, layer3 and
# layer4 not dilated), which was trained once on MiniCity and then frozen; only the head was
# trained on the frozen backbone's features, for the number of iterations printed below (the
# CPU ablation, `dgcn reproduce`, preset `minicity-ablation`, notebook 08).
# `minicity-dgcnet-paper.pt` holds the paper-equation head with both graphs: this notebook's
# `FeatureGCN` on the 128-channel layer4 feature, so $D = 128$, $D_2 = 32$ nodes of $D_1 = 64$
# features. `minicity-dgcnet-official.pt` holds the authors' head with both graphs, drawn at
# the end of the section. Both load in a fraction of a second, so smoke and full mode show the same
# models. What they show is how the graphs behave on a synthetic city, not Cityscapes
# accuracy.

# %%
model, cfg = dgcn.load_for_inference(PAPER_CHECKPOINT)
trained = f"{cfg.train.iterations} head iterations"
print(f"{PAPER_CHECKPOINT}: {cfg.model.name} {cfg.model.overrides}, {trained}")
print(f"on the frozen backbone {cfg.frozen.backbone}")
height_px, width_px = cfg.data.minicity_size
root = datasets.ensure_minicity(
    MINICITY, seed=cfg.data.minicity_seed, height=height_px, width=width_px, progress=False
)  # the same seed and size as the checkpoint's data: the same validation images
val = datasets.Cityscapes(root, "val")
image, mask = val[0]
graph, features = viz.graphs.capture_graph_input(model, image[None])
feature_gcn = graph.feature
assert isinstance(feature_gcn, models.FeatureGCN)
print(f"the graph module sees {tuple(features.shape)}: D = {features.shape[1]}")
print(
    f"A_F is {tuple(feature_gcn.adjacency.weight.shape[:2])}, W_F is "
    f"{tuple(feature_gcn.state_update.weight.shape[:2])}"
)

# %% [markdown]
# The learned adjacency. Training seeds the head's initialisation with `train.seed`, so
# rebuilding the model after that seed gives the head's exact initial weights, and we can see
# how far $A_F$ has moved. The reprojection's BN scale $\gamma$ multiplies all that the graph
# adds. With `zero_init` (the package's default) it starts at zero: no gradient reaches $A_F$
# in the first step, and while $\gamma$ is small only a small one (the gradient is
# proportional to $\gamma$), so the graph terms can stay small; without it $\gamma$ starts at
# BN's default, 1. The cell prints the relative change of $A_F$ and the mean $|\gamma|$ now
# and at initialisation: it says how much of $\tilde X_F$ the network actually adds to $X$.
# If $A_F$ has moved by only a few per cent it is still essentially PyTorch's random
# initialisation (uniform in $\pm 1/\sqrt{D_2}$), and the heat map shows no structure of its
# own: what the head learned is then in the projections, drawn next.

# %%
torch.manual_seed(cfg.train.seed)  # the head was initialised right after this seed
untrained = models.build_model(cfg.model.name, cfg.model.num_classes, **cfg.model.overrides)
untrained_gcn = untrained.head.graph.feature
A_trained = feature_gcn.adjacency.weight[:, :, 0].detach()
A_init = untrained_gcn.adjacency.weight[:, :, 0].detach()
change = float((A_trained - A_init).norm() / A_init.norm())
scale = float(feature_gcn.reproject[1].weight.detach().abs().mean())
start = float(untrained_gcn.reproject[1].weight.detach().abs().mean())
print(f"relative change of A_F during training: {100 * change:.1f} %")
print(f"reprojection BN scale: mean |gamma| = {scale:.4f} (at initialisation: {start:g})")
viz.graphs.adjacency_heatmap(A_trained, title=f"A_F after {trained} (paper-equation head)")

# %% [markdown]
# The node assignments $H_F = \phi(X)$: for each node, how strongly every pixel projects onto
# it (signed: red positive, blue negative), for the six nodes with the largest total response.
# A node collects whatever the pixels it covers look like, wherever they are. The maps depend
# on $\phi$ and on the trained backbone's features; the cell prints how far they are from the
# maps of the *initial* $\phi$ on the same features, i.e. how much of them the head's training
# shaped.

# %%
image_uint8 = viz.denormalize(image)
assignment = viz.graphs.feature_assignment(feature_gcn, features)
initial_assignment = viz.graphs.feature_assignment(untrained_gcn, features)
apart = float((assignment - initial_assignment).norm() / initial_assignment.norm())
print(f"assignment: {tuple(assignment.shape)} (nodes, feature rows, feature columns)")
print(f"H_F of this image, trained vs initial phi: {100 * apart:.0f} % apart")
fig = viz.graphs.plot_assignment(image_uint8, assignment, nodes=6)
fig.suptitle(f"H_F = phi(X), paper-equation head, {trained}", fontsize=10)
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
official, official_cfg = dgcn.load_for_inference(OFFICIAL_CHECKPOINT)
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
# ## 5. The authors' variant: $(I + A)$ with BatchNorm
#
# The released code (the feature half of `DualGCN` in GALD-DGCNet; see the docstring of
# `dgcn/models/feature_gcn.py`) computes the same three steps with BN after every projection
# and a residual ReLU. In the paper's notation (pixels as rows, nodes as rows of $Z$):
#
# $$F = \mathrm{BN}(X \phi'),\; B = \mathrm{BN}(X \theta'),\; Z = B^\top F,\quad
#   Z \leftarrow \mathrm{BN}(A Z) + Z,\quad Z \leftarrow \mathrm{BN}(Z W),\quad
#   \text{out} = \mathrm{ReLU}\big(X + \mathrm{BN}(\Phi(B Z))\big),$$
#
# where $\mathrm{BN}(A Z)$ normalises every node (row) and $\mathrm{BN}(Z W)$ every feature
# (column). Mind the letters: the authors' `phi` makes the node *features* and `theta` the
# *projection*, the other way round from the paper; the package names them `to_features` and
# `to_nodes` on both variants. We verify `OfficialFeatureGCN` against this formula in float64
# with random BN statistics.

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
#
# ## Summary
#
# - The feature-space GCN projects the $N$ pixels onto $D_2 = D/4$ nodes,
#   $V_F = \phi(X)^\top \theta(X)$, runs one graph convolution $M_F = (I - A_F) V_F W_F$ with a
#   learned, input-independent $A_F$, and reprojects with the same assignment,
#   $\tilde X_F = \Phi(H_F M_F)$.
# - `dgcn.models.FeatureGCN` equals that formula to $10^{-10}$ in float64
#   (`adjacency.weight[:, :, 0]` $= A_F$, `state_update.weight[:, :, 0]` $= W_F^\top$).
# - The graph is $D_2 \times D_2$ at every image size; cost grows linearly in $N$, only in the
#   projections.
# - On the committed MiniCity models the node maps split the image by content. How far $A_F$
#   and $\phi$ moved from their initialisation, and the reprojection's $\gamma$, tell how much
#   the paper head's graph learned (its zero-initialised reprojection learns slowly); the
#   authors' head, BN after every step, projects onto 16 nodes of its 64-channel reduction.
# - The released code's $(I + A)$ is the paper's $(I - A_F)$ with the sign absorbed; it adds BN
#   after each step and a residual ReLU.
#
# ## Exercises
#
# 1. Replace $(I - A_F)$ by $A_F$ alone (no identity) in the explicit formula. What does the
#    module compute when $A_F = 0$ now, compared with before? *Hint:* look at $M_F$.
# 2. Change $D_2$ from $D/4$ to $D/8$ in the cost formula. Which terms shrink, and by how much
#    at 1024x2048? *Hint:* only the terms with $D_2$ in them.
# 3. Train the paper-equation head longer on the same frozen backbone,
#    `dgcn reproduce --rows both --opt train.iterations=2000 --out runs/paper-long`, load
#    `runs/paper-long/both-seed0/last.pt` and redraw $A_F$ and the node maps; then once more
#    with `model.overrides.zero_init` set the other way (Section 4 prints the scale it started
#    from). Does the relative change of $A_F$ grow linearly with the iterations? *Hint:* with a
#    zero start the BN scale of `reproject` has to grow first.
# 4. Show that $\tilde X_F$ is invariant to permuting the pixels: shuffle the $N$ columns of
#    $X$, run the explicit formula, and un-shuffle. What does that say about positions?
#    *Hint:* $V_F$ is a sum over pixels.
# 5. Feed the paper's module an input tiled 2x2 in **training** mode and compare the output's
#    scale with the untiled one. *Hint:* BN now uses batch statistics.
#
# ## References
#
# - Zhang, Li, Arnab, Yang, Tong, Torr, *Dual Graph Convolutional Network for Semantic
#   Segmentation*, BMVC 2019 (arXiv 1909.06121): Sec. 3.1 (graph convolution), Sec. 3.3
#   (feature-space GCN, Eq. 6-8), Sec. 3.4 (fusion).
# - Chen, Rohrbach, Yan, Yan, Feng, Kalantidis, *Graph-Based Global Reasoning Networks*,
#   CVPR 2019 (GloRe: the projection / $(I - A_g)$ / reprojection construction).
# - The authors' code: github.com/lxtGH/GALD-DGCNet, `libs/models/DualGCNNet.py` (`DualGCN`:
#   `phi`, `theta`, `conv_adj`, `conv_wg`, `conv3`; commit be7ebfe), mapped to ours in
#   `dgcn/models/official.py`.
# - PyTorch: `torch.nn.Conv1d`, `torch.nn.BatchNorm1d`, `torch.utils.flop_counter`.
# - Package: `dgcn/models/feature_gcn.py`, `dgcn/viz/graphs.py`, `dgcn/training/frozen.py`
#   (how the committed heads were trained), `experiments/configs/minicity-ablation.yaml`.
