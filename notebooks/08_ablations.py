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
# # 08 · Ablations and the paper's tables
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/08_ablations.ipynb)
#
# The paper's central table is an ablation on Cityscapes val with a ResNet-101: a dilated FCN
# baseline, plus the coordinate-space graph, plus the feature-space graph, plus both (DGCNet):
# 75.2, 78.8, 79.3 and 80.5 mIoU (paper, as summarised: `docs/reference/paper_results.md`
# gives every reference number's source). Beside them, as data, every other Cityscapes number
# with a source, and two kinds of "ours", never mixed: GPU runs on Cityscapes, which can confirm
# or contradict the paper, and the same rows on MiniCity on a CPU, which show each module's
# relative effect on a synthetic city built so that context matters. You will:
#
# - load `experiments/paper_results.yaml` into pandas tables (the ablation, the re-runs, the
#   student reproduction's IoU per class) and check them against `docs/reference/paper_results.md`;
# - collect our GPU results from `experiments/results/*.json` (none yet: the columns stay empty);
# - read the committed MiniCity ablation (`dgcn reproduce --seeds 0 1 2`: the four rows, two
#   pooling controls and a non-local block, three seeds), check the targets set for it, and say
#   what it shows and what it does not; plot the gains, paper against ours, and IoU per class;
# - put the paper's PASCAL Context number beside a slot for ours, and read the cost of each
#   context module against the image size from a committed benchmark.
#
# | mode | what runs | time |
# |---|---|---|
# | CPU, results committed | loads `experiments/results/minicity*/results.json` | seconds |
# | CPU, no results, smoke | 7 rows x 20 head iterations (the code runs; not a result) | ~1 min |
# | CPU, no results, full | `dgcn reproduce --seeds 0 1 2`: 7 rows x 3 seeds | 11.7 min |
# | GPU | `dgcn reproduce --preset cityscapes-paper`: 4 rows x 60,000 iterations | not measured |
#
# The full CPU time was measured on 2 cores (each head: 1,000 iterations of batch 8). The GPU
# row's 60,000 iterations are the preset's choice (the paper, as summarised, gives no length).

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

# %%
# ruff: noqa: E402, B018 (imports where first needed; a cell's last expression is shown)
# %matplotlib inline
from pathlib import Path

# the committed MiniCity ablation (`dgcn reproduce --seeds 0 1 2`); re-run when absent
MINICITY_RESULTS = Path("experiments/results/minicity/results.json")
# the same rows with the authors' released head (`--rows official-...`); shown when committed
OFFICIAL_RESULTS = Path("experiments/results/minicity-official/results.json")
SMOKE_RUN = ["train.iterations=20", "train.eval_every=10", "data.val_limit=10"]
# full mode: the preset's own, 1,000 head iterations of batch 8 and all 200 validation images
ABLATION_OVERRIDES = SMOKE_RUN if SMOKE else []
SEEDS = [0] if SMOKE else [0, 1, 2]
RESULTS_DIR = Path("experiments/results")  # committed GPU results, one JSON per run
PAPER_RESULTS = Path("experiments/paper_results.yaml")
REFERENCE_PAGE = Path("docs/reference/paper_results.md")  # the same numbers, with provenance

# %% [markdown]
# ## 1. The reference numbers, as data
#
# Every number below comes from `experiments/paper_results.yaml`, which names the source of
# each one; `docs/reference/paper_results.md` says the same in prose ("paper, as summarised":
# the paper as reported by a course presentation and a reproduction report, not read off its
# full text). Numbers we have no source for (for instance the exact values of the paper's
# downsampling study) are absent rather than guessed. The ablation first, each row with its
# gain over the baseline, $\Delta = \mathrm{mIoU}_\text{row} - \mathrm{mIoU}_\text{baseline}$:

# %%
# NBVAL_CHECK_OUTPUT
import pandas as pd
import yaml

from dgcn import reproduce

reference = yaml.safe_load(PAPER_RESULTS.read_text())
cityscapes = pd.DataFrame(reference["cityscapes_val_r101"]).set_index("row")
ablation = cityscapes.loc[list(reproduce.PAPER_ROWS), ["label", "miou", "source"]]
ablation.insert(2, "delta", ablation["miou"] - ablation.loc["baseline", "miou"])
assert ablation["miou"].to_dict() == reproduce.paper_numbers()  # the package reads the same file
with pd.option_context("display.width", 120, "display.max_colwidth", 40):
    print(ablation.round(1).to_string())

# %% [markdown]
# The data file and the reference page must agree: the page's tables name each row's key in the
# file in their last column; the cell compares the mIoU and the student's IoU per class.


# %%
# NBVAL_CHECK_OUTPUT
def is_number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


page_miou, page_per_class = {}, {}
for line in REFERENCE_PAGE.read_text().splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) == 4 and cells[3].startswith("`"):  # row | mIoU | source | `key`
        page_miou[cells[3].strip("`")] = [float(v) for v in cells[1].split(" to ")]
    elif len(cells) == 6:  # class | IoU, three times
        pairs = zip(cells[::2], cells[1::2], strict=True)
        page_per_class |= {n: float(v) for n, v in pairs if is_number(v)}
for entry in reference["cityscapes_val_r101"] + reference["other"]:
    assert page_miou[entry["row"]] == entry.get("miou_range", [entry.get("miou")]), entry["row"]
assert page_per_class == reference["student_per_class"]
print(f"{len(page_miou)} mIoU rows and {len(page_per_class)} class IoUs: page and file agree")

# %% [markdown]
# Each graph alone gains 3.6 (coordinate) or 4.1 (feature) points, both together 5.3 (paper,
# as summarised): not additive (3.6 + 4.1 = 7.7), which suggests that the two graphs partly
# capture the same context. With one number per row and no spread over seeds, how much of a
# one-point difference is noise cannot be told.
#
# Then every other Cityscapes val number we have a source for (the authors' README gives its
# re-runs as ranges; we keep the ends). The two independent reproductions are far from the
# others: the student's (64.4, reproduction report) differs in almost every ingredient (a
# COCO-pretrained torchvision FCN ResNet-50 backbone, batch 1, no OHEM, no multi-grid, the graph
# inside layer4), and a third-party run of the authors' R50 code reached 67.56 under PyTorch 1.6
# (GALD-DGCNet issue #15).

