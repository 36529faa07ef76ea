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
# # 07 · Evaluation and visual inspection
#
# [![Open In
# Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/07_evaluation.ipynb)
#
# A single mIoU hides most of what a segmentation model does. This notebook takes the DGCNet
# trained on MiniCity that the repository commits (or notebook 06's run), evaluates it in
# three test modes (one forward pass on the whole image; a sliding window, the mode of the
# authors' released evaluation; multi-scale with flipping, which the paper's best row adds),
# checks each mode against an independent computation, and then looks at the errors: IoU per
# class, the images the model gets most wrong, which classes it confuses, and what its two
# graphs do on real images (the feature-space nodes a pixel is projected onto and the
# coordinate-space neighbours a pixel on the road/sidewalk boundary listens to). An
# interactive inspector puts all of it behind a few controls. A last cell runs the authors'
# Cityscapes protocol when the data and a checkpoint are present.
#
# You will:
#
# - write the three test modes as formulas and verify the package's implementation against
#   them, including that a sliding window as large as the image *is* the whole image;
# - compare the modes' mIoU and cost in one table;
# - read IoU bars, prediction grids, the worst images and the confusion matrix;
# - look inside the graphs: feature-space assignments and one row of the coordinate graph
#   $A_S$ on a trained model;
# - explore any image, class and pixel with the interactive inspector (static views where
#   widgets do not run);
# - run (or see skipped) the Cityscapes evaluation with the authors' protocol.
#
# | mode | what runs | time |
# |---|---|---|
# | CPU smoke | 20 MiniCity val images, 3 modes, the inspector; trained models loaded | 1-2 min |
# | CPU full | all MiniCity val images of the model's data config, 3 modes | not measured |
# | GPU, Cityscapes | 500 val images, sliding window 832, 1/3 overlap | not measured (no GPU) |
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
        clone = ["git", "clone", "-q", "--depth", "1", REPO, ROOT]
        if subprocess.run([*clone[:5], "-b", tag, *clone[5:]]).returncode != 0:
            print(f"note: {REPO} has no tag {tag} (a fork?): cloning its default branch")
            subprocess.run(clone, check=True)
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

# %%
# ruff: noqa: E402, B018 (imports where first needed; a cell's last expression is shown)
# %matplotlib inline
from pathlib import Path

VAL_IMAGES = 20 if SMOKE else 0  # MiniCity validation images evaluated (0 = all)
SLIDE_TILE = 128  # MiniCity images are 128 x 256: three windows per image
SCALES = tuple(dgcn.EvalConfig().scales)  # the package's default multi-scale set
WORST = 4  # how many of the worst images to show
COMMITTED = Path(
    "experiments/checkpoints/minicity-dgcnet-official.pt"
)  # trained, the authors' head
PAPER_COMMITTED = Path("experiments/checkpoints/minicity-dgcnet-paper.pt")  # for A_S (Sec. 6)
USE_NOTEBOOK_06 = False  # True: evaluate notebook 06's MiniCity run instead, if there is one
DRIVE_RUN_06 = Path("/content/drive/MyDrive/dgcn/runs/06/last.pt")  # notebook 06 on Colab
CHECKPOINTS_06 = [Path("runs/notebooks/06/last.pt"), DRIVE_RUN_06]
CITYSCAPES_ROOT = Path("/content/drive/MyDrive/dgcn/cityscapes" if IN_COLAB else "data/cityscapes")
CITYSCAPES_CHECKPOINTS = [Path("runs/cityscapes-official/last.pt"), *CHECKPOINTS_06]

# %% [markdown]
# ## 1. The model
#
# The repository commits a DGCNet trained on MiniCity,
# `experiments/checkpoints/minicity-dgcnet-official.pt`: the authors' head (`DualGCNHead` with their
# `DualGCN` block, both graphs) on a micro ResNet at stride 8 whose layer3 and layer4 are not
# dilated. The backbone was trained once on
# MiniCity and then frozen; the head was trained on the frozen backbone's features, for the
# number of iterations printed below (the CPU ablation's row of the authors' head with both
# graphs, `dgcn reproduce`, preset `minicity-ablation`, notebook 08). It loads in a fraction
# of a second, so smoke and full mode evaluate the same model.
#
# Notebook 06 leaves a MiniCity checkpoint of its own in `runs/notebooks/06/last.pt` (on
# Colab, on Drive: mount it first); set `USE_NOTEBOOK_06 = True` to evaluate that one instead.
# It is a short run of `minicity-cpu` from scratch (a few dozen iterations in smoke mode, a
# few hundred in full mode), so expect a weaker model. Either way the model is small and
# trained on a synthetic city: its numbers show the evaluation pipeline at work and where such
# a model fails, not what DGCNet reaches on Cityscapes.

# %%
import torch

torch.manual_seed(0)


def first_checkpoint(paths, dataset):
    """The first existing checkpoint among ``paths`` trained on ``dataset``, or None."""
    for path in paths:
        if path.is_file() and dgcn.load_checkpoint(path)["config"]["data"]["dataset"] == dataset:
            return path
    return None


checkpoint = first_checkpoint(CHECKPOINTS_06, "minicity") if USE_NOTEBOOK_06 else None
if checkpoint is not None:
    print(f"using notebook 06's checkpoint {checkpoint}")
else:
    checkpoint = COMMITTED
    print(f"using the committed model {checkpoint}")
model, cfg = (
    dgcn.load_for_inference(checkpoint)
    if checkpoint != COMMITTED
    else dgcn.committed_model("minicity-dgcnet-official")
)
print(f"{cfg.model.name} {cfg.model.overrides}")
if cfg.frozen.backbone:
    print(f"head trained {cfg.train.iterations} iterations on the frozen {cfg.frozen.backbone}")
