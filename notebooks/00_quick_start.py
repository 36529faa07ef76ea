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
# # 00 · Quick start
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/00_quick_start.ipynb)
#
# This book teaches the Dual Graph Convolutional Network (DGCNet; Zhang, Li, Arnab, Yang, Tong,
# Torr, BMVC 2019) for semantic segmentation and reproduces its Cityscapes ablation. DGCNet adds
# two graph convolutions to a dilated FCN: one over a coarse grid of *positions*
# (coordinate space) and one over a handful of learned *feature clusters* (feature space), so
# every pixel can draw on evidence from the whole image. On Cityscapes val with a ResNet-101
# the paper reports 80.5 % mIoU for DGCNet against 75.2 % for the dilated FCN without the graphs
# (paper, as summarised; `docs/reference/paper_results.md`, which lists every reference number
# of the book with its source). This first notebook checks the
# environment, tours **MiniCity** (the synthetic city that lets everything in the book run on a
# laptop), pushes one image through a model, counts the parameters and FLOPs of the authors'
# network, and ends with a map of the book and the one card of its notation.
#
# You will:
#
# - check the versions of PyTorch and torchvision, the device and whether smoke mode is on;
# - look at MiniCity images and labels, their class frequencies, and the three groups of
#   classes that are *deliberately* ambiguous without long-range context;
# - run a small DGCNet on one image and read the shapes of what comes out, and see how large
#   the two graphs are for each backbone and image size;
# - build the authors' ResNet-101 DGCNet on PyTorch's `meta` device (no memory allocated) and
#   confirm its 72,506,598 parameters; read a table of parameters and FLOPs per block;
# - see which notebook covers what, and the card of symbols and sizes every notebook uses.
#
# | mode | what runs | time |
# |---|---|---|
# | CPU smoke (`DGCN_SMOKE=1`) | statistics of 100 images, one micro forward, meta counts | ~15 s |
# | GPU full | the same on all 200 training images | not measured |
#
# (Times for 2 CPU cores; nothing in this notebook needs a GPU.)

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
# Every constant that costs time, set once from `SMOKE`. Nothing in this notebook is expensive;
# in smoke mode the class statistics read half of the training split. The `%matplotlib inline`
# line makes the `Figure` objects returned by `dgcn.viz` render in the notebook.

# %%
# ruff: noqa: E402, B018, E501 (imports where first needed; a cell's last expression is shown;
# the rows of the notation card in Section 6 are longer than a line)
# %matplotlib inline
MINICITY = "data/minicity"
STAT_IMAGES = 100 if SMOKE else 200  # training images read for the class statistics
PREVIEW_IMAGES = 3  # rows of the preview grid
FLOP_SIZE = (1, 3, 1024, 2048)  # one full Cityscapes frame, counted on the meta device
PAPER_CHECKPOINT = "experiments/checkpoints/minicity-dgcnet-paper.pt"  # trained, committed
OFFICIAL_CHECKPOINT = "experiments/checkpoints/minicity-dgcnet-official.pt"

# %% [markdown]
# ## 1. The environment
#
# The package `dgcn` needs PyTorch and torchvision only; matplotlib and pandas draw the figures
# and tables of the book. Every notebook runs on a CPU in *smoke mode* (set by `DGCN_SMOKE=1`
# or `CI=1`): MiniCity, small models, a few iterations. Without smoke mode the notebooks use
# the full settings, which for training means a GPU (notebook 06).

# %%
import platform

import torch
import torchvision

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(f"python       {platform.python_version()}")
print(f"torch        {torch.__version__}")
print(f"torchvision  {torchvision.__version__}")
print(f"dgcn         {dgcn.__version__}")
if device.type == "cuda":
    print(f"device       {torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})")
else:
    print(f"device       cpu ({torch.get_num_threads()} threads)")
print(f"smoke mode   {SMOKE}")
print(f"Cityscapes   {'found' if Path('data/cityscapes/leftImg8bit').is_dir() else 'not found'}")

# %% [markdown]
# ## 2. MiniCity: a synthetic city in the Cityscapes layout
#
# Cityscapes (5,000 finely annotated 1024 x 2048 street scenes, 19 evaluated classes) needs a
# registration and 11 GB of downloads. MiniCity is drawn by `dgcn.datasets.minicity` in a few
# seconds: pinhole views of a straight street with the Cityscapes classes, written to disk
# **exactly** like Cityscapes (`leftImg8bit/`, `gtFine/..._labelIds.png` with the real label
# ids), so the same loader reads both. The default is 200 training and 50 validation images of
# 128 x 256 pixels; the first call generates it (about 4 s), later calls reuse it.

# %%
root = datasets.ensure_minicity(MINICITY)
train_pairs = datasets.scan_split(root, "train")
val_pairs = datasets.scan_split(root, "val")
print(f"{root}: {len(train_pairs)} training and {len(val_pairs)} validation images")
print("first image:", train_pairs[0][0].relative_to(root))
print("its label:  ", train_pairs[0][1].relative_to(root))

# %% [markdown]
# The loader maps the 34 Cityscapes label ids to the 19 *train ids* (0 = road ... 18 = bicycle,
# 255 = ignored) and normalises the image with the ImageNet mean and standard deviation.
# `viz.denormalize` turns an image back into pixels and `viz.colorize` paints train ids in the
# Cityscapes colours.

# %%
train_set = datasets.Cityscapes(root, "train")  # no transform: ImageNet normalisation only
image, mask = train_set[0]
print("image:", tuple(image.shape), image.dtype, " mask:", tuple(mask.shape), mask.dtype)
print("train ids in this mask:", sorted(mask.unique().tolist()))