# %%
# NBVAL_CHECK_OUTPUT
others = cityscapes.drop(index=list(reproduce.PAPER_ROWS)).copy()
ranges = others["miou_range"].apply(lambda r: r if isinstance(r, list) else None)
others["low"] = [r[0] if r else m for r, m in zip(ranges, others["miou"], strict=True)]
others["high"] = [r[1] if r else m for r, m in zip(ranges, others["miou"], strict=True)]
others = others[["label", "low", "high", "source"]]
with pd.option_context("display.width", 140, "display.max_colwidth", 60):
    print(others.to_string())

# %% [markdown]
# Two Cityscapes numbers are from the **test** set, not val, and stand on no val axis here:
# 82.0, trained on train + val (paper abstract), and 80.9, trained on train only with OHEM,
# multi-grid and multi-scale testing (paper, as summarised; the summary names no split, and it
# is filed as most likely test, as it sits beside 82.0 in the comparison with other methods).
# No val number, the paper's or ours, is compared with either: a test score needs an official
# submission.

# %%
# NBVAL_CHECK_OUTPUT
others_ref = pd.DataFrame(reference["other"]).set_index("row")  # the numbers off the val table
test_split = others_ref.loc[["cityscapes_test", "both_tricks"]]
assert list(test_split["miou"]) == [82.0, 80.9]
assert not {"both_tricks", "cityscapes_test"} & set(cityscapes.index)  # not on the val list
with pd.option_context("display.width", 140, "display.max_colwidth", 90):
    print(test_split[["label", "miou", "source"]].to_string())
print(f"both_tricks, split: {test_split.loc['both_tricks', 'split']}")

# %% [markdown]
# The student reproduction's IoU per class (fractions in the file, percent here). Its mean
# should be the stated mIoU, 64.40 %; it is 64.405 %, the per-class values being rounded.

# %%
# NBVAL_CHECK_OUTPUT
student = pd.Series(reference["student_per_class"], name="student IoU %") * 100
assert list(student.index) == list(datasets.CLASS_NAMES)
assert abs(student.mean() - 64.40) < 0.01
print(student.sort_values().round(1).to_string())
print(f"mean {student.mean():.3f} %")

# %% [markdown]
# The student's weakest classes are rare ones and ones that look alike up close (train at 10.0,
# then fence, wall, motorcycle, rider, bus, pole, truck), where context beyond a local patch is
# most needed; MiniCity makes several ambiguous on purpose (truck / bus / train, building / wall).
#
# ## 2. Our GPU runs on Cityscapes
#
# A finished GPU run (`dgcn reproduce --preset cityscapes-paper --data-root data/cityscapes`)
# is committed as one small JSON file in `experiments/results/`, a record per row and seed
# (`row`, `seed`, `miou` as a fraction, `per_class`), as `dgcn reproduce` writes its
# `results.json`; `reproduce.collect_results` reads them.

# %%
from IPython.display import display

# PASCAL Context runs (a `dataset` field names them) wait for section 6
gpu_records, pascal_records = reproduce.collect_results(RESULTS_DIR)
if gpu_records:
    print(f"{len(gpu_records)} GPU results from {RESULTS_DIR}/")
else:
    print(f"no GPU results yet: {RESULTS_DIR}/ holds no *.json (the columns stay empty)")
gpu = pd.DataFrame(gpu_records, columns=["row", "seed", "miou", "per_class", "file"])
gpu_miou = (100 * gpu.groupby("row")["miou"].mean()).reindex(list(reproduce.PAPER_ROWS))

# %% [markdown]
# **The route, row by row.** The five end-to-end rows (the paper's four and the image-level
# pooling control) are five whole training runs. One command builds the table and survives the
# end of a session: run again with the same `--out`, it keeps the finished rows, resumes the row
# that has a checkpoint and trains the rest (`train.time_limit` ends each session with a
# checkpoint and prints the command that continues).
#
# ```bash
# dgcn reproduce --preset cityscapes-paper --data-root data/cityscapes \
#     --out /content/drive/MyDrive/dgcn/table --opt train.time_limit=5h
# # a row trained on its own (dgcn train --config ablation-coordinate) joins with
# #     --join runs/ablation-coordinate
# ```
#
# On Drive the five rows' checkpoints (`last.pt` and `previous.pt`, about 0.58 GB each) take
# about 6 GB beside the 11 GB of zips, more than a free 15 GB Drive; a finished row needs only
# its `last.pt`, and without the finished rows' `previous.pt` the total is about 14.7 GB. The
# training hours per row and GPU, as `dgcn plan` estimates them (FLOPs over the card's peak at
# an assumed 20-40 % utilisation; no evaluation):

# %%
route = []
for row in reproduce.default_rows("cityscapes-paper"):
    row_cfg = dgcn.load_config("cityscapes-paper")
    dgcn.config.apply_overrides(row_cfg, {"model": {"overrides": reproduce.ROWS[row]}})
    for name in ("T4", "L4", "A100 40GB", "H100 SXM"):
        fewest, most = dgcn.training.plan.estimate_hours(row_cfg, dgcn.training.plan.GPUS[name])
        hours = f"{fewest:.0f}-{most:.0f}"
        route.append({"row": reproduce.LABELS[row], "gpu": name, "hours": hours})
pd.DataFrame(route).pivot(index="row", columns="gpu", values="hours")

# %%
renamed = {"miou": "paper mIoU (as summarised)", "delta": "paper delta"}
table = ablation[["label", "miou", "delta"]].rename(columns=renamed)
table["ours mIoU (Cityscapes)"] = gpu_miou
table["ours delta (Cityscapes)"] = gpu_miou - gpu_miou.loc["baseline"]
table.round(1)

