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
# # 05 · Cityscapes data
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/05_cityscapes_data.ipynb)
#
# DGCNet is trained and evaluated on Cityscapes: 2,975 training and 500 validation street
# scenes of 1024x2048 pixels with fine labels for 19 classes. This notebook shows what the
# data looks like on disk, how the 34 label ids of the files become the 19 train ids the
# network predicts, what the training augmentations do to an image and its mask (and checks
# that they stay aligned), how to get Cityscapes onto Colab, and how the book runs without it:
# MiniCity, a synthetic city written in exactly the same layout. When something is wrong with
# the data, the loader stops with one line that says what and where; we provoke one.
#
# You will:
#
# - read the Cityscapes folder layout and the file names the loader expects;
# - build the label table (id, train id, category, colour) and the 19-class palette;
# - apply the `official`, `paper` and `minicity` augmentation presets and verify image/mask
#   alignment, the padding values and the crop-before-resize shortcut numerically;
# - check a Cityscapes tree with `dgcn check-data` (when you have one) and generate MiniCity;
# - read the error the loader gives for a tree without `gtFine/`.
#
# | mode | where | time |
# |---|---|---|
# | smoke (`DGCN_SMOKE=1`) | 2-core CPU | 17-45 s |
# | full (with Cityscapes: `dgcn check-data` decodes all 5,000 frames) | any CPU | not measured |
#
# (Smoke times measured on this project's 2-core CPU: the low figure on a quiet machine, the
# high one while other jobs shared the cores.)

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
# Every expensive constant is set here, once. In smoke mode a Cityscapes tree, if present, is
# only listed; in full mode every file is decoded and checked.

# %%
MINICITY = "data/minicity"
CITYSCAPES = "data/cityscapes"
OUT = "runs/notebooks/05"
CROPS = 4  # random crops shown per augmentation preset
DECODE_CITYSCAPES = not SMOKE  # `dgcn check-data` decodes every frame (minutes); else list only
print(f"SMOKE={SMOKE}: {CROPS} crops per preset, decode Cityscapes: {DECODE_CITYSCAPES}")

# %%
# ruff: noqa: E402 (a notebook imports in the cell where a module is first needed)
# %matplotlib inline
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import display
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

_ = torch.manual_seed(0)
_ = datasets.ensure_minicity(MINICITY)  # generated on first use (about 4 s), then reused

# %% [markdown]
# ## 1. The layout on disk
#
# Cityscapes comes as two zip files from the Cityscapes website (after registration):
# `leftImg8bit_trainvaltest.zip` (the images, about 11 GB) and `gtFine_trainvaltest.zip` (the
# fine labels, about 250 MB). Extract both into one folder; `data/README.md` shows the tree:
#
# ```
# cityscapes/
#   leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
#   gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
# ```
#
# An image and its label share the stem `<city>_<seq>_<frame>`; `gtFine` also holds
# `_color.png`, `_instanceIds.png` and `_polygons.json` files, which semantic segmentation does
# not read. The `test` labels are withheld (evaluation on the test set goes through the
# benchmark server). MiniCity uses the same tree, with invented city names; here is ours:


# %%
# NBVAL_CHECK_OUTPUT
def describe_tree(root):
    root = Path(root)
    print(f"{root}/")
    for top in sorted(p for p in root.iterdir() if p.is_dir()):
        print(f"  {top.name}/")
        for split in sorted(p for p in top.iterdir() if p.is_dir()):
            cities = sorted(p.name for p in split.iterdir() if p.is_dir())
            files = sum(1 for _ in split.glob("*/*.png"))
            print(f"    {split.name}/  cities: {', '.join(cities)}; {files} PNGs")
    for extra in sorted(p for p in root.iterdir() if p.is_file()):
        print(f"  {extra.name}")


describe_tree(MINICITY)
image_path, label_path = datasets.scan_split(MINICITY, "train")[0]
print("first pair:", image_path.relative_to(MINICITY), "<->", label_path.relative_to(MINICITY))

# %% [markdown]
# ## 2. Labels: 34 ids in the files, 19 train ids in the network
#
# A `_labelIds.png` is an 8-bit grey image whose values are Cityscapes **label ids** (0 to 33).
# Only 19 classes are evaluated; each has a **train id** 0 to 18, and every other label
# (unlabeled, ego vehicle, parking, rail track, ...) maps to 255, which the loss and the
# metrics ignore. `dgcn.datasets.labels.LABELS` is the one table the package uses for this:

# %%
# NBVAL_CHECK_OUTPUT
table = pd.DataFrame(datasets.LABELS)
with pd.option_context("display.max_rows", 40, "display.width", 100):
    print(table.to_string(index=False))