def preview(indices, titles=None, dataset=train_set):
    """Image | colour label, one row per index (small glue for this notebook's figures)."""
    fig = viz.new_figure((5.4, 1.45 * len(indices)), dpi=70)
    axes = fig.subplots(len(indices), 2, squeeze=False)
    for k, (row, index) in enumerate(zip(axes, indices, strict=True)):
        picture, target = dataset[index]
        name = dataset.image_path(index).name.replace("_leftImg8bit.png", "")
        row[0].imshow(viz.denormalize(picture))
        row[0].set_title(name if titles is None else f"{titles[k]}: {name}", fontsize=8)
        row[1].imshow(viz.colorize(target), interpolation="nearest")
        row[1].set_title("label (train ids)", fontsize=8)
        for ax in row:
            ax.set_axis_off()
    return fig


preview(range(PREVIEW_IMAGES))

# %% [markdown]
# ### Class frequencies
#
# Street scenes are dominated by a few classes: road and building cover most pixels, while
# poles, signs, riders and bicycles are thin or rare. The table counts, over the training
# images read, the share of labelled pixels of every class and the number of images in which it
# appears. Rare classes are where segmentation models lose most of their mean IoU. The bars
# of the plot below carry the Cityscapes colour of each class, so it doubles as the legend of
# the colour labels.

# %%
import numpy as np
import pandas as pd

pixels = np.zeros(256, dtype=np.int64)
images_with = np.zeros(256, dtype=np.int64)
presence = []  # the set of train ids of every image read
class_pixels = []  # and its pixels per class
for _, label_path in train_pairs[:STAT_IMAGES]:
    ids = datasets.label_ids_to_train_ids(datasets.read_label(label_path).numpy())
    counts = np.bincount(ids.ravel(), minlength=256)
    pixels += counts
    images_with += counts > 0
    presence.append(set(np.flatnonzero(counts[: datasets.NUM_CLASSES]).tolist()))
    class_pixels.append(counts[: datasets.NUM_CLASSES])

labelled = pixels[: datasets.NUM_CLASSES].sum()
frequencies = pd.DataFrame(
    {
        "class": datasets.CLASS_NAMES,
        "pixels %": 100 * pixels[: datasets.NUM_CLASSES] / labelled,
        "images": images_with[: datasets.NUM_CLASSES],
    }
)
print(f"{STAT_IMAGES} images, {100 * pixels[255] / pixels.sum():.1f} % of the pixels ignored")
frequencies.round(2).set_index("class")

# %%
fig = viz.new_figure((7.0, 2.6))
ax = fig.add_subplot()
ax.bar(
    frequencies["class"],
    frequencies["pixels %"],
    color=datasets.PALETTE / 255,
    edgecolor="black",
    lw=0.4,
)
ax.set_yscale("log")
ax.set_ylabel("share of labelled pixels (%)")
ax.tick_params(axis="x", rotation=90, labelsize=8)
ax.set_title(f"MiniCity class frequencies ({STAT_IMAGES} training images)", fontsize=10)
fig

# %% [markdown]
# ### Three deliberate ambiguities
#
# MiniCity is built so that *context matters*: three groups of classes share their local
# appearance exactly and differ only in where they are or how large they are. A network that
# sees a small window cannot separate them; one that reasons over the whole image can. This is
# the kind of long-range reasoning the graph modules of DGCNet are meant to provide.
#
# 1. **road vs sidewalk**: one asphalt material (same colour, grain and blotches). The sidewalk
#    is the strip along the facades; the road is the region between the two sidewalks.
# 2. **truck vs bus vs train**: one body (the same 3.2 m height, windows, wheels). Only the
#    length tells them apart: a truck is 5.5-8 m, a bus 10.5-13.5 m, a train 80-140 % of the
#    width of its lane in view. Since version 2 of the generator (the default; `minicity.json`
#    records the version) they are mixed **per object**: every image with a cross street holds
#    two different big-vehicle classes, one on each of its two lanes (in 50 % of these images a
#    train on the far lane and a truck or a bus on the near one, otherwise a truck and a bus),
#    and in 40 % of the lanes (where it fits) a second truck or bus follows the first.
# 3. **building vs wall**: walls use the facade texture of the ground floor. A building is tall
#    and has windows higher up; a wall is a low strip with hedges and trees behind it.
#
# **Why a vector for the whole image no longer suffices.** A summary of the image (global
# average pooling, or "a train and a truck are in this image") says which classes are present,
# not which object is which. In version 1 a train never stood beside a truck or a bus, so "is
# there a train in this image" settled every big vehicle of the image; in version 2 it settles
# none. Nor does an object's length in pixels alone: the cross street (in 85 % of the images)
# lies 16-40 m away and its two lanes at different depths, so the same length in pixels can be
# a near truck in one image and a far bus in another. Its length against its own height (3.2 m
# for all three) does, and that needs the object's whole extent. Road vs sidewalk and building
# vs wall were already decided per region in version 1 and are unchanged. The next cell prints
# these numbers from the constants the generator draws with (`datasets.minicity.traffic` and
# `datasets.minicity.scene`).

# %%
# NBVAL_CHECK_OUTPUT
import json

marker = json.loads((root / "minicity.json").read_text())  # seed, size and generator version
rules, street = datasets.minicity.traffic, datasets.minicity.scene  # the generator's numbers
span, share = "{0:g}-{1:g}".format, "{:.0f} %".format  # 5.5-8, 85 %
truck_m, bus_m = span(*rules.TRUCK_LENGTH), span(*rules.BUS_LENGTH)
print(f"{root}: generator version {marker['version']}, seed {marker['seed']}")
print(f"big vehicles {rules.BIG_HEIGHT:g} m high; a truck {truck_m} m long, a bus {bus_m} m,")
print(f"  a train {span(*np.multiply(rules.TRAIN_SPAN, 100))} % of the width of its lane in view")
print(f"a cross street in {share(100 * street.CROSSING_SHARE)} of the images,", end=" ")
print(f"{span(*street.CROSS_STREET_DEPTH)} m away")
print(f"version 2: a train on the far lane in {share(100 * rules.TRAIN_SHARE)} of those images,")
print(f"  a second truck or bus in {share(100 * rules.SECOND_SHARE)} of the lanes (where it fits)")