# %% [markdown]
# ## 3. The ablation on MiniCity, on this CPU
#
# `dgcn reproduce` (what `make demo` runs) trains one head per row on one frozen backbone, a
# micro ResNet trained once on MiniCity, layer3/layer4 *not* dilated: each feature sees
# 111 x 111 pixels, less than a bus or a train at 128 x 256, so whatever a row knows about a
# whole object comes from its head. On MiniCity **version 2** every cross street carries two
# different big-vehicle classes on its two lanes (a train on the far lane and a truck or a bus
# on the near one, or a truck and a bus), so one image-wide vector cannot tell which object is
# which (version 1's table: `experiments/results/minicity-v1/`). Each head trains for 1,000
# iterations of batch 8 on cached features of 1,000 training images and their mirror images.
#
# - **baseline**: the paper-equation head without graphs (for this head, the FCN head);
# - **+ coordinate / + feature / + both**: the same head with the paper's graphs on the
#   backbone feature, $X + \tilde X_S + \tilde X_F$ (notebooks 02-04);
# - **controls, pooled context** where the graphs go: **image-level pooling** (`global-pool`,
#   ParseNet / PSPNet's image-level branch) and **pyramid pooling** (`ppm`, PSPNet's module,
#   bins 1, 2, 3, 6): the same summary of the image (or of a few regions) for every pixel, to
#   ask whether "any global context" does as well as the graphs;
# - **+ non-local block**: every pixel related to every other at the feature's stride (an
#   $N \times N$ affinity), the dense relative of the coordinate graph.
#
# Three seeds (0, 1, 2) set each head's initial weights and the order and mirroring of its
# samples. Beside each row's mean, spread and gain, `reproduce.results_table` gives the mIoU
# over MiniCity's seven context-ambiguous classes, the parameters, and the **object score**:
# the share of truck, bus and train objects (4-connected components of one class of at least
# 16 pixels in the ground truth) whose majority prediction is their class (notebook 07 draws
# it); `reproduce.pooling_table` gives each graph row's margin over the best pooling row. **Our
# numbers are not comparable to Cityscapes**: a synthetic city, a micro backbone, 200
# validation images.

# %%
FROM_COMMITTED = MINICITY_RESULTS.exists()
if FROM_COMMITTED:
    records = dgcn.read_results(MINICITY_RESULTS)
    print(f"loaded {len(records)} runs from {MINICITY_RESULTS}")
else:  # a new folder under runs/reproduce/ (nothing earlier is replaced)
    out = reproduce.reproduce(seeds=SEEDS, overrides=ABLATION_OVERRIDES, progress=False)
    records = dgcn.read_results(out)
    print(f"trained {len(records)} runs into {out}")
    if SMOKE:
        print("SMOKE: 20 head iterations per row check that the code runs; NOT a result")
TRAINED = FROM_COMMITTED or not SMOKE  # figures of a 20-iteration smoke run say so
NOT_A_RESULT = "" if TRAINED else " (smoke run, 20 iterations: NOT a result)"
print(reproduce.results_table(records, reproduce.paper_numbers()))
print()
print(reproduce.pooling_table(records))

# %% [markdown]
# The same numbers seed by seed, beside the paper's. Rows of one seed share that seed's data
# order, so each row's gain is also taken **paired**: row minus baseline within a seed, then
# the mean and standard deviation of those differences over the seeds.


# %%
# NBVAL_CHECK_OUTPUT
def r1(values) -> list[float]:  # rounded to 0.1, as printed
    return [round(float(v), 1) for v in values]


ours = pd.DataFrame(records)
per_seed = ours.pivot(index="row", columns="seed", values="miou") * 100
rows_run = [r for r in reproduce.ROWS if r in per_seed.index]
per_seed = per_seed.reindex(rows_run)
paired = per_seed.sub(per_seed.loc["baseline"], axis="columns")  # a seed's row - its baseline
objects = ours.pivot(index="row", columns="seed", values="object_accuracy").reindex(rows_run)
evidence = per_seed.rename(columns=lambda s: f"seed {s}")
evidence["mean"], evidence["std"] = per_seed.mean(axis=1), per_seed.std(axis=1)
evidence["gain"], evidence["gain std"] = paired.mean(axis=1), paired.std(axis=1)
evidence["objects %"] = 100 * objects.mean(axis=1)
evidence["context params"] = ours.groupby("row")["context_params"].first()
evidence["paper gain"] = ablation["delta"]
with pd.option_context("display.width", 140):
    print("MiniCity v2 val mIoU % per seed (ours) | Cityscapes val (paper, as summarised)")
    print(evidence.round(1).to_string(na_rep="-"))

# %% [markdown]
# ### The targets
#
# MiniCity v2 (issue 21) was built to give the graphs context that pooling cannot give, and
# the issue set targets before the runs: **each graph row at least 1.5 points and more than 3
# pooled standard deviations above the best pooling row; both graphs at least 1.0 point above
# the better single graph** (a fourth, three seeds in at most 15 minutes, holds: 11.7). The cell
# takes both reference rows from the data (`reproduce.best_row`), measures each margin as
# `reproduce.margin` does (difference of the means, pooled std $\sqrt{(s_1^2 + s_0^2)/2}$),
# adds the paired per-seed differences and marks each target; the non-local row has none.

# %%
# NBVAL_CHECK_OUTPUT
best_pool = reproduce.best_row(records, reproduce.POOLING_ROWS)
better_single = reproduce.best_row(records, ("coordinate", "feature"))
checks = [(r, best_pool, 1.5, 3.0) for r in ("coordinate", "feature", "both")]
checks += [("both", better_single, 1.0, None), ("non-local", best_pool, None, None)]
targets = []
for row, against, points, ratio in checks:
    m = reproduce.margin(records, row, against)
    d = per_seed.loc[row] - per_seed.loc[against]
    wanted = "-" if points is None else f">= {points}" + (f", > {ratio} sd" if ratio else "")
    met = points is not None and m["delta"] >= points and (ratio is None or m["ratio"] > ratio)
    targets.append(
        [row, against, m["delta"], m["pooled_std"], m["ratio"], d.mean(), d.std(), wanted]
        + ["-" if points is None else ("met" if met else "NOT met")]
    )
columns = ["row", "against", "margin", "pooled std", "margin / pooled std"]
columns += ["paired mean", "paired std", "target", "verdict"]
targets = pd.DataFrame(targets, columns=columns)
with pd.option_context("display.width", 140):
    print(targets.round(1).to_string(index=False))

# %% [markdown]
# None is met. Beside the first edition's numbers (MiniCity v1, the same preset and seeds, v1's
# backbone) the change is plain: on v1 image-level pooling gained 2.5 points, most of the
# graphs' gain; on v2 it gains almost nothing, while the graphs keep 1.5 to 1.9.