# %%
# NBVAL_CHECK_OUTPUT
print(f"{datasets.NUM_CLASSES} train ids:")
for train_id, name in enumerate(datasets.CLASS_NAMES):
    print(f"  {train_id:>2} {name}")
assert (table.train_id != 255).sum() == 19 and datasets.IGNORE_INDEX == 255

# %% [markdown]
# The colours of the 19 train ids (the Cityscapes palette, `viz.colorize` uses it; ignored
# pixels are drawn black):

# %%
viz.legend()

# %% [markdown]
# The loader maps ids to train ids with a 256-entry lookup table before any transform, so every
# augmentation sees train ids. On the first MiniCity label:

# %%
# NBVAL_CHECK_OUTPUT
image_u8, label_ids = datasets.load_pair(image_path, label_path)
lut = datasets.labels.id_to_train_id_lut()
ids = np.unique(label_ids.numpy())
mapping = pd.DataFrame({"label id": ids, "train id": lut[ids]})
mapping["name"] = [next(lb.name for lb in datasets.LABELS if lb.id == i) for i in ids]
print(mapping.to_string(index=False))

# %%
image, mask = datasets.Cityscapes(MINICITY, "train")[0]
print(f"item: image {tuple(image.shape)} {image.dtype}, mask {tuple(mask.shape)} {mask.dtype}")
assert torch.equal(mask, torch.from_numpy(lut[label_ids.numpy()]).long())
fig = viz.new_figure((9.6, 1.6))
for ax, picture, title in zip(
    fig.subplots(1, 3),
    [viz.denormalize(image), viz.colorize(mask), viz.overlay(viz.denormalize(image), mask)],
    ["image", "train ids", "overlay"],
    strict=True,
):
    ax.imshow(picture, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
display(fig)

# %% [markdown]
# ## 3. Augmentations
#
# Training sees random crops, not whole frames. The recipe (crop, scales, flip) is the `data:`
# section of a config preset in `experiments/configs/`, and
# `dgcn.datasets.build.data_transforms` turns it into transforms. Three recipes:
#
# - `official` (`cityscapes-official`): the authors' released recipe, read from their training
#   script (`docs/reference/official_dgcnet.md`): random scale 0.7 to 2.1 in steps of 0.1, crop
#   832x832, horizontal flip;
# - `paper` (`cityscapes-paper`): the paper's text as summarised
#   (`docs/reference/paper_results.md`): crop 768x768 and flip, no scaling;
# - `minicity` (`minicity-cpu`): the book's CPU demo, crop 128x256 (a whole MiniCity image),
#   scale 0.75 to 1.5, flip.
#
# **Both Cityscapes recipes train on crops, never on whole 1024x2048 frames**: a frame is only
# the source a crop is cut from (an 832x832 crop has 33 % of a frame's pixels). Nor is "60k
# iterations" a number of the paper: the paper, as summarised, gives no iteration count. 60,000
# is the number the authors' script is *given* (`--num_steps 60000`); because it repeats its
# list of the 2,975 training images $\lceil 60{,}000 / 2{,}975 \rceil = 21$ times and iterates
# over that list once, it *runs* 62,475 iterations of 8 crops
# (`docs/reference/official_dgcnet.md`, "Training and evaluation"). The `official` preset runs
# those 62,475; the `paper` preset borrows the 60,000 and says so in its header
# (`experiments/configs/cityscapes-paper.yaml`).
#
# Every recipe ends with ImageNet normalisation and pads a crop that is smaller than the
# window (a scaled image smaller than the crop) at the bottom and right: the image with **0**
# after normalisation (the ImageNet mean colour, a neutral grey-brown) and the mask with
# **255**, so padded pixels are ignored by the loss.
#
# **Crop before resize.** Scaling a 1024x2048 frame by 2.1 makes a 2150x4301 image, of which
# an 832x832 crop keeps 7 %. `RandomScaleCrop` draws the scale and the window in the scaled
# image's coordinates, maps the window back to source pixels and resizes only that region:
# the cost is that of the output crop whatever the scale. The mask is resized with nearest
# neighbours (by `torchvision.transforms.v2` because it is a `tv_tensors.Mask`), the image
# bilinearly, through the same box, so they stay aligned.

# %%
# NBVAL_CHECK_OUTPUT
CONFIGS = {
    "official": "cityscapes-official",
    "paper": "cityscapes-paper",
    "minicity": "minicity-cpu",
}
recipes = {name: dgcn.load_config(preset).data for name, preset in CONFIGS.items()}
presets = pd.DataFrame(
    [
        {
            "preset": name,
            "crop (h, w)": tuple(data.crop_size),
            "scales": f"{min(data.scales)} .. {max(data.scales)}",
            "flip": data.flip,
            "iterations": dgcn.load_config(CONFIGS[name]).train.iterations,
            "batch": dgcn.load_config(CONFIGS[name]).train.batch_size,
        }
        for name, data in recipes.items()
    ]
)
print(presets.to_string(index=False))
assert math.ceil(60_000 / 2_975) == 21 and presets["iterations"][0] == 21 * 2_975 == 62_475

# %% [markdown]
# The `official` and `paper` presets are meant for 1024x2048 frames, so we draw one MiniCity
# scene at that size in memory (the generator places everything in metres, so any size works),
# and apply the `minicity` preset to the 128x256 MiniCity image of section 2.

# %%
scene_rgb, scene_ids = datasets.generate_scene(np.random.default_rng([0, 0, 0]), 1024, 2048)
scene = (
    tv_tensors.Image(torch.from_numpy(scene_rgb).permute(2, 0, 1).contiguous()),
    tv_tensors.Mask(torch.from_numpy(lut[scene_ids])),
)
small = (tv_tensors.Image(image_u8), tv_tensors.Mask(torch.from_numpy(lut[label_ids.numpy()])))


def crops_figure(preset, sample, seed, count=CROPS):
    """``count`` random crops of one sample by a preset: images on top, masks below."""
    torch.manual_seed(seed)
    pipeline = datasets.data_transforms(recipes[preset], train=True)
    crop_h, crop_w = recipes[preset].crop_size
    fig = viz.new_figure((1.9 * count, 2 * 1.9 * crop_h / crop_w + 0.4))
    axes = fig.subplots(2, count)
    for i in range(count):
        out_image, out_mask = pipeline(*sample)
        axes[0, i].imshow(viz.denormalize(out_image), interpolation="nearest")
        axes[1, i].imshow(viz.colorize(out_mask), interpolation="nearest")
        axes[0, i].set_title(f"crop {i + 1}", fontsize=8)
        for ax in axes[:, i]:
            ax.set_axis_off()
    fig.suptitle(f"preset {preset!r}: crop {crop_h}x{crop_w}", fontsize=9)
    return fig


crops_figure("official", scene, seed=41)  # a seed whose crops include scales 0.7 and 0.8

# %% [markdown]
# At scales 0.7 and 0.8 the frame is 717 and 819 pixels high, less than the 832 window: the
# rest is padding at the bottom, grey in the image (0 after normalisation) and black (255,
# ignored) in the mask. Large scales zoom in. The paper preset only crops and flips:

# %%
crops_figure("paper", scene, seed=0)

# %% [markdown]
# On the 128x256 MiniCity image the `minicity` preset's window is the whole image, so scales
# below 1 pad and scales above 1 zoom in:

# %%
crops_figure("minicity", small, seed=0)

# %% [markdown]
# ### Verify: image and mask stay aligned, padding is 0 and 255
#
# Paint the image with the palette colour of its own mask. Any misalignment between the two
# would show up as a pixel whose colour is not the colour of its label. With the image resized
# by nearest neighbours as well (we switch the preset's interpolation), the two must agree
# exactly on every pixel that is not padding; with the real bilinear interpolation they agree
# everywhere except at class boundaries, where the image blends two colours.

# %%
painted = (
    tv_tensors.Image(torch.from_numpy(viz.colorize(scene[1])).permute(2, 0, 1).contiguous()),
    scene[1],
)
exact = datasets.data_transforms(recipes["official"], train=True)
exact.transforms[0].interpolation = InterpolationMode.NEAREST
bilinear = datasets.data_transforms(recipes["official"], train=True)
torch.manual_seed(1)
agreement = []
for _ in range(8):
    out_image, out_mask = exact(*painted)
    labelled = out_mask != 255
    colours = torch.from_numpy(viz.denormalize(out_image))
    expected = torch.from_numpy(viz.colorize(out_mask))
    assert torch.equal(colours[labelled], expected[labelled])
    out_image, out_mask = bilinear(*painted)
    labelled = out_mask != 255
    same = (
        torch.from_numpy(viz.denormalize(out_image)) == torch.from_numpy(viz.colorize(out_mask))
    ).all(-1)
    agreement.append(float(same[labelled].float().mean()))
print("nearest: image colour == mask colour on every labelled pixel of 8 crops")
print(f"bilinear: {100 * min(agreement):.1f} % to {100 * max(agreement):.1f} % of labelled pixels")
assert min(agreement) > 0.95

# %% [markdown]
# The padding: scale 0.75 on a 128x256 image gives 96x192 pixels of content in a 128x256
# window, the rest must be image 0 and mask 255:

# %%
# NBVAL_CHECK_OUTPUT
pad_test = datasets.transforms.train_transforms((128, 256), scales=(0.75,), flip=False)
out_image, out_mask = pad_test(*small)
assert (out_image[:, 96:] == 0).all() and (out_image[:, :, 192:] == 0).all()
assert (out_mask[96:] == 255).all() and (out_mask[:, 192:] == 255).all()
content = out_mask[:96, :192]
print(f"output {tuple(out_image.shape)}: content 96x192, padded rows 96-127 and columns 192-255")
print(
    f"padding: image == 0 (normalised), mask == 255; ignored pixels in the content: "
    f"{int((content == 255).sum())}"
)

# %% [markdown]
# ### Verify: crop-first equals resize-then-crop
#
# A plain pipeline resizes the whole frame by the drawn scale and then crops. Drawing the same
# three random numbers in the same order (scale, top, left) it gives the same window; the
# crop-first result differs only by sub-pixel rounding of the box. We compare both on the
# 1024x2048 scene and time them (timings on this shared machine are noisy):


# %%
def resize_then_crop(image, mask, crop, scales):
    scale = scales[int(torch.randint(len(scales), ()))]
    height, width = image.shape[-2:]
    scaled = [round(height * scale), round(width * scale)]
    out_h, out_w = min(crop[0], scaled[0]), min(crop[1], scaled[1])
    top = int(torch.randint(scaled[0] - out_h + 1, ()))
    left = int(torch.randint(scaled[1] - out_w + 1, ()))
    big_image = TF.resize(image, scaled, antialias=False)
    big_mask = TF.resize(mask, scaled)
    return TF.crop(big_image, top, left, out_h, out_w), TF.crop(big_mask, top, left, out_h, out_w)


# %%
crop, scales = tuple(recipes["official"].crop_size), tuple(recipes["official"].scales)
crop_first = datasets.transforms.RandomScaleCrop(crop, scales)
rows = []
for seed in range(6):
    torch.manual_seed(seed)
    start = time.perf_counter()
    fast_image, fast_mask = crop_first(*scene)
    fast = time.perf_counter() - start
    torch.manual_seed(seed)
    start = time.perf_counter()
    slow_image, slow_mask = resize_then_crop(*scene, crop, scales)
    slow = time.perf_counter() - start
    assert fast_mask.shape == slow_mask.shape
    difference = float((fast_image.float() - slow_image.float()).abs().mean())
    rows.append(
        {
            "seed": seed,
            "output": tuple(fast_mask.shape),
            "mask agreement %": round(100 * float((fast_mask == slow_mask).float().mean()), 2),
            "image mean |diff|": round(difference, 2),
            "crop-first ms": round(1000 * fast, 1),
            "resize-first ms": round(1000 * slow, 1),
        }
    )
comparison = pd.DataFrame(rows)
assert (comparison["mask agreement %"] > 99).all()
display(comparison)

# %% [markdown]
# ### A training batch
#
# Through a `DataLoader`, the dataset with a preset yields batches the network takes as they
# are: float images normalised, int64 masks with 255 = ignore, logits at the input size.

# %%
# NBVAL_CHECK_OUTPUT
train_set = datasets.Cityscapes(
    MINICITY, "train", datasets.data_transforms(recipes["minicity"], True)
)
loader = torch.utils.data.DataLoader(
    train_set, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0)
)
images, masks = next(iter(loader))
network = models.build_model("dgcnet_paper_micro").eval()
with torch.no_grad():
    logits = network(images)["out"]