else:
    print(f"trained end to end for {cfg.train.iterations} iterations")

# %% [markdown]
# The validation images of the model's own data configuration (`cfg.data`, stored in the
# checkpoint): for the committed model, the ablation's MiniCity under `data/minicity-ablation`,
# which `prepare_data` generates on first use (some seconds) and reuses after. They are held in
# memory (MiniCity is small): normalised images `[N, 3, 128, 256]` and masks of train ids
# `[N, 128, 256]`, 255 where a pixel is not scored.

# %%

datasets.prepare_data(cfg.data)  # MiniCity with the checkpoint's seed, size and counts
cfg.data.val_limit = VAL_IMAGES
val_set = datasets.build_dataset(cfg.data, cfg.data.val_split, train=False)
images = torch.stack([val_set[i][0] for i in range(len(val_set))])
masks = torch.stack([val_set[i][1] for i in range(len(val_set))])
print(f"{cfg.data.root}, split {cfg.data.val_split!r}: {len(val_set)} images")
print(f"images {list(images.shape)}, masks {list(masks.shape)}")

# %% [markdown]
# ## 2. Three ways to predict
#
# Let $f$ be the network and $\sigma$ the softmax over the $K = 19$ classes; every mode returns
# probabilities $P \in [0, 1]^{K \times H \times W}$ and the prediction is $\arg\max_k P_k$.
#
# **Whole image.** One forward pass: $P = \sigma(f(I))$.
#
# **Sliding window.** The authors' released evaluation tests Cityscapes (1024 x 2048) with
# square tiles of side $t = 832$ overlapping by a fraction $o = 1/3$, at a single scale and
# without flipping (`docs/reference/official_dgcnet.md`, "Test-time averaging";
# `experiments/paper_results.yaml`). Along each axis of length $L$ the stride is
# $s = \lceil t (1 - o) \rceil$, the windows start at $0, s, 2s, \dots$, there are
# $n = \lceil (L - t) / s \rceil + 1$ of them and the last one is shifted back to end at the
# border. Each pixel $p$ averages the logits of the windows $\mathcal{W}(p)$ that contain it,
# as the authors' evaluation does, and the softmax comes last:
#
# $$
# P(p) = \sigma\Big(\frac{1}{|\mathcal{W}(p)|} \sum_{w \in \mathcal{W}(p)} f(I_w)(p)\Big).
# $$
#
# When $t \ge L$ on both axes there is a single window, the image itself, so sliding equals
# whole. A tile sees less context than the whole image, which matters for a model whose
# point is global context; the authors slide with tiles of their training crop size, 832.
#
# **Multi-scale + flip.** The paper's best row adds multi-scale testing (80.9 mIoU with OHEM
# and multi-grid; paper, as summarised; `docs/reference/paper_results.md`), but which scales,
# and whether it flips, is not in this repository: unverified here, check arXiv 1909.06121.
# The authors' released evaluation script is single scale. We use the package's default set
# $\mathcal{S}$ = `EvalConfig.scales` = 0.75, 1, 1.25, 1.5, 1.75 (the package's choice, not
# a setting taken from the paper). With a bilinear resize $R_s$ to
# $\operatorname{round}(sH) \times \operatorname{round}(sW)$ and the horizontal flip $F$ (its
# own inverse),
#
# $$
# P = \sigma\Big(\frac{1}{2 |\mathcal{S}|} \sum_{s \in \mathcal{S}} \Big[
#   R_{1/s}\,f(R_s I) + R_{1/s}\,F\,f(F R_s I) \Big]\Big),
# $$
#
# ten forward passes per image, each view weighted the same; with `tile` set (the package's
# Cityscapes presets) each scale is itself predicted by sliding window (Exercise 1 counts the
# cost). (`eval.average: probs` averages the views' softmaxes
# $\sigma(f(\cdot))$ instead of their logits.) The windows the authors use on a Cityscapes frame:

# %%
# NBVAL_CHECK_OUTPUT
from dgcn import evaluation

windows = evaluation.sliding_windows((1024, 2048), tile=832, overlap=1 / 3)
print(f"Cityscapes 1024 x 2048, tile 832, overlap 1/3: {len(windows)} windows (y1, y2, x1, x2)")
print(windows)
print(
    f"MiniCity 128 x 256, tile {SLIDE_TILE}:",
    evaluation.sliding_windows((128, 256), tile=SLIDE_TILE, overlap=1 / 3),
)

# %% [markdown]
# Now the checks, each against a computation that does not use the package's predictors:
# (a) a tile at least as large as the image gives exactly the whole-image probabilities;
# (b) the sliding window equals the formula above, windows written out by hand;
# (c) multi-scale + flip equals the formula above with `torch.nn.functional.interpolate`.

# %%
import math

import torch.nn.functional as F

x = images[:2]
height, width = x.shape[-2:]
model.eval()
whole = evaluation.predict_whole(model, x)
big_tile = evaluation.predict_slide(
    model, x, tile=max(height, width), overlap=1 / 3, average="logits"
)
assert torch.equal(big_tile, whole)  # (a): one window, the image itself


def logits_of(batch):
    with torch.no_grad():
        return model(batch)["out"]


def window_starts(length, tile, overlap=1 / 3):
    """Start of every window along one axis: stride ceil(t (1 - o)), the last one shifted back."""
    if tile >= length:
        return [0]
    stride = math.ceil(tile * (1 - overlap))
    return [min(i * stride, length - tile) for i in range(math.ceil((length - tile) / stride) + 1)]