# %%
# NBVAL_CHECK_OUTPUT
v1 = pd.DataFrame(dgcn.read_results("experiments/results/minicity-v1/results.json"))
v1 = 100 * v1.pivot(index="row", columns="seed", values="miou").mean(axis=1)
editions = pd.DataFrame({"v1 mIoU": v1, "v1 gain": v1 - v1["baseline"]}).reindex(rows_run)
editions["v2 mIoU"], editions["v2 gain"] = evidence["mean"], evidence["gain"]
print(editions.round(1).to_string(na_rep="not run"))

# %% [markdown]
# The same four rows with the authors' released head (`DualGCNHead`, $D = 64$ here, not 512;
# `dgcn reproduce --seeds 0 1 2 --rows official-baseline official-coordinate official-feature
# official-both`; v1's in `experiments/results/minicity-official-v1/`), its baseline that head
# with the graph module replaced by identity. No control row was run with it
# (`experiments/results/minicity-official/results.json` holds these four rows only), so the
# comparisons with pooling in this notebook are for the paper-equation head alone.

# %%
# NBVAL_CHECK_OUTPUT
OFFICIAL_ROWS = ("official-coordinate", "official-feature", "official-both")
OFFICIAL_V1 = Path("experiments/results/minicity-official-v1/results.json")
if OFFICIAL_RESULTS.exists():
    official_records = dgcn.read_results(OFFICIAL_RESULTS)
    official_gains = {r: reproduce.gain(official_records, r)["delta"] for r in OFFICIAL_ROWS}
    print(f"{len(official_records)} runs from {OFFICIAL_RESULTS}")
    print(reproduce.results_table(official_records, reproduce.paper_numbers()))
else:
    official_records, official_gains = [], {}
    print(f"skipped: {OFFICIAL_RESULTS} is not there (the command above makes it)")
official_v1 = dgcn.read_results(OFFICIAL_V1)
official_v1_gains = {r: reproduce.gain(official_v1, r)["delta"] for r in OFFICIAL_ROWS}
print("v1, gains over the authors' baseline:", r1(official_v1_gains.values()))

# %% [markdown]
# ### What the CPU ablation shows, and what it does not
#
# **What it shows.** On a synthetic city with long-range ambiguities (truck, bus and train
# share one body and differ in length, two of them in every cross street; road / sidewalk and
# building / wall share their materials), with a frozen backbone that cannot see a vehicle:
#
# - every graph row beats the baseline (34.5 +- 0.5) in every seed: paired gains coordinate
#   +1.5 +- 0.1, feature +1.7 +- 0.6, both +1.9 +- 0.4, on the vehicles (both graphs: truck
#   3.6 -> 19.1, bus 46.8 -> 50.7, train 35.1 -> 48.3 IoU; objects right 46.9 -> 57.2 %);
#   road, sidewalk, building and wall stay within 2 points of the baseline;
# - version 2 removed the image-level shortcut: image-level pooling gains +0.1 +- 0.4 (+2.5 on
#   v1), and the graphs beat it by 1.4 to 1.8, paired (per object it gets further, 54.8 %);
# - pyramid pooling gets most of the way: +1.1 +- 1.1, objects 55.3 %, truck 17.6, partly on
#   sidewalk (+3.3) and fence (+2.6), and 12.6 points lost on traffic sign. The graphs' margins
#   over it are +0.4, +0.6 and +0.8 points (0.7 to 1.4 pooled std), both graphs +0.2 above the
#   feature graph alone (the paper, as summarised: 1.2); the non-local block gains +0.8 +- 0.8,
#   0.3 below pyramid pooling. **The targets are not met**;
# - the authors' head is larger (222,803 parameters; its baseline, 38.6, is above every
#   paper-head row): the coordinate graph adds nothing (+0.0 +- 0.4, paired), the feature graph
#   +1.2, both +1.7 (objects right 49.3 -> 60.7 %), 0.5 above the feature graph alone (2.7
#   pooled std); on v1 +1.3, +2.6, +3.4. No control row was run for it.
#
# **What it does not show.**
#
# - **That the graphs carry context pooling cannot give, here.** Their margins over pyramid
#   pooling are within the spread of three seeds (ppm's own: 36.2, 35.8, 34.7), with more
#   context parameters (both 63,168, ppm 33,280; coordinate 37,312). More seeds could resolve
#   the margins (Exercise 3); three do not.
# - **The paper's magnitudes** (a baseline of 34.5, not 75.2: nothing links the two scales),
#   **Cityscapes behaviour** (other ambiguities, textures, class frequencies, 1024 x 2048
#   frames) or **anything about a ResNet-101**, a dilated backbone or end-to-end training (a
#   frozen micro backbone, heads trained 1,000 iterations, the graphs' reprojection scales
#   started at 1, as the preset's header explains).
# - An "object" is a connected component of one class in the ground truth (MiniCity has no
#   instance maps): two touching vehicles of one class count as one.
#
# The next cells recompute every number of this list from the committed results.


# %%
import numpy as np


def class_mean(row: str, name: str) -> float:  # IoU %, mean over the row's seeds
    return 100 * np.mean([r["per_class"][name] for r in records if r["row"] == row])


graph_rows, controls = ["coordinate", "feature", "both"], ["global-pool", "ppm", "non-local"]

# %%
# NBVAL_CHECK_OUTPUT
if FROM_COMMITTED:
    assert sorted(per_seed.columns) == [0, 1, 2] and len(rows_run) == 7
    assert (paired.loc[graph_rows] > 0).all().all()  # every graph row, every seed
    assert r1(paired.loc[graph_rows + controls].mean(axis=1)) == [1.5, 1.7, 1.9, 0.1, 1.1, 0.8]
    assert r1(paired.loc[graph_rows + controls].std(axis=1)) == [0.1, 0.6, 0.4, 0.4, 1.1, 0.8]
    assert r1(per_seed.loc["baseline"].agg(["mean", "std"])) == [34.5, 0.5]
    assert r1(per_seed.loc["ppm"]) == [36.2, 35.8, 34.7]
    assert r1(editions.loc["global-pool", ["v1 gain", "v2 gain"]]) == [2.5, 0.1]
    beyond_pool = per_seed.sub(per_seed.loc["global-pool"], axis="columns").loc[graph_rows]
    assert r1(beyond_pool.mean(axis="columns")) == [1.4, 1.6, 1.8]
    vehicles = ("truck", "bus", "train")
    assert r1(class_mean("baseline", c) for c in vehicles) == [3.6, 46.8, 35.1]
    assert r1(class_mean("both", c) for c in vehicles) == [19.1, 50.7, 48.3]
    for row in graph_rows:  # road, sidewalk, building, wall: within 2 points of the baseline
        for c in ("road", "sidewalk", "building", "wall"):
            assert abs(class_mean(row, c) - class_mean("baseline", c)) < 2, (row, c)
    moved = [class_mean("ppm", c) - class_mean("baseline", c) for c in ("sidewalk", "fence")]
    moved += [class_mean("baseline", "traffic sign") - class_mean("ppm", "traffic sign")]
    assert r1(moved) == [3.3, 2.6, 12.6] and round(class_mean("ppm", "truck"), 1) == 17.6
    print("the mIoU and IoU numbers of the list: checked against the committed results")