print(f"images {tuple(images.shape)} {images.dtype}, masks {tuple(masks.shape)} {masks.dtype}")
print(
    f"logits {tuple(logits.shape)}; mask values within {{0..18, 255}}: "
    f"{bool(((masks < 19) | (masks == 255)).all())}"
)

# %% [markdown]
# The masks agree on more than 99 % of the pixels and the images differ by a couple of grey
# levels out of 255, at boundaries; the crop-first version costs the same at every scale.
# `benchmarks/data_loading.py` measures the whole loader (decoding included) on 2048x1024
# frames; the README reports its result.
#
# ## 4. Getting Cityscapes onto Colab (and Google Drive)
#
# Cityscapes cannot be downloaded without an account, so it cannot be fetched by this
# notebook. The steps:
#
# 1. Register at the Cityscapes website and download `leftImg8bit_trainvaltest.zip` and
#    `gtFine_trainvaltest.zip` (or, with `pip install cityscapesscripts`, run
#    `csDownload leftImg8bit_trainvaltest.zip gtFine_trainvaltest.zip`, which asks for your
#    login).
# 2. Put the two zips in your Google Drive, e.g. `MyDrive/cityscapes-zips/`, once (about
#    11 GB; each training run on Drive adds two checkpoints of about 0.6 GB, `last.pt` and
#    `previous.pt`, so the five rows of the ablation table take about 6 GB more).
# 3. In each Colab session, mount the Drive and unzip onto the VM's local disk, which reads
#    thousands of small PNGs much faster than the Drive mount does. `-n` never overwrites a
#    file: the two zips share a README and a licence file, and without it `unzip` would stop
#    and ask whether to replace them:
#
# ```python
# from google.colab import drive
# drive.mount("/content/drive")
# ZIPS = "/content/drive/MyDrive/cityscapes-zips"
# !unzip -n -q {ZIPS}/leftImg8bit_trainvaltest.zip -d data/cityscapes
# !unzip -n -q {ZIPS}/gtFine_trainvaltest.zip -d data/cityscapes
# !dgcn check-data --root data/cityscapes    # train 2975, val 500, test 1525
# ```
#
# 4. Keep the **runs** on Drive (`--run-dir /content/drive/MyDrive/dgcn/runs/...`), so a
#    disconnect loses nothing (notebook 06).
#
# The next cell checks `data/cityscapes` when it exists: in full mode with `dgcn check-data`,
# which decodes every image and label and checks sizes and ids; in smoke mode it only pairs
# the files of each split.