# %% [markdown]
# **Version 1 stays reproducible**, byte for byte: `dgcn make-minicity --generator-version 1`,
# `data.minicity_version: 1` in a config, or `datasets.generate_scene(rng, version=1)` in
# Python; the first edition's tables are in `experiments/results/minicity-v1/`. Version 2 draws
# everything else from the same random stream as version 1 up to the crossing traffic, so image
# $i$ of version 1 is the same street with other traffic. The table counts which big-vehicle
# classes the label of each training image read holds (any pixel), in the files (version 2) and
# in version 1 rebuilt in memory from the same seeds.

# %%
ROAD, SIDEWALK, BUILDING, WALL, TRUCK, BUS, TRAIN = 0, 1, 2, 3, 14, 15, 16
BIG = {TRUCK: "truck", BUS: "bus", TRAIN: "train"}


def big_vehicles(present):
    """The big-vehicle classes among a set of train ids, as 'truck + train' (or 'none')."""
    return " + ".join(name for k, name in BIG.items() if k in present) or "none"


def drawn(path, version):
    """(RGB, train ids, big vehicles) of a training file's scene, drawn again with a version."""
    index, vehicles = int(path.name.split("_")[1]), []  # the file stem is city_index_frame
    rng = np.random.default_rng([marker["seed"], 0, index])  # split 0: train
    picture, label_ids = datasets.generate_scene(
        rng, marker["height"], marker["width"], version=version, vehicles=vehicles
    )
    return picture, datasets.label_ids_to_train_ids(label_ids), vehicles


# %%
v1_present = [set(np.unique(drawn(path, 1)[1]).tolist()) for path, _ in train_pairs[:STAT_IMAGES]]
assert not any({TRAIN, TRUCK} <= p or {TRAIN, BUS} <= p for p in v1_present)  # version 1's rule
columns = {"version 1 (rebuilt)": v1_present, f"version {marker['version']} (files)": presence}
mix = pd.DataFrame(
    {
        name: pd.Series([big_vehicles(p) for p in sets]).value_counts()
        for name, sets in columns.items()
    }
)
order = ["none", "truck", "bus", "train", "truck + bus", "truck + train", "bus + train"]
mix = mix.reindex([r for r in [*order, "truck + bus + train"] if r in mix.index]).fillna(0)
mix.astype(int).rename_axis(f"big vehicles ({STAT_IMAGES} training images)")

# %% [markdown]
# In version 1 no image holds a train with a truck or a bus (the cell asserts it); in version
# 2 most images hold two classes, sometimes all three (a second vehicle behind the first); its
# images with no big vehicle are those without a cross street, and in the few with one class
# only, the vehicle on the near lane hides the one behind it.
#
# Below, the first training images where a truck and a bus, a train and a truck, and a train
# and a bus stand side by side (each of the two classes covers at least 1,000 pixels of the
# label and no third big-vehicle class is there), and one with a wall beside a building. Each
# is drawn again by the generator, which records its big vehicles
# (`generate_scene(..., vehicles=[])`; the cell checks it gives the file's label). The figure
# marks what the list above is about: a **box** around each truck (orange), bus (green) and
# train (purple), its whole side even where a car or a pole hides part of it, tagged with its
# lane and its length in pixels and in heights (none for a vehicle cut by the border); on the
# last image, **outlines** of the road, sidewalks, walls and buildings, tagged with what tells
# each from its look-alike. Inside the white and yellow outlines the same asphalt, inside every
# box the same body: what differs is where a region lies, and a vehicle's length against its
# height. (In the label's Cityscapes colours a bus and a train are two close blue-greens.)

# %%
MIN_PIXELS = 1000
groups = {
    "truck and bus": (TRUCK, BUS),
    "train behind a truck": (TRAIN, TRUCK),
    "train behind a bus": (TRAIN, BUS),
    "wall and building": (WALL, BUILDING),
}


def stands(pixels, wanted):
    """Every wanted class covers MIN_PIXELS, and the big vehicles are exactly the wanted ones."""
    vehicles = {k for k in BIG if pixels[k] > 0}
    exact = vehicles == set(wanted) if set(wanted) <= set(BIG) else True
    return exact and all(pixels[k] >= MIN_PIXELS for k in wanted)


chosen = {}
for title, wanted in groups.items():
    index = next(i for i, px in enumerate(class_pixels) if stands(px, wanted) and i not in chosen)
    chosen[index] = title
print(f"at least {MIN_PIXELS:,} pixels of each class:", {t: i for i, t in chosen.items()})

# %%
REGIONS = {  # train id: (tag, outline colour)
    ROAD: ("road: between the sidewalks", (255, 255, 255)),
    SIDEWALK: ("sidewalk: along the facades", (250, 220, 0)),
    BUILDING: ("building: tall, windows higher up", (0, 200, 230)),
    WALL: ("wall: low, hedges behind", (230, 30, 60)),
}


def marked(path, title, version=2, outlines=False):
    """A row of the figure: the scene drawn again, its vehicles boxed or its regions outlined."""
    picture, target, vehicles = drawn(path, version)
    if outlines:  # the regions of items 1 and 3
        tags, colours = ({k: v[i] for k, v in REGIONS.items()} for i in (0, 1))
        marks = viz.regions.class_outlines(target, tags, colours)
    else:
        marks = viz.regions.vehicle_marks(vehicles, target.shape[1])
    name = path.name.replace("_leftImg8bit.png", "")
    return f"{title}: {name}", picture, target, marks


for index in chosen:  # the generator draws again what the files hold
    assert np.array_equal(drawn(train_pairs[index][0], 2)[1], train_set[index][1].numpy())
rows = [marked(train_pairs[i][0], t, outlines="wall" in t) for i, t in chosen.items()]
viz.regions.marked_scenes(rows)

# %% [markdown]
# The table measures, from their boxes in pixels, every big vehicle wholly inside one of the
# training images read: the lengths in pixels of trucks and buses overlap (a near truck is as
# long as a far bus), their lengths against their heights do not (the cell asserts both).