ys, xs = window_starts(height, SLIDE_TILE), window_starts(width, SLIDE_TILE)
th, tw = min(SLIDE_TILE, height), min(SLIDE_TILE, width)
total, count = torch.zeros_like(whole), torch.zeros(1, 1, height, width)
for y1 in ys:
    for x1 in xs:
        total[..., y1 : y1 + th, x1 : x1 + tw] += logits_of(x[..., y1 : y1 + th, x1 : x1 + tw])
        count[..., y1 : y1 + th, x1 : x1 + tw] += 1
slide = evaluation.predict_slide(model, x, tile=SLIDE_TILE, overlap=1 / 3, average="logits")
torch.testing.assert_close(slide, (total / count).softmax(dim=1))  # (b)

views = []
for s in SCALES:
    size = (round(height * s), round(width * s))
    scaled = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    for flip in (False, True):
        view = logits_of(scaled.flip(-1)).flip(-1) if flip else logits_of(scaled)
        views.append(F.interpolate(view, size=(height, width), mode="bilinear", align_corners=True))
multi = evaluation.predict_multiscale(
    model, x, scales=SCALES, flip=True, tile=None, overlap=0, average="logits"
)
torch.testing.assert_close(multi, torch.stack(views).mean(0).softmax(dim=1))  # (c)
print(f"(a) tile >= image is whole; (b) windows at y {ys}, x {xs}; (c) {len(views)} views")

# %% [markdown]
# ## 3. The three modes on MiniCity
#
# The scores are read from one $K \times K$ confusion matrix $C$ over all scored pixels of the
# split (rows: ground truth, columns: prediction), not averaged per image:
# $\mathrm{IoU}_k = C_{kk} / (\sum_j C_{kj} + \sum_i C_{ik} - C_{kk})$, mIoU is their mean over
# the classes that occur, pixel accuracy is $\operatorname{tr} C / \sum C$. We predict every
# image once per mode (the predictions are kept for the inspection below) and count them with
# `metrics.ConfusionMatrix`.

# %%
import time

import pandas as pd

MODES = {
    "whole": dict(mode="whole"),
    f"slide (tile {SLIDE_TILE}, 1/3)": dict(mode="slide", tile=SLIDE_TILE, overlap=1 / 3),
    "multi-scale + flip": dict(mode="multiscale", tile=None, scales=SCALES, flip=True),
}
PASSES = {"whole": 1, "slide": len(ys) * len(xs), "multiscale": 2 * len(SCALES)}
predictions, matrices, rows = {}, {}, []
for name, options in MODES.items():
    start = time.perf_counter()
    predictions[name] = torch.cat(
        [evaluation.predict(model, batch, **options).argmax(1) for batch in images.split(4)]
    )
    matrices[name] = evaluation.metrics.ConfusionMatrix(datasets.NUM_CLASSES).update(
        predictions[name], masks
    )
    rows.append(
        {
            "mode": name,
            "forward passes / image": PASSES[options["mode"]],
            "mIoU %": 100 * matrices[name].miou(),
            "pixel accuracy %": 100 * matrices[name].pixel_accuracy(),
            "seconds": time.perf_counter() - start,
        }
    )
table = pd.DataFrame(rows).set_index("mode")
table.round(1)

# %% [markdown]
# `evaluation.evaluate` is the same count over a `DataLoader`, the path `fit` and
# `dgcn evaluate` take (it also shards the images over `torchrun` processes and sums the
# matrices). It must give the identical matrix:

# %%
from torch.utils.data import DataLoader

loader = DataLoader(val_set, batch_size=4)
from_loader = evaluation.evaluate(model, loader, mode="whole", progress=False)
assert torch.equal(from_loader.matrix, matrices["whole"].matrix)
print(f"evaluate(): {from_loader}")

# %% [markdown]
# On Cityscapes the paper's best row, 80.9 against 80.5 for DGCNet alone (paper, as
# summarised; `docs/reference/paper_results.md`), adds multi-scale testing together with OHEM
# and multi-grid, so the share of the test mode alone is not in our reference numbers. On
# MiniCity, read the differences off the table: the sliding window's 128 x 128 tiles each see
# half of the image, less context than the model had in training, and multi-scale + flip
# averages ten views at ten times the cost of one. Which mode wins, and by how much, depends
# on the model and the images. The rest of the notebook inspects the mode with the highest
# mIoU.

# %%
BEST = table["mIoU %"].idxmax()
preds = predictions[BEST]
best_matrix = matrices[BEST]
print(f"inspecting: {BEST}")

# %% [markdown]
# ## 4. IoU per class
#
# Bars in the Cityscapes order; "n/a" marks a class that appears neither in the ground truth
# nor in the predictions of these images. About 13 of the 19 classes appear in a typical
# MiniCity image; the small and rare ones (riders, motorcycles, traffic lights, a train on a
# few images) are learnt last, the large ones (road, building, sky, vegetation) first. The
# dashed line is the mIoU.

# %%
summary = best_matrix.summary()
print(evaluation.metrics.format_table(summary))
viz.iou_bars(summary["per_class"], title=f"MiniCity val, {BEST}")

# %% [markdown]
# ## 5. Predictions and errors
#
# Each row: the image, the ground truth, the prediction, and the errors (grey = right,
# red = wrong, black = not scored). The first three validation images:

# %%
fig = viz.prediction_grid(images[:3], masks[:3], preds[:3])
fig.set_dpi(70)  # MiniCity's sensor noise makes large PNGs
fig

# %% [markdown]
# ### The worst images
#
# Per image we build a confusion matrix of its own pixels and read its mIoU (over the
# classes in its ground truth or its prediction) and its pixel accuracy, then sort. The worst
# images tell more than the best: a missed class, a confusion between two classes that share
# a texture, or a whole region wrong.