# %%
if not Path(CITYSCAPES, "leftImg8bit").is_dir():
    print(f"skipped: no Cityscapes at {CITYSCAPES} (see the steps above); the book uses MiniCity")
elif DECODE_CITYSCAPES:
    check = [sys.executable, "-m", "dgcn", "check-data", "--root", CITYSCAPES, "--quiet"]
    done = subprocess.run(check, capture_output=True, text=True)
    print(done.stdout + done.stderr)
else:
    for split in ("train", "val", "test"):
        try:
            print(f"{split:<6}{len(datasets.scan_split(CITYSCAPES, split)):>6} image/label pairs")
        except dgcn.DatasetError as err:
            print(f"{split:<6}{err}")

# %% [markdown]
# ## 5. MiniCity: the fallback
#
# Without Cityscapes, everything in this book runs on MiniCity (`dgcn.datasets.minicity`):
# street scenes drawn from a seeded random generator and written in the Cityscapes layout
# (`leftImg8bit`, `gtFine/*_labelIds.png` with real Cityscapes ids, `*_color.png`), so the
# same loader reads it. `datasets.ensure_minicity(root)` generates it on first use
# (200 training and 50 validation images of 128x256, about 4 s) and returns at once when a
# finished MiniCity is already there; the same seed gives byte-identical files.
# `datasets.check_tree` is what `dgcn check-data` runs: it decodes every file of every split and
# checks sizes and ids. Some classes share their local look on purpose (road and sidewalk,
# truck, bus and train, building and wall) so that context matters; MiniCity is a test bed for
# the pipeline, and its numbers are not Cityscapes numbers.