# %%
vehicles = [v for path, _ in train_pairs[:STAT_IMAGES] for v in drawn(path, 2)[2]]
inside = [v for v in vehicles if v.box[0] >= 0 and v.box[2] <= marker["width"]]
left, top, right, bottom = np.array([v.box for v in inside]).T
lengths = pd.DataFrame({"class": [v.name for v in inside], "length (px)": right - left})
lengths["length / height"] = (right - left) / (bottom - top)
extent = lengths.groupby("class").agg(["count", "min", "max"]).round(1)
truck, bus = extent.loc["truck"], extent.loc["bus"]
assert truck["length (px)", "max"] > bus["length (px)", "min"]  # pixels alone: they overlap
assert truck["length / height", "max"] < bus["length / height", "min"]  # against the height: apart
extent.drop(columns=[("length / height", "count")])

# %% [markdown]
# The image with a train behind a truck, as the file holds it (version 2) and as version 1
# draws the same street from the same seed (the figure's cell checked that the generator gives
# the file's label, so the rebuild reads the right random stream).

# %%
example = list(chosen)[1]  # the train behind a truck
path, v1_label = train_pairs[example][0], drawn(train_pairs[example][0], 1)[1]
print(f"version 2 {big_vehicles(presence[example])}, version 1 {big_vehicles(np.unique(v1_label))}")
rows = [marked(path, "version 2 (the file)"), marked(path, "version 1, same seed", version=1)]
viz.regions.marked_scenes(rows)

# %% [markdown]
# ## 3. A model on one image
#
# `models.build_model(name)` builds a named preset (`models.PRESETS` lists them). The full
# models use a ResNet-101; the CPU presets use a narrow ResNet with one block per stage
# (`*_micro`) or a ResNet-18 (`*_r18`). Every network returns a dictionary in torchvision's
# convention: `"out"`, the logits upsampled to the input size, and in training mode `"aux"`,
# the logits of an auxiliary head on layer3 that only helps training.
#
# The weights here are **random**: the prediction is noise. The figure puts it above the
# prediction of a *trained* DGCNet the repository commits
# (`experiments/checkpoints/minicity-dgcnet-paper.pt`: the same kind of micro network, its
# paper-equation head with both graphs trained for 1,000 iterations on the features of a frozen
# backbone, on MiniCity version 2; notebook 08 says how it was made). `dgcn.committed_model`
# loads it, as every notebook does; were the file missing, it would first train it with the
# command that made it (about a minute on a CPU, by the package's docstring). Notebook 06
# trains models; notebook 07 evaluates trained ones. The image is the first validation image
# whose label holds two big-vehicle classes, so the figure also shows how far the trained
# head gets with the ambiguity of Section 2.

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
micro = models.build_model("dgcnet_paper_micro").eval()
print(f"dgcnet_paper_micro: {sum(p.numel() for p in micro.parameters()):,} parameters")
for name, child in micro.named_children():
    print(
        f"  {name:9s} {type(child).__name__:15s} {sum(p.numel() for p in child.parameters()):>9,}"
    )

# %%
val_set = datasets.Cityscapes(root, "val")
EXAMPLE = next(
    i for i in range(len(val_set)) if len(set(BIG) & set(val_set[i][1].unique().tolist())) > 1
)
image, mask = val_set[EXAMPLE]
with torch.no_grad():
    features = micro.backbone(image[None])
    outputs = micro(image[None])
print("input          ", tuple(image[None].shape))
print("layer3 (aux)   ", tuple(features["aux"].shape), "  stride 8, dilated")
print("layer4 (out)   ", tuple(features["out"].shape), "  stride 8: the graph works here")
print("logits         ", tuple(outputs["out"].shape), "  upsampled to the input")
assert outputs["out"].shape == (1, datasets.NUM_CLASSES, *image.shape[-2:])

# %%
trained, trained_cfg = dgcn.committed_model("minicity-dgcnet-paper")
with torch.no_grad():
    trained_prediction = trained(image[None])["out"].argmax(1)
predictions = torch.cat([outputs["out"].argmax(1), trained_prediction])


def share(prediction, where, as_class=None):
    """% of the pixels `where` that `prediction` gives their class (or `as_class`)."""
    wanted = mask[where] if as_class is None else as_class
    return 100 * float((prediction[where] == wanted).float().mean())


name = val_set.image_path(EXAMPLE).name.replace("_leftImg8bit.png", "")
labelled_px = mask != datasets.IGNORE_INDEX
pixels_right = [share(prediction, labelled_px) for prediction in predictions]
vehicle_right = {BIG[k]: share(predictions[1], mask == k) for k in BIG if (mask == k).any()}
truck_as_bus = share(predictions[1], mask == TRUCK, BUS)
print(f"validation image {EXAMPLE}, {name}: {big_vehicles(set(mask.unique().tolist()))}")
print("pixels right: random {:.1f} %, trained {:.1f} %".format(*pixels_right))
print("trained, pixels given their class:", {k: f"{v:.1f} %" for k, v in vehicle_right.items()})
print(f"trained, truck pixels called bus: {truck_as_bus:.1f} %")
assert round(pixels_right[1], 1) == 87.4 and round(truck_as_bus, 1) == 85.5
assert {k: round(v, 1) for k, v in vehicle_right.items()} == {"truck": 0.0, "train": 84.8}
titles = ["random weights", f"trained ({trained_cfg.train.iterations:,} head iterations)"]
viz.prediction_grid(torch.cat([image[None]] * 2), torch.cat([mask[None]] * 2), predictions, titles)