else:
    print("skipped: the list describes the committed results, which were not loaded")

# %%
# NBVAL_CHECK_OUTPUT
if FROM_COMMITTED:
    assert r1(100 * objects.mean(axis=1)) == [46.9, 55.3, 57.0, 57.2, 54.8, 55.3, 53.9]
    margins = targets.set_index(["row", "against"])
    over_ppm = margins.loc[[(r, "ppm") for r in graph_rows]]
    assert best_pool == "ppm" and better_single == "feature"
    assert r1(over_ppm["margin"]) == [0.4, 0.6, 0.8]
    assert r1(over_ppm["margin / pooled std"]) == [0.7, 1.0, 1.4]
    assert r1(margins.loc[("both", "feature"), ["margin", "margin / pooled std"]]) == [0.2, 1.4]
    assert round(margins.loc[("non-local", "ppm"), "margin"], 1) == -0.3
    assert list(targets["verdict"]) == ["NOT met"] * 4 + ["-"]
    params = evidence["context params"]
    assert [params[r] for r in ("both", "ppm", "coordinate")] == [63168, 33280, 37312]
    assert r1(official_v1_gains.values()) == [1.3, 2.6, 3.4]
    official = pd.DataFrame(official_records)
    assert set(official["row"]) == {"official-baseline", *OFFICIAL_ROWS}  # no control row
    by_seed = official.pivot(index="row", columns="seed", values="miou") * 100
    assert r1(official_gains.values()) == [0.0, 1.2, 1.7]
    baseline_of = by_seed.loc["official-baseline"]
    assert round((by_seed.loc["official-coordinate"] - baseline_of).std(), 1) == 0.4
    assert round(baseline_of.mean(), 1) == 38.6 > per_seed.mean(axis=1).max()
    over = reproduce.margin(official_records, "official-both", "official-feature")
    assert r1([over["delta"], over["ratio"]]) == [0.5, 2.7]
    scores = 100 * official.groupby("row")["object_accuracy"].mean()
    assert r1(scores[["official-baseline", "official-both"]]) == [49.3, 60.7]
    assert official["head_params"][official["row"] == "official-baseline"].iloc[0] == 222803
    print("its objects, margins, targets and parameters: checked against the committed results")
else:
    print("skipped: the list describes the committed results, which were not loaded")

# %%
minicity_miou = per_seed.mean(axis="columns").reindex(list(reproduce.PAPER_ROWS))
first = {r: next(rec for rec in records if rec["row"] == r) for r in reproduce.PAPER_ROWS}
networks = [models.build_model(rec["model"], **rec["overrides"]) for rec in first.values()]
table["parameters (MiniCity model)"] = [sum(p.numel() for p in n.parameters()) for n in networks]
table["ours mIoU (MiniCity, CPU)"] = minicity_miou
table["ours delta (MiniCity, CPU)"] = minicity_miou - minicity_miou.loc["baseline"]
table.round(1)

# %% [markdown]
# ## 4. The gains over the baseline, paper against ours
#
# One group of bars per row (`viz.gain_bars`): the paper's $\Delta$ on Cityscapes (as
# summarised), ours on Cityscapes (when a GPU result exists), ours on MiniCity (the mean of the
# paired gains, their standard deviation as an error bar). The hatched rows right of the grey
# line exist only on MiniCity: the two pooling controls and the non-local block, a rival that,
# like the graphs, relates pixels to each other (a dense affinity). A graph row's bar means
# something only beside them: the dashed line, the best pooling row's gain, is the bar it must
# clear. A synthetic run speaks to the signs and order of the bars, not their size. The
# authors'-head rows are not drawn: they have no control row to set them against.

# %%
rows = [r for r in rows_run if r != "baseline"]  # the paper's rows, then the controls
SHORT = dict(coordinate="+ coordinate", feature="+ feature", both="+ both\n(DGCNet)")
SHORT |= {
    "global-pool": "control:\nimage-level\npooling",
    "ppm": "control:\npyramid\npooling",
    "non-local": "rival:\nnon-local",
}
spread = paired.loc[rows].std(axis=1) if len(per_seed.columns) > 1 else None
minicity = f"ours (MiniCity v2, CPU, {len(per_seed.columns)} seeds)"
series = [
    ("paper (Cityscapes, as summarised)", table["paper delta"].reindex(rows), None, "0.35"),
    ("ours (Cityscapes, GPU)", table["ours delta (Cityscapes)"].reindex(rows), None, "tab:blue"),
    (minicity, paired.loc[rows].mean(axis=1), spread, "tab:orange"),
]
extra = [r not in reproduce.PAPER_ROWS for r in rows]  # the controls and the rival: MiniCity only
best = (paired.loc[best_pool].mean(), f"best pooling row ({best_pool}), MiniCity")
title = "gain of each row over its baseline" + NOT_A_RESULT
fig = viz.gain_bars(series, [SHORT[r] for r in rows], extra, best, title=title)
fig

# %% [markdown]
# And every Cityscapes val number of section 1 on one axis (a range from its low to its high
# end), with our GPU rows when they exist; the two test-set numbers, 82.0 and 80.9, are not on it.

# %%
labels = [f"paper: {label}" for label in ablation["label"]] + list(others["label"])
low = list(ablation["miou"]) + list(others["low"])
high = list(ablation["miou"]) + list(others["high"])
for row in reproduce.PAPER_ROWS:
    if not pd.isna(gpu_miou.loc[row]):
        labels.append(f"ours, Cityscapes: {reproduce.LABELS[row]}")
        low.append(gpu_miou.loc[row])
        high.append(gpu_miou.loc[row])