# %%
# NBVAL_CHECK_OUTPUT
root = datasets.ensure_minicity(MINICITY)
print(f"{root}: {datasets.check_tree(root, progress=False)}")
print((root / "minicity.json").read_text())

# %% [markdown]
# ## 6. Clear errors
#
# A wrong tree stops with one `DatasetError` line that names the path and says what to do.
# Here a folder holds the images but no `gtFine/` (a common mistake: only one zip extracted):

# %%
# NBVAL_CHECK_OUTPUT
broken = Path(OUT) / "no_gtfine"
shutil.rmtree(broken, ignore_errors=True)
target = broken / image_path.relative_to(MINICITY)
target.parent.mkdir(parents=True)
shutil.copy(image_path, target)
try:
    datasets.Cityscapes(broken, "train")
except dgcn.DatasetError as err:
    print(f"{type(err).__name__}: {err}")

# %% [markdown]
# The command line prints the same line and exits with status 2, without a traceback:

# %%
# NBVAL_CHECK_OUTPUT
done = subprocess.run(
    [sys.executable, "-m", "dgcn", "check-data", "--root", str(broken), "--quiet"],
    capture_output=True,
    text=True,
)
print(f"exit status {done.returncode}")
print(done.stderr.strip())

# %% [markdown]
# ## 7. PASCAL Context, the paper's second dataset
#
# The paper's other table is PASCAL Context (59 classes; 53.7 mIoU for DGCNet with ResNet-101,
# multi-scale: paper abstract, as listed in `experiments/paper_results.yaml` and
# `docs/reference/paper_results.md`; whether that number ignores the background or scores it
# is **unconfirmed**, `docs/reference/pascal_context.md`). Its
# release is two archives unpacked into one `VOC2010` folder: the VOC2010 images
# (`JPEGImages/<id>.jpg`, with the split lists under `ImageSets/`) and the Context annotations
# (`trainval/<id>.mat`, a `LabelMap` of uint16 ids 1..459, the line numbers of `labels.txt`;
# 0 = unlabeled). The README's data section says where to get them. Here the package writes a
# small synthetic tree in exactly that layout (its pixels are random shapes, so its class
# frequencies say nothing about the real data):