# %% [markdown]
# The trained head gets 87.4 % of this image's labelled pixels right (the random network next
# to none), and 48 % of its errors (red in the last column) fall on the two big vehicles, which
# cover 14 % of the labelled pixels. It labels 84.8 % of the train's pixels train but none of
# the truck's pixels truck: 85.5 % of them it calls bus. That is Section 2's ambiguity in one
# image, and not a rare one: over the whole validation split of the ablation the truck is the
# weakest big vehicle of every row, with 19.1 % IoU for this row (both graphs, mean of 3
# seeds), 3.6 % for the head without graphs and 17.6 % with PSPNet's pyramid pooling in their
# place (`experiments/results/minicity/results.md`; notebook 08 reads that table).

# %% [markdown]
# ### How large are the graphs?
#
# The printout above is for `dgcnet_paper_micro` (a narrow ResNet, one block per stage) on a
# 128 x 256 MiniCity image: its graph module works on a map of $H \times W$ = 16 x 32 pixels
# with $D$ = 128 channels (the letters of the notation card, Section 6). How many nodes the two
# graphs have depends on the backbone, the head and the image, so the book always says which
# one it means. The coordinate graph has one node per cell of the map downsampled by $d$
# ($N' = \lceil H/d \rceil \lceil W/d \rceil$, notebook 02); the feature graph has $D_2 = D/4$
# nodes, whatever the image (notebook 03). The table counts both with the
# package's own modules: on the `meta` device for the ResNet-101 models, on a real image for
# the two MiniCity models the repository commits (`experiments/checkpoints/`, trained with
# $d = 2$ and a 64-channel head; the paper's graph sits on the 128-channel layer4, the
# authors' on the head's 64-channel reduction).


# %%
def graph_sizes(model, size, device="cpu"):
    """The graph module's input and the node counts of its two graphs for one image."""
    with torch.device(device):
        graph, entering = viz.graphs.capture_graph_input(model, torch.zeros(1, 3, *size))
        grid = tuple(graph.coordinate.downsample(entering).shape[-2:])
        nodes = graph.feature.to_nodes(entering).shape[1]
    channels, height, width = entering.shape[1:]
    return {
        "graph input D x H x W": f"{channels} x {height} x {width}",
        "coordinate nodes N'": f"{grid[0]} x {grid[1]} = {grid[0] * grid[1]}",
        "feature nodes D_2": nodes,
    }


# %%
# NBVAL_CHECK_OUTPUT
SIZES = [  # (row, preset or checkpoint, input size)
    ("micro ResNet, preset (d = 8)", "dgcnet_paper_micro", (128, 256)),
    ("micro ResNet, committed paper head", PAPER_CHECKPOINT, (128, 256)),
    ("micro ResNet, committed authors' head", OFFICIAL_CHECKPOINT, (128, 256)),
    ("torchvision ResNet-101, paper head", "dgcnet_paper_r101", (1024, 2048)),
    ("deep-stem ResNet-101, authors' head", "dgcnet_official_r101", (1024, 2048)),
    ("deep-stem ResNet-101, authors' head", "dgcnet_official_r101", (832, 832)),
]
graph_rows = {}
for label, name, size in SIZES:
    if name.endswith(".pt"):
        row = graph_sizes(dgcn.load_for_inference(name)[0], size)
    else:
        with torch.device("meta"):
            meta_model = models.build_model(name)
        row = graph_sizes(meta_model, size, device="meta")
    graph_rows[f"{label}, {size[0]}x{size[1]}"] = {"model": name.split("/")[-1], **row}
pd.DataFrame(graph_rows).T

# %% [markdown]
# ### The authors' network, without allocating it
#
# The authors' `DualSeg_res101` has about 72.5 million parameters: more than 280 MB of
# float32 weights before a single activation. PyTorch's `meta` device builds a module whose
# tensors have shapes but no storage, so we can count its parameters (and its FLOPs, next) on
# any machine in a fraction of a second. The count below matches the authors' released
# checkpoint exactly: 72,506,598, of which 25,152,787 in the head and 4,729,875 in the
# auxiliary head (the checkpoint's 738 tensors, as read for this project:
# `docs/reference/official_dgcnet.md`).

# %%
# NBVAL_CHECK_OUTPUT
with torch.device("meta"):
    official = models.build_model("dgcnet_official_r101")
parts = {
    name: sum(p.numel() for p in child.parameters()) for name, child in official.named_children()
}
total = sum(p.numel() for p in official.parameters())
assert total == 72_506_598
assert parts["head"] == 25_152_787 and parts["aux_head"] == 4_729_875
for name, count in parts.items():
    print(f"{name:9s} {count:>11,}")
print(f"{'total':9s} {total:>11,}")

# %% [markdown]
# ## 4. Parameters and FLOPs per block
#
# `dgcn.models.profile.block_table` builds a model on the `meta` device and counts the FLOPs of
# one training forward pass (auxiliary head included) with `torch.utils.flop_counter`
# (a multiply-add counts as 2 FLOPs; convolutions and matrix products only). At a full
# 1024 x 2048 Cityscapes frame the backbone dominates: dilation keeps layer3 and layer4 at
# stride 8, so their 3x3 convolutions run on 129 x 257 maps (the authors' deep-stem ResNet-101
# with its ceil-mode max-pool; torchvision's ResNet-101 of `dgcnet_paper_r101` gives
# 128 x 256). The graph module itself (`head.graph`) is about 1 % of the FLOPs: global
# reasoning is cheap once the graph is small.

# %%
# NBVAL_CHECK_OUTPUT

rows = models.profile.block_table(lambda: models.build_model("dgcnet_official_r101"), FLOP_SIZE)
table = pd.DataFrame(rows).set_index("block")
table["share of FLOPs %"] = 100 * table["gflops"] / table.loc["total", "gflops"]
print(f"dgcnet_official_r101, training forward at {FLOP_SIZE[2]}x{FLOP_SIZE[3]}")
table.round(1)

# %% [markdown]
# The same count for the micro model on a MiniCity image (128 x 256) shows why the CPU demo is
# possible: about 0.4 GFLOPs per image instead of about 4,900.

# %%
# NBVAL_CHECK_OUTPUT
rows = models.profile.block_table(
    lambda: models.build_model("dgcnet_paper_micro"), (1, 3, 128, 256)
)
pd.DataFrame(rows).set_index("block").round(3)