xlabel = "Cityscapes val mIoU (%), axis from 60; sources in docs/reference/paper_results.md"
fig = viz.range_bars(labels, low, high, 60, 85, xlabel)
assert 80.9 not in low and 82.0 not in low  # the test-set numbers are not val numbers
fig

# %% [markdown]
# ## 5. IoU per class: the student reproduction and ours
#
# With a GPU result of DGCNet ("both") on Cityscapes, its IoU per class goes beside the
# student's; without one the cell draws the student's alone (the report's values, not ours).

# %%
both = gpu[gpu["row"] == "both"]
if len(both) and isinstance(both.iloc[0]["per_class"], dict):
    title = "ours (Cityscapes val, both graphs) vs the student reproduction"
    reference = dict(reference=student.to_dict(), reference_name="student reproduction")
    display(viz.iou_bars(both.iloc[0]["per_class"], title=title, **reference))
else:
    print("no GPU result of the 'both' row: the student reproduction's IoU alone")
    title = "student reproduction, Cityscapes val (report)"
    display(viz.iou_bars((student / 100).to_dict(), title=title))

# %% [markdown]
# Our MiniCity IoUs per class, beside the student's, would mean nothing; they show *where* the
# graphs help on MiniCity: both graphs (bars) against the baseline (grey), context classes `*`.


# %%
def mean_per_class(row: str) -> dict:
    runs = [r["per_class"] for r in records if r["row"] == row]
    values = {name: [run[name] for run in runs] for name in runs[0]}
    return {name: None if None in v else np.mean(v) for name, v in values.items()}


baseline_pct = {k: 100 * v for k, v in mean_per_class("baseline").items() if v is not None}
viz.iou_bars(
    mean_per_class("both"),
    reference=baseline_pct,
    title=f"MiniCity val: both graphs vs baseline, {len(per_seed.columns)} seeds{NOT_A_RESULT}",
    reference_name="baseline",
    marked=datasets.CONTEXT_CLASSES,
)

# %% [markdown]
# Every row's gain over the baseline on each context class, over the seeds: where the pooling
# controls match the graphs, "any global context" is enough on this data.

# %%
present, CONTEXT = [r for r in rows_run if r != "baseline"], datasets.CONTEXT_CLASSES
gains = pd.DataFrame(
    {
        r: {c: 100 * (mean_per_class(r)[c] or 0) - baseline_pct.get(c, 0) for c in CONTEXT}
        for r in present
    }
)
gains.round(1)

# %% [markdown]
# ## 6. PASCAL Context: the paper's one number, and a slot for ours
#
# The paper's second dataset has no ablation, only DGCNet's result: 53.7 mIoU with a
# ResNet-101 and a multi-scale test (paper abstract; row `pascal_context` of
# `experiments/paper_results.yaml`). The benchmark scores the 59 most frequent of 459 classes,
# as the 59-class mIoU with the background ignored or as a "60-class" figure, which meant two
# things in 2019: the background trained and scored as a 60th class, or (EncNet's convention)
# the 59-class mIoU times 59/60. **Which of these 53.7 is, is unconfirmed**
# (`docs/reference/pascal_context.md` collects the evidence, EncNet's 52.6 and 51.7 included).
# So a run of ours (`dgcn reproduce --preset pascal-context-official`, read from
# `experiments/results/*.json` when one names `dataset: pascal-context` or `pascal-context-60`)
# is shown both ways, as `dgcn evaluate --report-scaled` prints them.

# %%
# NBVAL_CHECK_OUTPUT
from dgcn import evaluation

pascal_paper = others_ref.loc["pascal_context"]
assert reproduce.paper_numbers("pascal-context") == {"both": pascal_paper["miou"]}
assert reproduce.rows_for("pascal-context") == ("both",)  # what reproduce runs there by default
# the convention's arithmetic check (docs/reference/pascal_context.md): 52.6 x 59/60 = 51.7
assert round(evaluation.scaled_miou(52.6, 59, 60), 1) == 51.7
print(f"paper: {pascal_paper['label']}: {pascal_paper['miou']} ({pascal_paper['source']})")
print("setting: unconfirmed (59 classes, true 60, or 59-class mIoU x 59/60)")


# %%
def pascal_ours(record: dict) -> dict:
    """Our run's figures, each under the setting it was scored in (percent)."""
    miou = 100 * record["miou"]
    if record["dataset"] == "pascal-context-60":
        return {"ours 60 classes (background scored)": miou}
    return {
        "ours 59 classes": miou,
        "ours x 59/60 (EncNet-style 60)": evaluation.scaled_miou(miou, 59, 60),
    }


slots = ["ours 59 classes", "ours x 59/60 (EncNet-style 60)", "ours 60 classes (background scored)"]
both_row = pd.Index([reproduce.LABELS["both"]], name="row")
pascal_table = pd.DataFrame(None, index=both_row, columns=slots)
pascal_table.insert(0, "paper mIoU (abstract; setting unconfirmed)", pascal_paper["miou"])
for record in pascal_records:  # the latest file's figures fill the slot
    for column, value in pascal_ours(record).items():
        pascal_table.loc[reproduce.LABELS["both"], column] = value
if not pascal_records:
    print(f"no PASCAL Context run yet: {RESULTS_DIR}/ holds no result naming pascal-context")
pascal_table

# %% [markdown]
# ## 7. The cost of context
#
# The modules of section 3 differ in cost more than in mIoU. `benchmarks/context_cost.py`
# measured each (paper form, $D = 512$ channels as in a ResNet-101 head, batch 1) on the
# stride-8 feature of a MiniCity image, an 832 crop and a 1024 x 2048 frame: CPU time and peak
# memory (fp32) of a forward and backward pass, and the bf16 activations saved for backward on
# a GPU. The figure draws the committed `context_cost_cpu.json`, log-log, with reference slopes
# $\propto N$ and $\propto N^2$.

# %%
import json
import math

COST = Path("benchmarks/results/context_cost_cpu.json")
cost = json.loads(COST.read_text())
machine = f"{cost['machine']['cpu']}, {cost['machine']['cores']} cores, {cost['date'][:10]}"
viz.context_cost_figure(
    cost["records"], title=f"context modules at D = {cost['channels']}, batch 1 ({machine})"
)