# %%
# NBVAL_CHECK_OUTPUT
pc = datasets.pascal_context
pc_root = Path(OUT) / "pascal-context"
shutil.rmtree(pc_root, ignore_errors=True)
print(datasets.make_synthetic_pascal_context(pc_root, train=6, val=3, seed=0))
voc = pc_root / "VOCdevkit" / "VOC2010"
for path in sorted(voc.rglob("*")):
    if path.is_dir() or path.name in ("labels.txt", "train.txt", "val.txt"):
        print(path.relative_to(voc))

# %% [markdown]
# **From 459 classes to 59.** The benchmark keeps the 59 most frequent classes; every other id
# and the unlabeled pixels are *background*. The field's converters number the 59 by ascending
# original id (which is alphabetical order); the official `59_labels.txt` lists them in
# another order, so a class index means nothing without saying which. Two settings follow:
# **59** (background ignored: 255; 59 outputs; the default) and **60** (background is class 0
# and is scored; 60 outputs). They differ by about 5 to 6 mIoU points on the same model
# (published pairs collected in `docs/reference/pascal_context.md`), so every number must say
# its setting.

# %%
# NBVAL_CHECK_OUTPUT
mapping = pd.DataFrame(pc.CLASSES_59, columns=["original id", "name"])
mapping["class (59)"] = range(59)
mapping["class (60)"] = range(1, 60)
print(mapping.head(6).to_string(index=False), "...", sep="\n")
lut59, lut60 = pc.full_to_train_lut(59), pc.full_to_train_lut(60)
for full_id, what in [(0, "unlabeled"), (2, "aeroplane"), (3, "not among the 59"), (459, "last")]:
    print(f"id {full_id:>3} ({what}): 59-class {lut59[full_id]:>3}, 60-class {lut60[full_id]:>2}")
assert (lut59[mapping["original id"]] == mapping["class (59)"]).all()
assert (lut60[mapping["original id"]] == mapping["class (60)"]).all()

# %% [markdown]
# The loader reads the same files in either setting (`dgcn convert-pascal-context` writes the
# labels once as PNGs in the layout mmsegmentation uses; the loader prefers them when present).
# Class frequencies of the synthetic train split, and two samples in both settings: what is
# ignored (black) in the 59-class setting is class 0 (grey) in the 60-class one; the large
# green disc at the top of the first image is one of the 400 other classes: background.

# %%
train59 = datasets.PascalContext(voc, "train", classes=59)
train60 = datasets.PascalContext(voc, "train", classes=60)
pixels = torch.zeros(59, dtype=torch.long)
for _, mask in train59:
    pixels += torch.bincount(mask[mask != 255].flatten(), minlength=59)
frequent = pixels.argsort(descending=True)[:10]
names59 = pc.class_names(59)
ax = pd.Series(pixels[frequent].numpy(), index=[names59[i] for i in frequent]).plot.bar(
    figsize=(7, 2.5), title="pixels per class, synthetic train split (59 classes)"
)
ax.figure.tight_layout()


# %%
def paint(mask, classes):
    colours = np.zeros((256, 3), np.uint8)  # 255 (ignored) stays black
    colours[:classes] = pc.palette(classes)
    if classes == 60:
        colours[0] = (150, 150, 150)  # background, a class here: grey
    return colours[mask.numpy()]


fig = viz.new_figure((9, 4.5))
axes = fig.subplots(2, 3)
for row, index in enumerate((0, 1)):
    (image, mask59), (_, mask60) = train59[index], train60[index]
    ignored = float((mask59 == 255).float().mean())
    panels = [viz.denormalize(image), paint(mask59, 59), paint(mask60, 60)]
    titles = ["image", f"59 classes ({ignored:.0%} ignored)", "60 classes (grey: class 0)"]
    for ax, panel, title in zip(axes[row], panels, titles, strict=True):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    assert torch.equal(mask60 == 0, mask59 == 255)  # the same pixels, ignored or class 0