# %%
per_image = []
for i in range(len(images)):
    matrix = evaluation.metrics.ConfusionMatrix(datasets.NUM_CLASSES).update(preds[i], masks[i])
    per_image.append(
        {"image": i, "mIoU %": 100 * matrix.miou(), "accuracy %": 100 * matrix.pixel_accuracy()}
    )
ranking = pd.DataFrame(per_image).set_index("image").sort_values("mIoU %")
worst = ranking.index[:WORST].tolist()
ranking.head(WORST).round(1)

# %%
titles = [f"image {i}: mIoU {ranking.loc[i, 'mIoU %']:.1f} %" for i in worst]
fig = viz.prediction_grid(images[worst], masks[worst], preds[worst], titles=titles)
fig.set_dpi(70)
fig

# %% [markdown]
# ### Which classes are confused
#
# Row $t$ of the heat map is the ground-truth class $t$, divided by its number of pixels: the
# diagonal is each class's recall, an off-diagonal cell $(t, p)$ the fraction of class $t$
# predicted as $p$ (log colours show the small confusions). MiniCity is built so that some
# confusions can only be resolved by context: road and sidewalk share one texture, truck, bus
# and train share one body, walls share the facade material of buildings. Those are the cells
# a context module such as DGCNet's graphs should empty.

# %%
viz.confusion_heatmap(best_matrix.matrix)

# %% [markdown]
# ## 6. Inside the graphs, on real predictions
#
# `viz.graphs.capture_graph_input` runs the network once and catches the feature map $X$
# that enters its `DualGCN`: in the authors' head the head's reduction of the backbone feature
# (their `conva`; 64 channels in the micro model), in the paper head the backbone's layer4
# output (128 channels), in both at 1/8 of the image: with the micro ResNet of the MiniCity
# models, 16 x 32 positions for a 128 x 256 image. The MiniCity models use $d = 2$ for the
# coordinate graph, which gives 8 x 16 nodes; with $d = 8$ only 2 x 4 would be left.
#
# The node grid depends on the backbone, not only on the image: torchvision's ResNet-101
# (the package's `dgcnet_paper_r101`) maps 832 pixels to 104 feature positions, the authors'
# deep-stem ResNet-101 with its ceil-mode max-pool (`dgcnet_official_r101`) to 105
# (`docs/reference/official_dgcnet.md`), and the two downsample differently (average pooling
# with ceil mode; three stride-2 depthwise convolutions). The cell below measures both at
# $d = 8$ on the package's models, built on PyTorch's `meta` device (shapes only, no weights
# and no arithmetic, well under a second):
#
# %%
# NBVAL_CHECK_OUTPUT
grids = []
for name in ("dgcnet_paper_r101", "dgcnet_official_r101"):
    with torch.device("meta"):
        r101 = dgcn.build_model(name)  # d = 8
        for size in ((832, 832), (1024, 2048)):
            r101_graph, r101_x = viz.graphs.capture_graph_input(r101, torch.empty(1, 3, *size))
            grids.append(
                {
                    "model (backbone)": name,
                    "input": f"{size[0]} x {size[1]}",
                    "stride-8 feature": " x ".join(map(str, r101_x.shape[-2:])),
                    "node grid, d = 8": " x ".join(
                        map(str, r101_graph.coordinate.downsample(r101_x).shape[-2:])
                    ),
                }
            )
print(pd.DataFrame(grids).to_string(index=False))

# %% [markdown]
# So a statement such as "an 832 crop has 13 x 13 nodes" holds for torchvision's ResNet-101
# and the paper head; the authors' network on the same crop has 14 x 14 nodes, and on a
# whole 1024 x 2048 frame 17 x 33 instead of 16 x 32.
#
# **Feature space** (the paper's Sec. 3.3, numbering unverified). $H_F = \theta(X)$ projects every
# pixel onto $D/4$ nodes (in the
# authors' head the projection $B$, a 1x1 convolution and BN, notebook 03); node $k$'s feature
# is $V_F[k] = \sum_p H_F[k, p]\, \phi(X)[p]$. A map of $H_F[k]$ shows which pixels make up
# node $k$, whatever their position: nodes that respond to one class wherever it is (a "road
# node", a "vegetation node") are what the paper means by reasoning over relations between
# classes. The maps are signed; the six nodes with the largest total response are drawn.

# %%
from IPython.display import display

road, sidewalk = datasets.CLASS_NAMES.index("road"), datasets.CLASS_NAMES.index("sidewalk")