# %%
# NBVAL_CHECK_OUTPUT
crop, frame = ("832x832 crop", "1024x2048 image")
by = {(r["module"], r["size"]): r for r in cost["records"]}
pixels = {name: h * w for name, (h, w) in cost["sizes"].items()}


def exponent(module: str, key: str) -> float:  # growth from the crop to the frame: N^k
    ratio = by[module, frame][key] / by[module, crop][key]
    return math.log(ratio) / math.log(pixels[frame] / pixels[crop])


modules = ["both", "ppm", "non-local"]
growth = pd.DataFrame(index=modules)
for size in (crop, frame):
    growth[f"bf16 MiB, {size}"] = [by[m, size]["bf16_activation_mib"] for m in modules]
growth["exponent k"] = [exponent(m, "bf16_activation_mib") for m in modules]
growth["CPU peak MiB, frame"] = [by[m, frame]["cpu_peak_mib"] for m in modules]
growth["CPU s, frame"] = [by[m, frame]["cpu_seconds"] for m in modules]
print(f"{pixels[crop]:,} -> {pixels[frame]:,} pixels (x{pixels[frame] / pixels[crop]:.2f})")
print(growth.round(2).to_string())

# %%
# the numbers of the next paragraph, from the committed measurements
ratio = {
    k: by["non-local", frame][k] / by["both", frame][k]
    for k in ("bf16_activation_mib", "cpu_seconds")
}
assert round(pixels[frame] / pixels[crop], 2) == 3.03
assert r1(growth.loc[["non-local", "both"], f"bf16 MiB, {crop}"]) == [733.8, 43.0]
assert r1(growth.loc[["non-local", "both"], f"bf16 MiB, {frame}"]) == [6337.0, 125.6]
assert [round(exponent(m, "bf16_activation_mib"), 2) for m in ("non-local", "both")] == [1.95, 0.97]
assert [round(v) for v in ratio.values()] == [50, 114]
assert r1(growth.loc[["non-local", "both"], "CPU peak MiB, frame"] / 1024) == [12.2, 0.3]
gib = [round(by[m, frame]["bf16_activation_mib"] / 1024, 2) for m in ("non-local", "both")]
assert gib == [6.19, 0.12]

# %% [markdown]
# From the crop to the frame the feature map grows 3.03 times. The non-local block's saved
# activations grow from 734 to 6,337 MiB, exponent 1.95: the square of the pixels, its
# $N \times N$ affinity. Both graphs grow from 43 to 126 MiB, exponent 0.97: linear, their
# graphs having a fixed number of nodes per pixel block (coordinate) or in all (feature). On a
# whole frame the non-local block saves 50 times their memory, needs 12.2 GiB of CPU memory
# against 0.3 and 114 times their time, for a row that scores no better on MiniCity.

# %% [markdown]
# ## Summary
#
# - The paper's ablation (Cityscapes val, ResNet-101, as summarised) gains 3.6 and 4.1 with one
#   graph and 5.3 with both, not additive; every reference number is data with its source, and
#   no Cityscapes run of ours exists yet.
# - On MiniCity v2 (three seeds, frozen micro backbone, heads only) every graph row beats the
#   baseline in every seed (paired +1.5, +1.7, +1.9), on the vehicles; the authors' head
#   +0.0, +1.2, +1.7.
# - Image-level pooling gains +0.1 (+2.5 on v1), pyramid pooling +1.1: the graphs' margins over
#   it (+0.4 to +0.8) do not meet the targets. The graphs use long-range context where
#   a synthetic city demands it; that they use it better than pooled context is not shown.
# - The non-local block's memory grows with the square of the pixels (exponent 1.95; both
#   graphs 0.97): 6.2 GiB of bf16 activations on a Cityscapes frame against 0.12.
# - PASCAL Context: 53.7 (paper abstract), in a setting that is unconfirmed; ours is shown both
#   ways.