# %% [markdown]
# ## 5. A map of the book
#
# | notebook | what it does |
# |---|---|
# | 00 Quick start | environment, MiniCity, a model on one image, parameters and FLOPs |
# | 01 Graph formulation | pixel graphs, one GCN layer by hand, dense cost, receptive fields |
# | 02 Coordinate-space GCN | $V_S$, $A_S$, $M_S$; the $O(N)$ order, verified; node affinities |
# | 03 Feature-space GCN | feature nodes, $M_F = (I - A_F) V_F W_F$, reprojection; node maps |
# | 04 The DGCNet model | fusion $X + \tilde X_S + \tilde X_F$, the head, paper vs authors' variants |
# | 05 Cityscapes data | the dataset, its label table, augmentations of paper and code |
# | 06 Training on a GPU | presets per GPU, precision, checkpoints, resuming, many GPUs |
# | 07 Evaluation and visual inspection | mIoU, sliding and multi-scale inference, views |
# | 08 Ablations and the paper's tables | the ablation rows and the downsampling study |
# | 09 Image size, frozen BatchNorm, sliding window | why sums grow with the image; whole vs tiles |
#
# From the command line, `make demo` runs the paper's ablation in miniature on MiniCity and
# `dgcn --help` lists the commands (train, evaluate, predict, reproduce, make-minicity,
# check-data).

# %% [markdown]
# ## 6. One notation card
#
# The letters of the paper, as summarised (`docs/reference/paper_summary.md`): **every notebook
# uses them in this sense and no other** ($C$ is always the classes, $D$ the channels entering
# the graph block). Sizes are for one image; a batch adds a leading $B$. The last column is the
# authors' network on its 832 x 832 training crop (the graph-size table of Section 3 printed its
# $D$, $H \times W$, $N'$ and $D_2$). The source is `docs/reference/notation.md`, which also
# says where the authors' code names things otherwise; `tests/test_notation.py` checks that
# this copy and the source agree.
#
# | symbol | meaning | size | authors' network, 832 crop |
# |---|---|---|---|
# | $B$ | images in a batch | | 8 (the paper's batch) |
# | $H, W$ | height and width of the feature map the graphs see | | 105 x 105 |
# | $N$ | pixels of that map, $N = HW$: the nodes of the pixel graph | | 11,025 |
# | $D$ | channels of the feature $X$ that enters the graph block | | 512 |
# | $X$ | the feature, one row per pixel | $N \times D$ | 11,025 x 512 |
# | $C$ | classes predicted | | 19 (Cityscapes) |
# | $A, L, I$ | a graph's adjacency, its Laplacian, the identity | $N \times N$ for a pixel graph | |
# | $\sigma$ | the non-linearity of one graph-convolution layer $\sigma(A X W)$ | | |
# | $d$ | downsampling rate of the coordinate graph | | 8 |
# | $N'$ | coordinate nodes, $N' = \lceil H/d \rceil \lceil W/d \rceil$, about $N / d^2$ | | 14 x 14 = 196 |
# | $H_S$ | the downsampling written as a matrix (pooling or strided convolutions) | $N' \times N$ | |
# | $V_S$ | coordinate nodes, $V_S = H_S X$ | $N' \times D$ | 196 x 512 |
# | $\delta, \Psi, \nu$ | 1x1 convolutions $D \to D/2$ (query, key, value of the coordinate graph) | | 512 -> 256 |
# | $A_S$ | coordinate adjacency, $A_S = \delta(V_S) \Psi(V_S)^\top$ | $N' \times N'$ | 196 x 196 |
# | $W_S$ | coordinate graph weight | $D/2 \times D/2$ | 256 x 256 |
# | $M_S$ | coordinate messages, $M_S = A_S \nu(V_S) W_S$ | $N' \times D/2$ | 196 x 256 |
# | $\tilde X_S$ | the coordinate graph's output, back on the pixels | $N \times D$ | 11,025 x 512 |
# | $D_1$ | features of a feature-space node, $D_1 = D/2$ | | 256 |
# | $D_2$ | feature-space nodes, $D_2 = D/4$ | | 128 |
# | $\theta$ | 1x1 convolution $D \to D_1$: the features the nodes gather | | 512 -> 256 |
# | $\phi$ | 1x1 convolution $D \to D_2$: the node assignment | | 512 -> 128 |
# | $H_F$ | node assignment of every pixel, $H_F = \phi(X)$ | $N \times D_2$ | 11,025 x 128 |
# | $V_F$ | feature-space nodes, $V_F = H_F^\top \theta(X)$ | $D_2 \times D_1$ | 128 x 256 |
# | $A_F$ | feature adjacency (learned) | $D_2 \times D_2$ | 128 x 128 |
# | $W_F$ | feature graph weight (learned) | $D_1 \times D_1$ | 256 x 256 |
# | $M_F$ | feature messages, $M_F = (I - A_F) V_F W_F$ | $D_2 \times D_1$ | 128 x 256 |
# | $\Phi$ | 1x1 convolution $D_1 \to D$, back to the block's channels | | 256 -> 512 |
# | $\tilde X_F$ | the feature graph's output, $\tilde X_F = \Phi(H_F M_F)$ | $N \times D$ | 11,025 x 512 |
# | $\tilde X$ | the block's output, $\tilde X = X + \tilde X_S + \tilde X_F$ (the paper's fusion) | $N \times D$ | 11,025 x 512 |