fig

# %% [markdown]
# ## Summary
#
# - Cityscapes is two zips extracted into one folder: `leftImg8bit/<split>/<city>/` and
#   `gtFine/<split>/<city>/`, paired by file stem; MiniCity is written the same way, so one
#   loader reads both.
# - The files hold 34 label ids; the network predicts 19 train ids, and everything else becomes
#   255 and is ignored by the loss and the metrics. `datasets.LABELS` is the one table.
# - Training sees crops, not frames: the `official` preset (the authors' script) scales by 0.7
#   to 2.1 and crops 832 for 62,475 iterations of 8 (the script is given 60,000), `paper` (the
#   paper's text, as summarised) crops 768 and borrows the 60,000, `minicity` crops 128x256.
# - Crops are padded with 0 (image, after normalisation) and 255 (mask). Image and mask stay
#   aligned: exactly on every labelled pixel with nearest interpolation, above 95 % of them with
#   bilinear; cropping before resizing matches resizing first on more than 99 % of mask pixels
#   at the cost of the crop alone.
# - `dgcn check-data` validates a tree; the loader's errors name the file and the fix.
# - PASCAL Context (the paper's second table): 459 ids mapped to 59 classes in ascending-id
#   order; background ignored (59, the default) or scored as class 0 (60), about 5 to 6 mIoU
#   points apart: a number must say which.

# %% [markdown]
# ## Check your understanding
#
# **Q1.** The mask is resized with nearest neighbours and padded with 255, the image
# bilinearly and padded with 0. Why not treat both the same way?
#
# <details><summary>Answer</summary>
#
# Mask values are class ids, not intensities: bilinear interpolation between road (0) and
# building (2) would invent sidewalk (1) along the boundary, so the mask takes the nearest
# label. 255 is the ignore id, so padded pixels drop out of the loss; the image's 0 after
# normalisation is the ImageNet mean colour, a neutral input rather than a black border.
#
# </details>
#
# **Q2.** "DGCNet was trained for 60k iterations at 1024x2048." What is wrong with this
# sentence as a description of the authors' run?
#
# <details><summary>Answer</summary>
#
# Two things. The authors' script trains on random crops of 832x832 (after scaling by 0.7 to
# 2.1), not on whole frames; and 60,000 is the number it is given, while it runs 62,475
# iterations (its list of 2,975 images is repeated 21 times). The paper, as summarised, gives
# no iteration count at all (`docs/reference/paper_results.md`).
#
# </details>
#
# **Q3.** The loader maps label ids to train ids *before* the augmentations. Would mapping
# them after the augmentations give a different mask?
#
# <details><summary>Answer</summary>
#
# Here the order does not change the result: the lookup is per pixel, and cropping, flipping
# and nearest-neighbour resizing only move or copy values, so they commute with it (and the
# table sends the padding value 255 to 255). Mapping first is simply the one place where it is
# done once, so that every transform and the padding work in the id space of the loss, where
# 255 already means "ignore"; with bilinear resizing of the mask the order would matter.
#
# </details>
#
# **Q4.** A paper reports 53.7 mIoU on PASCAL Context and another method 52.6. Why can you not
# conclude that the first is better from these two numbers alone?
#
# <details><summary>Answer</summary>
#
# The benchmark has two settings: 59 classes with the background ignored, and 60 with the
# background scored as a class, about 5 to 6 mIoU points apart for the same model. Unless both
# numbers say their setting (and their test-time scales), the gap may be the setting, not the
# method; for DGCNet's 53.7 (paper abstract) the setting is unconfirmed here.
#
# </details>

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Which labels map to train id 255 although their category is not `void`?
# Why might Cityscapes leave them out of the evaluation?
#
# <details><summary>Worked answer</summary>
#
# ```python
# table[(table.train_id == 255) & (table.category != "void")].name.tolist()
# ```
#
# Nine labels: parking, rail track, guard rail, bridge, tunnel, polegroup, caravan, trailer and
# license plate. They are rare, or ambiguous with an evaluated class (parking vs road or
# sidewalk, polegroup vs pole, caravan and trailer vs car and truck), or only part of another
# object (the licence plate of a car); the Cityscapes benchmark evaluates the 19 classes with
# enough pixels and a clear definition.
#
# </details>
#
# **Exercise 2.** With the `official` preset on a 1024x2048 frame, what fraction of an 832x832
# crop is padding at scale 0.7, and at 0.8? Check it on the scene of section 3.
#
# <details><summary>Worked answer</summary>
#
# The scaled frame is `round(1024 * 0.7) = 717` pixels high (and 1434 wide, wider than the
# window), so the bottom $832 - 717 = 115$ rows are padding: $115 / 832 = 13.8\,\%$ of the crop.
# At 0.8 the frame is 819 high: 13 rows, $1.6\,\%$. On the scene:
#
# ```python
# crop07 = datasets.transforms.train_transforms((832, 832), scales=(0.7,), flip=False)
# out_image, out_mask = crop07(*scene)
# (out_mask[717:] == 255).all(), (out_mask[:717] == 255).all(1).any()  # True, False
# ```
#
# </details>
#
# **Exercise 3.** At scale 2.1, how many pixels does the resize-then-crop pipeline compute for
# one 832x832 crop of a 1024x2048 frame, and how many does crop-first compute? What share of
# the resized frame does the crop keep?
#
# <details><summary>Worked answer</summary>
#
# Resize-first computes the whole scaled frame, $2150 \times 4301 = 9{,}247{,}150$ pixels
# (`round(1024 * 2.1)`, `round(2048 * 2.1)`); crop-first computes only the output,
# $832^2 = 692{,}224$, 13.4 times fewer. The crop keeps $692{,}224 / 9{,}247{,}150 = 7.5\,\%$ of
# the resized frame (the "7 %" of section 3, rounded down). At scale 0.7 the frame
# ($717 \times 1434$) is only 1.5 times the crop, so the saving shrinks with the scale.
#
# </details>