def road_sidewalk_boundary(mask):
    """A road pixel with sidewalk beside it (left or right): the middle one, or None."""
    is_sidewalk = mask == sidewalk
    beside = torch.zeros_like(is_sidewalk)
    beside[:, :-1] |= is_sidewalk[:, 1:]  # sidewalk on the right
    beside[:, 1:] |= is_sidewalk[:, :-1]  # sidewalk on the left
    points = ((mask == road) & beside).nonzero()
    return None if len(points) == 0 else tuple(points[len(points) // 2].tolist())


index = next((i for i in range(len(masks)) if road_sidewalk_boundary(masks[i])), 0)
picture = viz.denormalize(images[index])
graph, features = viz.graphs.capture_graph_input(model, images[index : index + 1])
assert isinstance(graph, models.DualGCN)
print(
    f"image {index}: graph input X {list(features.shape)}, {graph.variant} {type(graph).__name__}"
)
if graph.feature is not None:
    fig = viz.graphs.plot_assignment(
        picture, viz.graphs.feature_assignment(graph.feature, features)
    )
    head = {"official": "authors' head", "paper": "paper-equation head"}[graph.variant]
    fig.suptitle(f"feature-space nodes of image {index} ({head})", fontsize=10)
    fig.set_dpi(80)
    display(fig)
else:
    print("skipped: this model has no feature-space graph")

# %% [markdown]
# **Coordinate space** (the paper's Sec. 3.2, numbering unverified). $V_S = H_S X$ pools $d \times
# d$ blocks into nodes and
# $A_S = \delta(V_S)\, \Psi(V_S)^\top$ weighs how much node $i$ gathers from node $j$ in
# $M_S = A_S\, \nu(V_S)\, W_S$. We take a pixel on the boundary between road and sidewalk,
# the pair that MiniCity makes indistinguishable by texture, and draw the row of $A_S$ of
# the node that holds it: where on the image that node listens. $A_S$ is not normalised, so
# only the relative sizes within the map matter.
#
# The authors' coordinate branch (`OfficialCoordinateGCN`) forms no node-by-node matrix: it
# normalises a channel-by-channel one (notebook 02). When the evaluated model has no
# coordinate graph of the paper's form, the cell therefore loads the paper-equation head
# trained on the same frozen backbone (`minicity-dgcnet-paper.pt`, notebook 02) and draws its
# $A_S$ on the same image. How much that head actually uses its graph is the reprojection's
# BN scale, which notebook 02 prints.

# %%
pixel = road_sidewalk_boundary(masks[index])
coordinate_graph, coordinate_features, source = graph, features, "this model"
if not isinstance(graph.coordinate, models.CoordinateGCN):
    paper_model, paper_cfg = dgcn.committed_model("minicity-dgcnet-paper")
    coordinate_graph, coordinate_features = viz.graphs.capture_graph_input(
        paper_model, images[index : index + 1]
    )
    source = f"paper head, {paper_cfg.train.iterations} head iterations"
    print(f"no node-by-node A_S in {type(graph.coordinate).__name__}: using {PAPER_COMMITTED}")
if pixel is None:
    print("skipped: no road/sidewalk boundary in these images")
else:
    size = tuple(masks.shape[-2:])
    coordinate = coordinate_graph.coordinate
    affinity = viz.graphs.coordinate_affinity(
        coordinate, coordinate_features, pixel, image_size=size
    )
    d = coordinate.downsample_rate
    print(f"boundary pixel {pixel} of image {index}; d = {d}, node grid {list(affinity.shape)}")
    title = f"row of A_S for its node ({source})"
    display(viz.graphs.plot_affinity(picture, affinity, pixel, title=title))

# %% [markdown]
# ## 7. An interactive inspector
#
# The figures above are fixed views; `viz.inspector` lets you choose them. It computes
# everything once, as plain arrays (`viz.inspector.compute`): the images, the ground truth,
# the predictions, the error mask (prediction $\ne$ ground truth on scored pixels), every
# image's coordinate graph $A_S$ (all $N' \times N' = 128 \times 128$ entries on the
# 8 x 16 node grid) and its feature-space projection $H_F$, and which node and which feature
# position hold each pixel. `viz.inspector.render(data, state)` then draws one state: which
# image, which layers (image, ground truth, prediction, errors), how opaque the class colours
# are, one highlighted class (every pixel not of that class is dimmed in the ground truth and
# in the prediction, and the class's IoU on this image is reported with its pixel counts),
# and one pixel, for which a second row shows
#
# - the row of $A_S$ of the node that holds the pixel, each pixel coloured by the weight of
#   its own node (so the node grid shows), as in Sec. 6;
# - the map of the feature-space node the pixel projects onto most strongly (largest
#   $|H_F[k, p]|$), and the pixel's whole projection onto the $D/4 = 32$ nodes.
#
# The inspector uses the paper-equation head (`minicity-dgcnet-paper.pt`, trained, 1,000 head
# iterations on the frozen backbone): its coordinate graph has a node-by-node $A_S$, which the
# authors' head does not form. Its predictions are one forward pass on the whole image.

# %%
inspect_model, inspect_cfg = dgcn.committed_model("minicity-dgcnet-paper")
start = time.perf_counter()
inspection = viz.inspector.compute(
    inspect_model, images, masks, source=f"paper head, {inspect_cfg.train.iterations} iterations"
)
print(
    f"{len(inspection)} images in {time.perf_counter() - start:.1f} s: A_S "
    f"{list(inspection.affinity.shape)} on a {inspection.node_grid} node grid, H_F "
    f"{list(inspection.assignment.shape)}"
)
wrong = (inspection.preds != masks.numpy()) & (masks.numpy() != 255)
assert (inspection.errors == wrong).all()  # the error mask, recomputed

# %% [markdown]
# Two fixed states, drawn as one static figure: it is what the HTML book and a notebook
# without widgets show. The first is the road/sidewalk boundary pixel of Sec. 6 with the
# sidewalk highlighted; the second is the large vehicle (bus, truck or train: in MiniCity they
# share one body and differ in length) with the most pixels among these images, a pixel at
# its middle, the vehicle's class highlighted.

# %%
InspectorState = viz.inspector.InspectorState
vehicles = [datasets.CLASS_NAMES.index(name) for name in ("truck", "bus", "train")]
counts = torch.stack([(masks == k).flatten(1).sum(1) for k in vehicles])  # [3, N]
vehicle_image = int(counts.max(0).values.argmax())
vehicle = vehicles[int(counts[:, vehicle_image].argmax())]
inside = (masks[vehicle_image] == vehicle).nonzero()
STATES = [
    InspectorState(
        image=index, highlight=sidewalk, pixel=pixel, opacity=0.6
    ),  # Sec. 6's boundary pixel
    InspectorState(
        image=vehicle_image, highlight=vehicle, pixel=tuple(inside[len(inside) // 2].tolist())
    ),
]
for state in STATES:
    info = viz.inspector.describe(inspection, state)
    print(
        f"image {state.image}, {info['class']}: IoU {info['iou']:.1%} "
        f"({info['intersection']} / {info['union']} px); pixel {state.pixel}: node "
        f"{info['node']} of A_S, strongest feature node {info['feature_node']}"
    )
fig = viz.inspector.static_figure(inspection, STATES)
fig.set_dpi(80)
fig

# %% [markdown]
# And the inspector itself. Pick an image (its per-image mIoU is in the list), toggle the
# layers, move the opacity, choose a class, tick "graphs at pixel" and move the y / x
# sliders; the numbers under the picture are `viz.inspector.describe` of the state. It runs
# where a Jupyter frontend with ipywidgets runs (JupyterLab, Notebook 7, VS Code, Colab); the
# HTML book can show at most a frozen copy of the controls, so the static figure above is the
# reference there. Without ipywidgets installed, `inspector` returns that static figure.

# %%
widget = viz.inspector.inspector(inspection, state=STATES[0], static_states=STATES)
display(widget)

# %% [markdown]
# ## 8. Cityscapes, the authors' protocol
#
# The authors score the 500 Cityscapes val images at full resolution (1024 x 2048) by
# sliding window, tile 832, overlap 1/3, single scale, no flip (the 8 windows printed in
# Sec. 2; their released evaluation, `docs/reference/official_dgcnet.md`); the paper's best
# row adds multi-scale testing at scales not known here (Sec. 2). The cell runs when
# `data/cityscapes/leftImg8bit` and a checkpoint trained on Cityscapes exist, e.g. the one
# `dgcn train --config cityscapes-official` writes or notebook 06's on a GPU. The same from a
# terminal: `dgcn evaluate --checkpoint runs/cityscapes-official/last.pt`; the authors'
# released weights load with `--official`.

# %%

cs_checkpoint = first_checkpoint(CITYSCAPES_CHECKPOINTS, "cityscapes")
if not (CITYSCAPES_ROOT / "leftImg8bit").is_dir():
    print(f"skipped: no Cityscapes at {CITYSCAPES_ROOT} (see data/README.md)")
elif cs_checkpoint is None:
    print(f"skipped: no Cityscapes checkpoint in {[str(p) for p in CITYSCAPES_CHECKPOINTS]}")
else:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cs_model, cs_cfg = dgcn.load_for_inference(
        cs_checkpoint, overrides=[f"data.root={CITYSCAPES_ROOT}", "data.val_limit=0"]
    )
    cs_val = datasets.build_dataset(cs_cfg.data, "val", train=False)
    start = time.perf_counter()
    cs_matrix = evaluation.evaluate(
        cs_model.to(device),
        DataLoader(cs_val, batch_size=1, num_workers=4),
        dgcn.EvalConfig(mode="slide"),  # the authors' protocol: tile 832, overlap 1/3, no flip
        device=device,
    )
    print(f"{cs_checkpoint}: {len(cs_val)} images in {time.perf_counter() - start:.0f} s")
    print(evaluation.metrics.format_table(cs_matrix.summary()))

# %% [markdown]
# ## Summary
#
# - Whole image, sliding window and multi-scale + flip are averages of logits over windows and
#   views; the package matches the formulas written out by hand, and a tile as large as the
#   image is the whole image. The authors' released evaluation slides 832 tiles with 1/3
#   overlap, single scale, no flip: 8 windows per Cityscapes frame.
# - On the 20 MiniCity images of smoke mode the committed model (authors' head) scores
#   39.9 % mIoU whole, 36.7 % by 128-pixel tiles (each sees half the image) and 41.6 % with
#   multi-scale + flip, at ten forward passes per image.
# - One confusion matrix over the split gives the scores; per-class IoU, the worst images and
#   the row-normalised confusion matrix show where the model fails: four small classes
#   (traffic light, rider, motorcycle, bicycle) at 0 %, sidewalk at 48.2 % against road 90.4 %.
# - Node grids depend on the backbone: at $d = 8$ torchvision's ResNet-101 gives 13 x 13 nodes
#   on an 832 crop and 16 x 32 on a full frame, the authors' deep-stem ResNet-101 14 x 14 and
#   17 x 33 (measured on `meta` tensors).
# - The inspector computes predictions, errors, $A_S$ and $H_F$ once and draws any state with
#   a pure `render`; e.g. the paper head's sidewalk IoU on image 0 is 61.9 % (1761 / 2846 px),
#   and the node of a pixel on a train weighs the train's own nodes most (its row of $A_S$
#   averages 0.62 over the train's pixels, -1.10 over the rest of the image).

# %% [markdown]
# ## Check your understanding
#
# **Q1.** A sliding window whose tile is at least as large as the image gives exactly the
# whole-image prediction. Why, and why do 128-pixel tiles on a 128 x 256 MiniCity image lower
# this model's mIoU?
#
# <details><summary>Answer</summary>
#
# With $t \ge L$ on both axes there is one window, the image itself, so the average over
# windows is one forward pass on the whole image. A 128-pixel tile sees half of the image:
# the graphs gather context only inside the tile, and pixels near a tile's border see its
# zero padding instead of their neighbours. Here the mIoU drops from 39.9 % to 36.7 %.
#
# </details>
#
# **Q2.** Why is the split's mIoU read from one confusion matrix summed over all images,
# not from the mean of the per-image mIoUs of "the worst images" table?
#
# <details><summary>Answer</summary>
#
# The benchmark's IoU counts every pixel of the split once, so a large class weighs by its
# pixels and a class missing from an image changes nothing there. A per-image mIoU averages
# over the classes of that image only, so a few pixels of a rare class weigh as much as the
# road. The two numbers differ, and only the first is comparable to the paper's.
#
# </details>
#
# **Q3.** The authors' evaluation averages the windows' logits; `eval.average: probs`
# averages their softmaxes. Can the two give different predictions?
#
# <details><summary>Answer</summary>
#
# Yes, where several windows or views cover a pixel: the softmax is not linear, so the
# argmax of a mean of logits need not be the argmax of the mean of the probabilities (a
# single very confident view dominates the logits' mean more). Where one window covers a
# pixel both give the same class.
#
# </details>
#
# **Q4.** Why do Sec. 6 and the inspector draw $A_S$ from the paper-equation head and not
# from the authors' head that Sec. 3 evaluates?
#
# <details><summary>Answer</summary>
#
# The authors' coordinate branch never forms a node-by-node matrix: its softmax matrix is
# channel by channel, $C/2 \times C/2$ (`docs/reference/official_dgcnet.md`). Only the paper's
# `CoordinateGCN` has $A_S = \delta(V_S)\Psi(V_S)^\top$ with one row per node.
#
# </details>
#
# **Q5.** The row of $A_S$ in the inspector has negative entries. Can you read it as "the
# probability that this node attends to node $j$"?
#
# <details><summary>Answer</summary>
#
# No. $A_S$ is not normalised (no softmax): its entries are signed dot products of
# $\delta(v_i)$ and $\Psi(v_j)$, and the reprojection's BN sets the scale of what they
# gather. Only relative sizes within a row say which nodes contribute more; a negative entry
# subtracts node $j$'s message.
#
# </details>

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** How many forward passes does one Cityscapes frame (1024 x 2048) cost with
# the authors' single-scale sliding evaluation (tile 832, overlap 1/3), and with multi-scale +
# flip at the package's default scales, each scale slid with the same tile?
#
# <details><summary>Worked answer</summary>
#
# The stride is $\lceil 832 \cdot 2/3 \rceil = 555$ and an axis of length $L > 832$ needs
# $\lceil (L - 832) / 555 \rceil + 1$ windows (one when $L \le 832$). At scale 1: 2 x 4 = 8.
# At 0.75 (768 x 1536): 1 x 3 = 3; 1.25 (1280 x 2560): 2 x 5 = 10; 1.5 (1536 x 3072):
# 3 x 6 = 18; 1.75 (1792 x 3584): 3 x 6 = 18. In all 57 windows, twice with the flip:
#
# ```python
# sizes = [(round(1024 * s), round(2048 * s)) for s in dgcn.EvalConfig().scales]
# 2 * sum(len(evaluation.sliding_windows(z, tile=832, overlap=1 / 3)) for z in sizes)
# ```
#
# 114 forward passes against 8, 14.25 times the authors' evaluation.
#
# </details>
#
# **Exercise 2.** Check the IoU the inspector reports for the first static state (image 0,
# sidewalk highlighted) by counting pixels yourself from `inspection.preds` and `masks`.
#
# <details><summary>Worked answer</summary>
#
# Only scored pixels count (ground truth $\ne 255$, as in the confusion matrix):
#
# ```python
# gt, pred = masks[0], torch.from_numpy(inspection.preds[0])
# scored = gt != 255
# inter = ((gt == sidewalk) & (pred == sidewalk) & scored).sum()
# union = (((gt == sidewalk) | (pred == sidewalk)) & scored).sum()
# ```
#
# In smoke mode: 1761 / 2846 = 61.9 %, the figure's title.
#
# </details>
#
# **Exercise 3.** Recompute, from the paper head's weights, the row of $A_S$ that the first
# static state draws, and find its node index by hand from the pixel (96, 47).
#
# <details><summary>Worked answer</summary>
#
# The node: the feature map is 16 x 32 for 128 x 256 pixels, and `align_corners=True` puts
# pixel $y$ at feature row $\operatorname{round}(y \cdot 15 / 127) = \operatorname{round}(11.34)
# = 11$ and $x$ at column $\operatorname{round}(47 \cdot 31 / 255) = \operatorname{round}(5.71)
# = 6$; average pooling with $d = 2$ puts it in node $(11 // 2, 6 // 2) = (5, 3)$, flat index
# $5 \cdot 16 + 3 = 83$. The row: pool the captured $X$ into $V_S$, apply $\delta$ and $\Psi$
# (1x1 convolutions, i.e. matrices with a bias) and take dot products:
#
# ```python
# graph, x = viz.graphs.capture_graph_input(inspect_model, images[:1])
# v = F.avg_pool2d(x, 2, 2, ceil_mode=True)[0].flatten(1).T  # [128, 128]: nodes x channels
# c = graph.coordinate
# delta = v @ c.query.weight[:, :, 0, 0].T + c.query.bias
# psi = v @ c.key.weight[:, :, 0, 0].T + c.key.bias
# row = psi @ delta[83]  # equals inspection.affinity[0, 83]
# ```
#
# </details>
#
# **Exercise 4.** The inspector stores every image's whole $A_S$. How many bytes (float32)
# would that take for one Cityscapes frame with `dgcnet_paper_r101` at $d = 8$, and at
# $d = 1$ (one node per stride-8 position, a non-local block)?
#
# <details><summary>Worked answer</summary>
#
# The table in Sec. 6 gives 16 x 32 = 512 nodes at $d = 8$: $512^2 \cdot 4$ B = 1,048,576 B
# = 1 MiB. At $d = 1$ there are 128 x 256 = 32,768 nodes: $32768^2 \cdot 4$ B = 4 GiB per
# image. This is why the package never forms $A_S$ in the forward pass (it evaluates
# $\delta(V_S)(\Psi(V_S)^\top \nu(V_S))$, notebook 02), and why the inspector is practical on
# node grids, not on pixels. The 20 MiniCity images here take $20 \cdot 128^2 \cdot 4$ B =
# 1,310,720 B.
#
# </details>

# %%
# The numbers above, recomputed. Exercise 1: forward passes per Cityscapes frame.
sizes = [(round(1024 * s), round(2048 * s)) for s in dgcn.EvalConfig().scales]
per_scale = [len(evaluation.sliding_windows(z, tile=832, overlap=1 / 3)) for z in sizes]
assert per_scale == [3, 8, 10, 18, 18] and 2 * sum(per_scale) == 114
assert 2 * sum(per_scale) / per_scale[1] == 14.25

# Exercise 2: the sidewalk IoU of image 0, counted by hand, equals what the inspector reports
gt, pred = masks[0], torch.from_numpy(inspection.preds[0])
scored = gt != 255
inter = int(((gt == sidewalk) & (pred == sidewalk) & scored).sum())
union = int((((gt == sidewalk) | (pred == sidewalk)) & scored).sum())
reported = viz.inspector.describe(inspection, InspectorState(image=0, highlight=sidewalk))
assert (reported["intersection"], reported["union"]) == (inter, union)

# Exercise 3: one row of A_S by hand, and its node
graph3, x3 = viz.graphs.capture_graph_input(inspect_model, images[:1])
c3 = graph3.coordinate
v3 = F.avg_pool2d(x3, c3.downsample_rate, c3.downsample_rate, ceil_mode=True)[0]
v3 = v3.flatten(1).T  # [nodes, channels]
delta = v3 @ c3.query.weight[:, :, 0, 0].T + c3.query.bias
psi = v3 @ c3.key.weight[:, :, 0, 0].T + c3.key.bias
node3 = int(inspection.pixel_node[96, 47])
assert (round(96 * 15 / 127), round(47 * 31 / 255)) == (11, 6) and node3 == 5 * 16 + 3 == 83
torch.testing.assert_close(
    torch.from_numpy(inspection.affinity[0, node3]),
    (psi @ delta[node3]).detach(),
    rtol=1e-4,
    atol=1e-3,
)

# Exercise 4: bytes of A_S (float32)
full_frame = grids[1]  # dgcnet_paper_r101 on 1024 x 2048
assert (full_frame["model (backbone)"], full_frame["input"]) == ("dgcnet_paper_r101", "1024 x 2048")
assert full_frame["node grid, d = 8"] == "16 x 32" and (16 * 32) ** 2 * 4 == 1_048_576 == 2**20
assert (128 * 256) ** 2 * 4 == 4 * 2**30
assert 20 * 128**2 * 4 == 1_310_720

# the smoke-mode numbers quoted in the Summary and the answers (the default model, 20 images)
if SMOKE and not USE_NOTEBOOK_06 and len(images) == 20:
    assert (inter, union) == (1761, 2846) and round(100 * inter / union, 1) == 61.9
    assert pixel == (96, 47) and index == 0
    measured = table["mIoU %"].round(1).tolist()
    assert all(abs(a - b) < 0.15 for a, b in zip(measured, [39.9, 36.7, 41.6], strict=True))
    per_class = {n: 100 * iou for n, iou in summary["per_class"].items() if iou is not None}
    assert abs(per_class["sidewalk"] - 48.2) < 0.15 and abs(per_class["road"] - 90.4) < 0.15
    assert all(per_class[n] == 0 for n in ("traffic light", "rider", "motorcycle", "bicycle"))
    train_state = STATES[1]  # the train pixel of the static figure
    assert datasets.CLASS_NAMES[train_state.highlight] == "train"
    row = inspection.affinity[train_state.image, inspection.pixel_node[train_state.pixel]]
    heat = row[inspection.pixel_node]  # each pixel: the weight of its node
    on_train = masks[train_state.image].numpy() == train_state.highlight
    assert round(float(heat[on_train].mean()), 2) == 0.62
    assert round(float(heat[~on_train].mean()), 2) == -1.10
print("all numeric answers check out")

# %% [markdown]
# ## References
#
# - Zhang et al., *Dual Graph Convolutional Network for Semantic Segmentation*, BMVC 2019,
#   arXiv 1909.06121: the coordinate space ($A_S = \delta(V_S)\Psi(V_S)^\top$, Sec. 3.2 as the
#   package's docstrings cite it), the feature space ($H_F = \theta(X)$, Sec. 3.3), the
#   Cityscapes experiments. Section numbers and the multi-scale setting of the best row are
#   unverified here (the repository holds a summary of the paper, not its text); check
#   arXiv 1909.06121. The paper's numbers quoted here: paper, as summarised;
#   `docs/reference/paper_results.md` and `experiments/paper_results.yaml`.
# - The authors' released code, `lxtGH/GALD-DGCNet`: the network and the test-time averaging
#   (sliding window 832, 1/3 overlap, single scale, no flip) as described in
#   `docs/reference/official_dgcnet.md`.
# - Package: `dgcn/evaluation/prediction.py`, `dgcn/evaluation/loop.py`,
#   `dgcn/evaluation/metrics.py`, `dgcn/viz/graphs.py`, `dgcn/viz/inspector.py`;
#   the committed models: `experiments/checkpoints/README.md`,
#   `experiments/configs/minicity-ablation.yaml`, `dgcn/training/frozen.py`.
# - Cordts et al., *The Cityscapes Dataset for Semantic Urban Scene Understanding*, CVPR 2016
#   (IoU over the whole split, 19 classes).
# - PyTorch:
# [`torch.nn.functional.interpolate`](https://pytorch.org/docs/stable/generated/torch.nn.functional.interpolate.html),
#   the [`meta` device](https://pytorch.org/docs/stable/meta.html); ipywidgets:
#   [widget list](https://ipywidgets.readthedocs.io/en/stable/examples/Widget%20List.html).