# %% [markdown]
# ## Summary
#
# - The package `dgcn` holds everything the book uses; each notebook imports it and checks the
#   equations against it. Smoke mode (`DGCN_SMOKE=1`) makes every notebook run on a CPU.
# - MiniCity (200 training and 50 validation images of 128 x 256 in the Cityscapes layout)
#   has three groups of classes that only long-range context separates: road/sidewalk,
#   truck/bus/train, wall/building. In version 2 of its generator (the default) two
#   big-vehicle classes stand side by side in most images, so a summary of the whole image
#   cannot say which object is which; version 1, where a train never stood beside a truck or a
#   bus, is rebuilt byte for byte (`dgcn make-minicity --generator-version 1`).
# - The committed trained DGCNet gets 87.4 % of the pixels of a validation image with a truck
#   and a train right, but calls 85.5 % of the truck's pixels bus.
# - A DGCNet returns `{"out": logits}` at the input size (plus `"aux"` when training); the
#   backbone works at output stride 8, and the graph module sits on its last feature map.
# - Graph sizes depend on the model: the committed MiniCity paper head has 8 x 16 coordinate
#   nodes and 32 feature nodes; the authors' ResNet-101 network has 17 x 33 coordinate and 128
#   feature nodes on a 1024 x 2048 frame, 14 x 14 and 128 on its 832 training crop.
# - The authors' network has 72,506,598 parameters and needs about 4.9 TFLOPs for one training
#   forward pass on a 1024 x 2048 frame; its graph module is about 1 % of that.
# - One notation card (Section 6, from `docs/reference/notation.md`) gives every symbol of the
#   book with its size; $C$ is the classes, $D$ the channels entering the graph block.
# - The paper's Cityscapes numbers (80.5 % for DGCNet, 75.2 % for the FCN baseline) are quoted
#   as summarised, with their source in `docs/reference/paper_results.md`; MiniCity numbers in
#   this book show that the pipeline works and how the graphs behave, not Cityscapes accuracy.

# %% [markdown]
# ## Check your understanding
#
# **Q1.** Road and sidewalk in MiniCity are drawn with the same asphalt. What does that force a
# model to use to tell them apart, and why is that a test for DGCNet?
#
# <details><summary>Answer</summary>
#
# A small window of asphalt looks the same in both classes, so the model must use where the
# region is relative to the facades and the other sidewalk, i.e. context from far away in the
# image. Long-range context is what the two graph modules are meant to provide.
#
# </details>
#
# **Q2.** How can this notebook count the 72.5 million parameters and 4.9 TFLOPs of the authors'
# network on a laptop without allocating it?
#
# <details><summary>Answer</summary>
#
# On the `meta` device a module's tensors have shapes and dtypes but no storage. Parameter
# counts need only the shapes, and `torch.utils.flop_counter` derives the FLOPs of every
# convolution and matrix product from the shapes of its inputs, so nothing is computed.
#
# </details>
#
# **Q3.** The graph module is about 1 % of the authors' network's FLOPs. Where do most of the
# FLOPs go, and why?
#
# <details><summary>Answer</summary>
#
# Into the dilated layer3 and layer4 (about 35 % and 20 %) and the head's 3x3 convolutions
# (`reduce` and `classifier`, about 13 % and 16 %): dilation keeps these at output stride 8, so
# their 3x3 convolutions on 1024 to 2560 channels run on 129 x 257 maps. The graphs work on a
# few hundred nodes.
#
# </details>
#
# **Q4.** "The feature graph has 128 nodes." Why is that sentence incomplete, and what does the
# coordinate graph's node count depend on that the feature graph's does not?
#
# <details><summary>Answer</summary>
#
# The feature graph has $D_2 = D/4$ nodes for the $D$ channels that enter it: 128 for the
# authors' head ($D$ = 512), 512 for the paper's head on $D$ = 2048, 32 or 16 for the MiniCity
# heads. The coordinate graph's $N'$ nodes are the cells of the downsampled feature map, so
# their number also depends on the image size and on $d$ (561 on a 1024 x 2048 frame, 196 on
# an 832 crop).
#
# </details>