# %%
# The numeric answers above, checked
odd = table[(table.train_id == 255) & (table.category != "void")].name.tolist()  # exercise 1
assert odd == [
    "parking",
    "rail track",
    "guard rail",
    "bridge",
    "tunnel",
    "polegroup",
    "caravan",
    "trailer",
    "license plate",
]
for scale, rows in [(0.7, 115), (0.8, 13)]:  # exercise 2
    pipeline = datasets.transforms.train_transforms((832, 832), scales=(scale,), flip=False)
    out_image, out_mask = pipeline(*scene)
    content = round(1024 * scale)
    assert 832 - content == rows and out_mask.shape == (832, 832)
    assert (out_mask[content:] == 255).all() and (out_image[:, content:] == 0).all()
    assert not (out_mask[:content] == 255).all(1).any()  # no content row is all padding
assert round(100 * 115 / 832, 1) == 13.8 and round(100 * 13 / 832, 1) == 1.6
big = round(1024 * 2.1) * round(2048 * 2.1)  # exercise 3
assert big == 2150 * 4301 == 9_247_150 and 832**2 == 692_224
assert round(big / 832**2, 1) == 13.4 and round(100 * 832**2 / big, 1) == 7.5
assert round(717 * 1434 / 832**2, 1) == 1.5
assert round(100 * 832**2 / (1024 * 2048)) == 33  # section 3: a crop's share of a frame
print("every numeric answer checked")

# %% [markdown]
# ## References
#
# - Cordts et al., *The Cityscapes Dataset for Semantic Urban Scene Understanding*, CVPR 2016;
#   the label definitions in the `cityscapesScripts` repository (`helpers/labels.py`).
# - Zhang et al., *Dual Graph Convolutional Network for Semantic Segmentation*, BMVC 2019,
#   arXiv 1909.06121: its training settings (crop 768, flip) and results as summarised in
#   `docs/reference/paper_results.md` (the section that states them is unverified here; check
#   arXiv 1909.06121).
# - The authors' training script, github.com/lxtGH/GALD-DGCNet (random scale 0.7-2.1, crop 832,
#   padding, 60,000 steps given and 62,475 run), described in
#   `docs/reference/official_dgcnet.md`; the presets `experiments/configs/cityscapes-official.yaml`
#   and `experiments/configs/cityscapes-paper.yaml` say where they follow it.
# - PASCAL Context: Mottaghi et al., CVPR 2014; the 59/60-class settings in
#   `docs/reference/pascal_context.md`.
# - torchvision: `transforms.v2` (`functional.resized_crop`, `functional.pad`),
#   `tv_tensors.Image` / `tv_tensors.Mask`, `datasets.Cityscapes`.
# - Package: `dgcn/datasets/labels.py`, `cityscapes.py`, `transforms.py`, `build.py`,
#   `minicity/`; `experiments/configs/*.yaml` (the recipes); `data/README.md`.