# %% [markdown]
# ## Check your understanding
#
# **Q1.** In the paper's table (as summarised) the coordinate graph gains 3.6 and the feature
# graph 4.1, but both together only 5.3. What does that suggest, and why can it not settle it?
#
# <details><summary>Answer</summary>
#
# That the two graphs partly capture the same context, so the second adds less on top of the
# first than alone. Each row is one number with no spread over seeds: a point could be noise.
#
# </details>
#
# **Q2.** Why does every MiniCity row train its head on the same frozen backbone rather than
# training each network end to end?
#
# <details><summary>Answer</summary>
#
# The paper's ablation (as summarised) changes the graph module and nothing else; one frozen
# backbone makes the rows differ by their context module alone and lets a row train in about a
# minute on a CPU. End to end, each row's backbone would add its own variation.
#
# </details>
#
# **Q3.** What are the pooling rows for, and why did MiniCity v2 put two different vehicle
# classes in every cross street?
#
# <details><summary>Answer</summary>
#
# They are controls: pooled context where the graphs go, the same summary for every pixel.
# Where they match the graphs, the graphs' gain is what any global context gives. On v1 one
# image-level vector could say "this image has a bus", and image-level pooling gained 2.5
# points; with two classes per street it must tell the objects apart, and gains 0.1. Pyramid
# pooling, which pools regions too, still gains 1.1, close to the graphs.
#
# </details>
#
# **Q4.** Our MiniCity gain for both graphs is +1.9, the paper's +5.3 (as summarised). Why is
# this not a (partial) reproduction of the paper's number?
#
# <details><summary>Answer</summary>
#
# Different data (a synthetic city built to need context against Cityscapes), backbones (a
# frozen micro ResNet against a fine-tuned ResNet-101) and training: nothing links the two
# scales. Only signs and orderings compare, and they only say the modules can use context.
#
# </details>
#
# **Q5.** What does "80.5 (paper, as summarised)" tell you about where the number comes from,
# and how would you check it?
#
# <details><summary>Answer</summary>
#
# The paper's number as reported by a course presentation and a reproduction report, not read
# off the paper's text: check it in the ablation table of arXiv 1909.06121.
#
# </details>

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** From `reproduce.paper_numbers()`, compute how far the paper's two single-graph
# gains fall short of adding up to the gain of both graphs, and what fraction of the baseline's
# error ($100 - \mathrm{mIoU}$) the two graphs together remove.
#
# <details><summary>Worked answer</summary>
#
# With `gain = {r: paper[r] - paper["baseline"] ...}` from `paper = reproduce.paper_numbers()`:
# the shortfall is 3.6 + 4.1 - 5.3 = 2.4 points, and both graphs remove 5.3 / 24.8 = 21.4 % of
# the baseline's error (the paper's numbers as summarised).
#
# </details>
#
# **Exercise 2.** How large is the seed-to-seed spread against the gains on MiniCity? From the
# committed records, compute the gain of "both" in each seed (paired with that seed's
# baseline), its mean and standard deviation, and the gain in pooled standard deviations that
# `reproduce.gain` reports.
#
# <details><summary>Worked answer</summary>
#
# With `miou = {(r["row"], r["seed"]): 100 * r["miou"] for r in records}`, the paired gains are
# `[miou["both", s] - miou["baseline", s] for s in (0, 1, 2)]`; `np.mean`, `np.std(...,
# ddof=1)` and `reproduce.gain(records, "both")["ratio"]` give the rest: +2.3, +1.6 and +1.8,
# mean +1.9, standard deviation 0.4, and an unpaired ratio of 5.4 pooled standard deviations.
# The gain over the baseline is well outside the spread of three seeds (the margin over
# pyramid pooling, section 3, is not).
#
# </details>
#
# **Exercise 3.** How many seeds would resolve the graphs' margins over pyramid pooling? Take
# each graph row minus `ppm`, paired by seed, and ask how many seeds $n$ would put the mean
# $\bar m$ two standard errors above zero, $\bar m > 2 s / \sqrt n$, if more seeds kept the
# mean and the standard deviation $s$ of these three.
#
# <details><summary>Worked answer</summary>
#
# With `m = [miou[row, s] - miou["ppm", s] for s in (0, 1, 2)]`, $n > (2 s / \bar m)^2$.
# Coordinate +0.4 +- 1.2 needs $n > 30.0$, 31 seeds; feature +0.6 +- 0.6, $n > 4.6$, 5; both
# +0.8 +- 0.9, $n > 5.1$, 6. A rough guide only (a standard deviation from three seeds is
# itself uncertain, and more seeds may move the mean); and a resolved margin of 0.6 to 0.8
# would still miss the target of 1.5, which asks for size, not only a difference beyond noise.
#
# </details>
#
# **Exercise 4.** The paper's PASCAL Context number is 53.7 (paper abstract), in a setting that
# is unconfirmed. If it is a 59-class mIoU, what would the EncNet-style "60-class" figure be?
# If it is already that figure, what 59-class mIoU does it correspond to?
#
# <details><summary>Worked answer</summary>
#
# 59/60 of it: `evaluation.scaled_miou(53.7, 59, 60)` = 52.8; the other way, 53.7 x 60/59 =
# 54.6. The readings are 1.8 points apart: the setting matters before comparing with it.
#
# </details>

# %%
# The numeric answers above, checked.
paper = reproduce.paper_numbers()
gain = {r: paper[r] - paper["baseline"] for r in ("coordinate", "feature", "both")}
assert round(gain["coordinate"] + gain["feature"] - gain["both"], 1) == 2.4
assert round(100 * gain["both"] / (100 - paper["baseline"]), 1) == 21.4
assert round(100 - paper["baseline"], 1) == 24.8
if FROM_COMMITTED:
    miou = {(r["row"], r["seed"]): 100 * r["miou"] for r in records}
    paired_both = [miou["both", s] - miou["baseline", s] for s in (0, 1, 2)]
    assert r1(paired_both) == [2.3, 1.6, 1.8]
    assert r1([np.mean(paired_both), np.std(paired_both, ddof=1)]) == [1.9, 0.4]
    assert round(reproduce.gain(records, "both")["ratio"], 1) == 5.4
    needs = {"coordinate": (0.4, 1.2, 30.0, 31), "feature": (0.6, 0.6, 4.6, 5)}
    for row, (mean, std, bound, n) in (needs | {"both": (0.8, 0.9, 5.1, 6)}).items():
        d = [miou[row, s] - miou["ppm", s] for s in (0, 1, 2)]
        needed = (2 * np.std(d, ddof=1) / np.mean(d)) ** 2
        assert r1([np.mean(d), np.std(d, ddof=1), needed]) == [mean, std, bound], row
        assert math.floor(needed) + 1 == n, row
assert round(evaluation.scaled_miou(53.7, 59, 60), 1) == 52.8
assert round(53.7 * 60 / 59, 1) == 54.6
assert round(53.7 * 60 / 59 - evaluation.scaled_miou(53.7, 59, 60), 1) == 1.8
print("all numeric answers check")

# %% [markdown]
# ## References
#
# - Zhang, Li, Arnab, Yang, Tong, Torr, *Dual Graph Convolutional Network for Semantic
#   Segmentation*, BMVC 2019, arXiv 1909.06121: the Cityscapes val ablation, the downsampling
#   study and the test comparison as summarised (`docs/reference/paper_results.md`); the
#   Cityscapes test and PASCAL Context numbers from its abstract. Section and table numbers
#   are unverified here; check arXiv 1909.06121.
# - The authors' README in `lxtGH/GALD-DGCNet` (re-runs: R101 80.3 to 80.4, R50 79.6 to 79.8);
#   GALD-DGCNet issue #15 (third-party R50 run, 67.56); the MindSpore model zoo
#   `dgcnet_res101` README (80.30); the student reproduction report, as summarised (the
#   `source` fields of `experiments/paper_results.yaml`).
# - `docs/reference/pascal_context.md`: the PASCAL Context settings and the evidence about them.
# - The controls: Liu, Rabinovich, Berg, *ParseNet*, 2015 (image-level context); Zhao et al.,
#   *Pyramid Scene Parsing Network*, CVPR 2017 (pyramid pooling); Wang et al., *Non-local
#   Neural Networks*, CVPR 2018 (as implemented in `dgcn/models/context.py`). The v2 experiment:
#   `docs/minicity_ablation.md`, `dgcn/datasets/minicity/scene.py`, `dgcn/evaluation/objects.py`;
#   the gains figure: `dgcn/viz/ablation.py`; the cost of context: `benchmarks/context_cost.py`,
#   `benchmarks/results/README.md`.
# - [pandas](https://pandas.pydata.org/docs/) `DataFrame`, `pivot`, `groupby`, `reindex`.