# %% [markdown]
# **Q5.** On version 1 of MiniCity, a head that pools the whole image into one vector where
# the graphs go gained 2.5 points of mIoU over the head without context; on version 2 it gains
# 0.1 (the committed tables, 3 seeds each; notebook 08). Why?
#
# <details><summary>Answer</summary>
#
# In version 1 a train never stood beside a truck or a bus, so one vector saying "there is a
# train in this image" told every big-vehicle pixel its class. In version 2 every image with a
# cross street holds two different classes: the vector says which classes are there, not
# which object is which, so it decides no pixel. What does decide is each object's length
# against its height, which a model has to read from the object's whole extent.
#
# </details>

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Count the parameters and FLOPs at 1024 x 2048 of `fcn_r101` (the baseline
# without a graph) and of `dgcnet_paper_r101` with `models.profile.block_table`. Which graph
# costs more FLOPs, the paper's on 2048 channels or the authors' on 512, and by what factor?
#
# <details><summary>Worked answer</summary>
#
# ```python
# fcn = models.profile.block_table(lambda: models.build_model("fcn_r101"), FLOP_SIZE)
# paper = models.profile.block_table(lambda: models.build_model("dgcnet_paper_r101"), FLOP_SIZE)
# ```
#
# `fcn_r101` has 56,677,990 parameters and 3,764.9 GFLOPs; `dgcnet_paper_r101` has 72,680,038
# and 4,089.7 GFLOPs. The paper's `head.graph` costs 324.8 GFLOPs (313.0 of them in the
# feature graph, whose projections act on all 2048 channels of every pixel), the authors' 55.3
# GFLOPs (table of Section 4): the paper's graph costs about 5.9 times more.
#
# </details>
#
# **Exercise 2.** With `graph_sizes`, find how many coordinate nodes the authors' ResNet-101
# network has on a 512 x 1024 image (half the Cityscapes resolution), and how many feature
# nodes. Compare with the 1024 x 2048 frame.
#
# <details><summary>Worked answer</summary>
#
# ```python
# with torch.device("meta"):
#     net = models.build_model("dgcnet_official_r101")
# graph_sizes(net, (512, 1024), device="meta")
# ```
#
# The graph module sees a 65 x 129 map, downsampled three times by 2 to 9 x 17 = 153
# coordinate nodes (561 on the full frame: about 3.7 times more for 4 times the pixels). The
# feature graph keeps its 128 nodes: they depend on the channels, not on the image.
#
# </details>
#
# **Exercise 3.** Run the micro model in training mode on two validation images and list the
# keys and shapes of its output. Why does the auxiliary output exist only in training?
#
# <details><summary>Worked answer</summary>
#
# ```python
# outputs = micro.train()(torch.stack([val_set[0][0], val_set[1][0]]))
# ```
#
# The keys are `out` and `aux`, both of shape (2, 19, 128, 256). The auxiliary head on layer3
# adds a second loss (weighted 0.4 in the authors' recipe) that helps the gradient reach the
# middle of the backbone during training; at test time only `out` is used, so the network
# skips it in eval mode. (Training mode also switches BatchNorm to batch statistics, so call
# `micro.eval()` again afterwards.)
#
# </details>

# %%
# The numeric answers above, checked: Exercises 1 and 2
fcn = models.profile.block_table(lambda: models.build_model("fcn_r101"), FLOP_SIZE)
paper = models.profile.block_table(lambda: models.build_model("dgcnet_paper_r101"), FLOP_SIZE)
fcn, paper = ({row["block"]: row for row in rows} for rows in (fcn, paper))
assert fcn["total"]["params"] == 56_677_990 and round(fcn["total"]["gflops"], 1) == 3764.9
assert paper["total"]["params"] == 72_680_038 and round(paper["total"]["gflops"], 1) == 4089.7
assert round(paper["head.graph"]["gflops"], 1) == 324.8
assert round(paper["head.graph.feature"]["gflops"], 1) == 313.0
authors_graph = table.loc["head.graph", "gflops"]
assert round(authors_graph, 1) == 55.3
assert round(paper["head.graph"]["gflops"] / authors_graph, 1) == 5.9

with torch.device("meta"):
    net = models.build_model("dgcnet_official_r101")
half = graph_sizes(net, (512, 1024), device="meta")
assert half == {
    "graph input D x H x W": "512 x 65 x 129",
    "coordinate nodes N'": "9 x 17 = 153",
    "feature nodes D_2": 128,
}
assert round(561 / 153, 1) == 3.7
full = graph_rows["deep-stem ResNet-101, authors' head, 1024x2048"]
crop = graph_rows["deep-stem ResNet-101, authors' head, 832x832"]
assert full["coordinate nodes N'"] == "17 x 33 = 561"
assert crop["coordinate nodes N'"] == "14 x 14 = 196"
assert full["feature nodes D_2"] == crop["feature nodes D_2"] == 128
assert crop["graph input D x H x W"] == "512 x 105 x 105"  # the card's last column
committed = graph_rows["micro ResNet, committed paper head, 128x256"]
assert committed["coordinate nodes N'"] == "8 x 16 = 128" and committed["feature nodes D_2"] == 32

# %%
# Exercise 3, Q3, Q5 and the numbers of Section 3's text, checked
with torch.no_grad():
    trained_outputs = micro.train()(torch.stack([val_set[0][0], val_set[1][0]]))
micro.eval()
shapes = {k: tuple(v.shape) for k, v in trained_outputs.items()}
assert shapes == {"out": (2, 19, 128, 256), "aux": (2, 19, 128, 256)}
share = table["share of FLOPs %"]
assert round(share["head.graph"]) == 1  # Q3 and the Summary
assert [round(share[b]) for b in ("backbone.layer3", "backbone.layer4")] == [35, 20]
assert [round(share[b]) for b in ("head.reduce", "head.classifier")] == [13, 16]
assert round(table.loc["total", "gflops"] / 1000, 1) == 4.9


def row_means(folder):
    """Each row's mIoU and per-class IoU in a committed table, in %, mean over its seeds."""
    records = dgcn.read_results(folder)
    frame = pd.DataFrame([{"row": r["row"], "miou": r["miou"], **r["per_class"]} for r in records])
    return 100 * frame.groupby("row").mean()


v1, v2 = row_means("experiments/results/minicity-v1"), row_means("experiments/results/minicity")
assert round(v1.loc["global-pool", "miou"] - v1.loc["baseline", "miou"], 1) == 2.5  # Q5
assert round(v2.loc["global-pool", "miou"] - v2.loc["baseline", "miou"], 1) == 0.1
assert [round(v2.loc[row, "truck"], 1) for row in ("both", "baseline", "ppm")] == [19.1, 3.6, 17.6]
assert (v2["truck"] < v2[["bus", "train"]].min(axis=1)).all()  # the weakest big vehicle
vehicle_px = (mask == TRUCK) | (mask == BUS) | (mask == TRAIN)  # Section 3's image
errors = labelled_px & (predictions[1] != mask)
assert round(100 * float((errors & vehicle_px).sum() / errors.sum())) == 48
assert round(100 * float(vehicle_px.sum() / labelled_px.sum())) == 14
print("every numeric answer checked")

# %% [markdown]
# ## References
#
# - L. Zhang, X. Li, A. Arnab, K. Yang, Y. Tong, P. H. S. Torr, *Dual Graph Convolutional
#   Network for Semantic Segmentation*, BMVC 2019, arXiv:1909.06121 (Sec. 3 the model, Sec. 4
#   the Cityscapes experiments; section numbers unverified here). Its numbers quoted in this
#   book are "as summarised", with their sources, in `docs/reference/paper_results.md`.
# - The authors' code: github.com/lxtGH/GALD-DGCNet (`libs/models/DualGCNNet.py`); the network
#   as described for this project is in `docs/reference/official_dgcnet.md`.
# - M. Cordts et al., *The Cityscapes Dataset for Semantic Urban Scene Understanding*, CVPR 2016.
# - PyTorch: the `meta` device and `torch.utils.flop_counter.FlopCounterMode`;
#   torchvision: `models.resnet101`, `models.segmentation.fcn.FCNHead`.
# - The committed MiniCity models: `experiments/checkpoints/README.md`.
