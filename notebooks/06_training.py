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
# # 06 · Training on a GPU
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/06_training.ipynb)
#
# The earlier notebooks built DGCNet piece by piece; this one trains it. The same notebook runs
# on a free Colab T4, on a rented A100 or H100, and (in smoke mode) on a laptop CPU: it looks
# at the hardware, picks the matching preset from `experiments/configs/`, keeps the data and
# the run on Google Drive when it runs in Colab, and survives a disconnect by resuming from the
# last checkpoint. We stage such a disconnect on purpose: a training process is killed right
# after its first checkpoint and the run is resumed from `last.pt` to the end of its schedule.
#
# You will:
#
# - choose a preset and a micro-batch from the GPU's name and memory, with the decision printed;
# - learn what a checkpoint must hold for a resumed run to be the same run (model, optimiser,
#   schedule, gradient scaler, random states and data position);
# - kill a training process and resume it, then check that the learning-rate schedule went on
#   exactly where it stopped;
# - read the training curves from `metrics.jsonl`;
# - get the exact `torchrun` command for a machine with many GPUs.
#
# | mode | what runs | time |
# |---|---|---|
# | CPU smoke | `minicity-cpu`, 40 iterations of batch 8, killed, resumed | about 20 s (2 cores) |
# | GPU full | `cityscapes-official` (60k iterations, batch 8) or `-colab-t4` | not measured |
# | CPU full | `minicity-cpu`, 250 iterations on MiniCity | about a minute (2 cores, estimate) |

# %%
import os
import subprocess
import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB and not os.path.isdir("dgcn-book"):
    subprocess.run(["git", "clone", "-q", "https://github.com/dgcn-book/dgcn-book"], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "-e", "dgcn-book[notebooks]"], check=True
    )
if IN_COLAB:
    os.chdir("dgcn-book")
    sys.path.insert(0, os.getcwd())
elif os.path.basename(os.getcwd()) == "notebooks":
    os.chdir("..")  # run from the repository root: data/ and runs/ are shared by all notebooks

import dgcn
from dgcn import datasets, models, viz

SMOKE = dgcn.smoke_mode()

# %% [markdown]
# Every expensive constant, set once from `SMOKE`. In full mode the preset's own schedule is
# used (`None` = keep the preset's value). On Colab the dataset and the run directory live on
# Google Drive, so a disconnect loses nothing.

# %%
# ruff: noqa: E402, B018 (imports where first needed; a cell's last expression is shown)
# %matplotlib inline
from pathlib import Path

DRIVE = Path("/content/drive/MyDrive/dgcn")  # used only in Colab
ITERATIONS = 40 if SMOKE else None  # None: the preset's (60,000 on Cityscapes, 250 on MiniCity)
CHECKPOINT_EVERY = 10 if SMOKE else None  # None: the preset's
LOG_EVERY = 5 if SMOKE else None
EVAL_EVERY = 10 if SMOKE else None  # None: the preset's (0 = evaluate at the end only)
VAL_LIMIT = 10 if SMOKE else 0  # validation images evaluated at the end (0 = all)
SIMULATE_DISCONNECT = SMOKE  # kill the first training process after its first checkpoint
DATA_ROOT = DRIVE / "cityscapes" if IN_COLAB else Path("data/cityscapes")
RUN_DIR = DRIVE / "runs" / "06" if IN_COLAB else Path("runs/notebooks/06")

# %% [markdown]
# ## 1. Colab and Google Drive
#
# A Colab runtime is a virtual machine with a limited lifetime, which also ends when it sits
# idle too long; its local disk goes with it. Cityscapes (about 11 GB of zips) and the run
# directory must therefore live on Drive. The setup cell above cloned the repository and
# installed the package; the next cell mounts Drive (and does nothing outside Colab). Extract
# the two zips into `MyDrive/dgcn/cityscapes/` once; `dgcn check-data --root ...` checks it.

# %%
if IN_COLAB:
    from google.colab import drive

    drive.mount("/content/drive")
    DRIVE.mkdir(parents=True, exist_ok=True)
    print(f"Drive mounted: data from {DATA_ROOT}, run in {RUN_DIR}")
else:
    print(f"not in Colab: data from {DATA_ROOT}, run in {RUN_DIR} (inside the repository)")
HAVE_CITYSCAPES = (DATA_ROOT / "leftImg8bit").is_dir()
if HAVE_CITYSCAPES:
    counts = {split: len(datasets.scan_split(DATA_ROOT, split)) for split in ("train", "val")}
    print(f"Cityscapes at {DATA_ROOT}: {counts['train']} train, {counts['val']} val images")
else:
    print(f"no Cityscapes at {DATA_ROOT} (a GPU run would fall back to MiniCity)")

# %% [markdown]
# ## 2. Which preset for this GPU?
#
# The authors trained with 8 GPUs x 1 image of 832 x 832 and synchronised BatchNorm. One GPU
# reaches the same global batch of 8 by *gradient accumulation*: `train.micro_batch` images
# per forward pass, `8 / micro_batch` forward-backward passes per SGD step, whose gradients
# add up to the gradient of the batch of 8 (the loss of each pass is divided by the number of
# passes). What changes is BatchNorm, which sees `micro_batch` images at a time instead of 8.
#
# How many 832 x 832 images fit? The T4 preset (`cityscapes-colab-t4`) runs 2 per pass in
# fp16 on a T4, whose memory `torch` reports as 14.7 GiB, so we budget 7 GiB per image in a
# forward-backward pass of the ResNet-101 DGCNet at mixed precision and take the largest
# divisor of 8 that fits. This is a rule read off that preset, **not a measurement** (no GPU
# was available when this notebook was written); `benchmarks/train_step.py` prints the peak
# memory on your card. A T4 has no bf16 and gets the fp16 preset; Ampere and newer GPUs
# (L4, A100, H100) get `cityscapes-official`, whose `precision: auto` picks bf16.

# %%
GIB_PER_IMAGE = 7.0  # 832 x 832, ResNet-101 DGCNet, mixed precision: an estimate, see above


def choose_preset(device_name, memory_gib):
    """(preset, overrides, reason) for a CUDA device name and its memory; None = no GPU."""
    if device_name is None:
        return "minicity-cpu", [], "no CUDA GPU: the CPU preset on MiniCity"
    fits = [m for m in (8, 4, 2, 1) if m * GIB_PER_IMAGE <= memory_gib]
    micro = fits[0] if fits else 1
    if "T4" in device_name.upper():
        return "cityscapes-colab-t4", [], "T4: fp16 (no bf16), micro-batch 2 x 4 accumulation"
    preset = "cityscapes-official" if memory_gib >= 20 else "cityscapes-colab-t4"
    reason = f"{memory_gib:.0f} GiB: micro-batch {micro} x {8 // micro} accumulation steps"
    return preset, [f"train.micro_batch={micro}"], reason


# %% [markdown]
# The rule on the cards you are likely to meet (the memory is what `torch` reports, rounded):

# %%
# NBVAL_CHECK_OUTPUT
for card, gib in [
    ("Tesla T4", 14.7),
    ("NVIDIA L4", 22.0),
    ("NVIDIA A100-SXM4-40GB", 39.4),
    ("NVIDIA A100-SXM4-80GB", 79.1),
    ("NVIDIA H100 80GB HBM3", 79.1),
    (None, 0.0),
]:
    preset, overrides, reason = choose_preset(card, gib)
    print(f"{str(card):<24}{preset:<22}{' '.join(overrides):<22}{reason}")

# %% [markdown]
# And on this machine. In smoke mode the answer is always the CPU preset, shortened to a few
# iterations; a GPU preset without Cityscapes on disk falls back to MiniCity (on the GPU).

# %%
import torch

if torch.cuda.is_available():
    GPU_NAME = torch.cuda.get_device_name()
    GPU_GIB = torch.cuda.get_device_properties(0).total_memory / 2**30
    print(f"GPU: {GPU_NAME}, {GPU_GIB:.1f} GiB, capability {torch.cuda.get_device_capability()}")
else:
    GPU_NAME, GPU_GIB = None, 0.0
    print("no CUDA GPU")
PRESET, OVERRIDES, REASON = choose_preset(GPU_NAME, GPU_GIB)
if SMOKE:
    PRESET, OVERRIDES, REASON = "minicity-cpu", [], "smoke mode: the CPU preset, a few iterations"
elif PRESET != "minicity-cpu" and not HAVE_CITYSCAPES:
    PRESET, OVERRIDES, REASON = "minicity-cpu", [], f"no Cityscapes at {DATA_ROOT}: MiniCity"
if PRESET.startswith("cityscapes"):
    OVERRIDES.append(f"data.root={DATA_ROOT}")
for key, value in [
    ("train.iterations", ITERATIONS),
    ("train.checkpoint_every", CHECKPOINT_EVERY),
    ("train.log_every", LOG_EVERY),
    ("train.eval_every", EVAL_EVERY),
    ("data.val_limit", VAL_LIMIT or None),
]:
    if value is not None:
        OVERRIDES.append(f"{key}={value}")
print(f"decision: preset {PRESET!r} because {REASON}")
print(f"overrides: {OVERRIDES}")

# %% [markdown]
# The configuration is the preset's YAML plus these overrides, the same object the command
# line builds from `dgcn train --config PRESET --opt KEY=VALUE ...`:

# %%

cfg = dgcn.load_config(PRESET, OVERRIDES)
micro, accumulation = dgcn.training.accumulation_steps(cfg, world_size=1)
parameters = sum(p.numel() for p in models.build_model(cfg.model.name).parameters())
print(f"model {cfg.model.name}: {parameters:,} parameters")
print(
    f"{cfg.model.name}: {cfg.train.iterations} iterations, batch {cfg.train.batch_size} "
    f"(micro-batch {micro} x {accumulation} accumulation), crop {cfg.data.crop_size}, "
    f"lr {cfg.train.lr}, loss {cfg.train.loss}, precision {cfg.train.precision}, "
    f"checkpoint every {cfg.train.checkpoint_every}, eval {cfg.eval.mode}"
)

# %% [markdown]
# ## 3. What a checkpoint must hold for an exact resume
#
# SGD with momentum and the poly schedule is a deterministic map from a state to the next
# state, given the mini-batch. At iteration $t$ with $T$ iterations in all,
#
# $$
# \eta_t = \eta_0 \left(1 - \tfrac{t}{T}\right)^{0.9}, \qquad
# v_{t+1} = \mu\, v_t + \nabla_\theta \mathcal{L}(\theta_t; \mathcal{B}_t) + \lambda\,\theta_t,
# \qquad \theta_{t+1} = \theta_t - \eta_t\, v_{t+1},
# $$
#
# with momentum $\mu = 0.9$ and weight decay $\lambda$. To continue a run *as if nothing had
# happened* at iteration $t$ we need everything on the right-hand sides:
#
# - $\theta_t$: the model weights **and** the BatchNorm running statistics (`model`);
# - $v_t$: the momentum buffers (`optimizer`); restarting them at zero is a small jolt;
# - $t$ and $T$: the schedule (`scheduler`), or $\eta$ restarts at $\eta_0$;
# - the fp16 loss scale (`scaler`), or the first steps after a resume may overflow;
# - $\mathcal{B}_t$: *which* images and *which* random crops come next. The engine derives the
#   data order and every augmentation from `(seed, position in the stream)`
#   (`dgcn.training.sampling.ResumableSampler`), so iteration $t$ always sees the same batch;
# - the remaining random states (`rng`), e.g. for dropout.
#
# `last.pt` holds all of them and is written atomically (temporary file, then `os.replace`):
# a kill in the middle of a write leaves the previous checkpoint intact. Since $T$ is part of
# the schedule, a resumed run must keep `train.iterations`; to train longer, start a new run.
# `tests/test_training.py` checks that a resumed run ends bit-identical to an uninterrupted one.
#
# ## 4. Train, be disconnected, resume
#
# We launch training as a separate process, exactly as from a terminal
# (`python -m dgcn train ...`), wait for its first `last.pt`, and kill it (`SIGKILL`: no
# clean-up, like a Colab runtime that vanishes). In full mode this staging is off and the cell
# only reports whether a checkpoint from an earlier session is waiting.

# %%
import json
import time

LAST = RUN_DIR / "last.pt"
if SIMULATE_DISCONNECT:
    command = [sys.executable, "-m", "dgcn", "train", "--config", PRESET]
    command += ["--run-dir", str(RUN_DIR), "--overwrite", "--quiet", "--opt", *OVERRIDES]
    print("$ python", " ".join(command[1:]))
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    if LAST.exists():
        LAST.unlink()  # the old run's checkpoint must not be mistaken for the new one
    log_path = RUN_DIR.parent / "06-first-process.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        while process.poll() is None and not LAST.exists():
            time.sleep(0.1)
        process.kill()  # the "disconnect"
        process.wait()
    if not LAST.exists():
        raise RuntimeError(f"the training process stopped early:\n{log_path.read_text()}")
    KILLED_AT = dgcn.load_checkpoint(LAST)["iteration"]
    print(f"killed the training process after iteration {KILLED_AT}")
else:
    KILLED_AT = None
    found = f"at iteration {dgcn.load_checkpoint(LAST)['iteration']}" if LAST.exists() else "none"
    print(f"checkpoint waiting in {RUN_DIR}: {found}")

# %% [markdown]
# After a disconnect on Colab: run the notebook from the top again. The next cell calls
# `dgcn.train_or_load(cfg, RUN_DIR)`, which looks at `last.pt`: none, it starts the run
# (`fit(cfg, RUN_DIR)`); one short of $T$, it resumes it (`fit(cfg, RUN_DIR, resume=True)`;
# from a terminal, the same command with `--resume`); one at $T$, it only loads the model. A
# folder that holds a run of another config is refused, never overwritten.

# %%
state = f"at iteration {dgcn.load_checkpoint(LAST)['iteration']}" if LAST.exists() else "none"
print(f"checkpoint in {RUN_DIR} before: {state}")
model, cfg = dgcn.train_or_load(cfg, RUN_DIR, progress=not SMOKE)
summary = json.loads((RUN_DIR / "summary.json").read_text())["eval"]
print(f"mIoU {100 * summary['miou']:.1f} % on {cfg.data.val_split} ({cfg.data.root})")

# %% [markdown]
# Did the resumed process really continue the same run? Three checks against the files it
# left: the final checkpoint is at iteration $T$; the log has one record per `log_every`
# iterations with no gap or repetition across the kill (records written after the last
# checkpoint by the killed process are dropped on resume); and every logged learning rate is
# the poly formula at its iteration, so the schedule went on from the checkpoint, not from 0.

# %%
records = [json.loads(line) for line in (RUN_DIR / "metrics.jsonl").read_text().splitlines()]
train_records = [r for r in records if "loss" in r]
steps = [r["iteration"] for r in train_records]
assert dgcn.load_checkpoint(LAST)["iteration"] == cfg.train.iterations
assert steps == list(range(cfg.train.log_every, cfg.train.iterations + 1, cfg.train.log_every))
for r in train_records:
    expected = cfg.train.lr * (1 - r["iteration"] / cfg.train.iterations) ** cfg.train.poly_power
    assert abs(r["lr"] - expected) <= 1e-9 * cfg.train.lr, (r["iteration"], r["lr"], expected)
print(f"{len(steps)} training records at iterations {steps[0]}..{steps[-1]}: no gap, no repeat")

# %% [markdown]
# ## 5. Training curves
#
# `metrics.jsonl` holds one JSON record per `log_every` iterations (the total loss, the main
# and auxiliary cross-entropies, the learning rate, seconds per iteration and, on CUDA, the
# peak memory) and one per evaluation (mIoU). `viz.training_curves` draws them; the engine
# also writes the same figure as `curves.png` beside the checkpoint. The loss is
# $\mathcal{L} = \ell(\text{main}) + 0.4\,\mathrm{CE}(\text{aux})$, the auxiliary head sitting
# on layer3 as in the authors' code; $\ell$ is the cross-entropy (`minicity-cpu`, the paper's
# text) or the authors' OHEM cross-entropy (`cityscapes-official`). The dotted line marks
# where the first process was killed. In smoke mode the curves are short and say only that
# the loop runs; a real run is 60,000 iterations.

# %%
fig = viz.training_curves(records)
if KILLED_AT is not None:
    for ax in fig.axes:
        ax.axvline(KILLED_AT, color="0.5", ls=":", lw=1)
    fig.axes[0].text(KILLED_AT, fig.axes[0].get_ylim()[1], " kill + resume", va="top", fontsize=7)
fig

# %% [markdown]
# The run directory, as `fit` left it: `config.yaml` (the resolved configuration), `last.pt`,
# `metrics.jsonl`, `curves.png` and `summary.json` (the final evaluation). Notebook 07
# evaluates this checkpoint in every test mode.

# %%
print(sorted(p.name for p in RUN_DIR.iterdir()))
print(
    json.dumps(
        {k: v for k, v in json.loads((RUN_DIR / "summary.json").read_text()).items() if k != "eval"}
    )
)

# %% [markdown]
# ## 6. Many GPUs: `torchrun`
#
# On a machine with $N$ GPUs the same engine runs one process per GPU under
# [`torchrun`](https://pytorch.org/docs/stable/elastic/run.html), which sets `RANK`,
# `WORLD_SIZE` and `LOCAL_RANK`; `fit` then wraps the model in `DistributedDataParallel`,
# converts BatchNorm to `SyncBatchNorm` (statistics over all $N$ GPUs, as the authors) and
# shards the data stream. `train.batch_size` stays the **global** batch: each process takes
# `batch_size / (N x accumulation)` images per pass. With 8 GPUs that is one image each,
# the authors' setting exactly:
#
# ```bash
# torchrun --standalone --nproc_per_node=8 -m dgcn train --config cityscapes-official \
#     --run-dir runs/cityscapes-official --opt data.root=data/cityscapes
# # after an interruption: the same command with --resume
# torchrun --standalone --nproc_per_node=8 -m dgcn evaluate \
#     --checkpoint runs/cityscapes-official/last.pt
# ```
#
# Launch it from a terminal (a notebook kernel is a poor parent for 8 processes). The cell
# below prints the command for this machine's GPU count.

# %%
gpus = torch.cuda.device_count()
if gpus > 1:
    torchrun = (
        f"torchrun --standalone --nproc_per_node={gpus} -m dgcn train --config cityscapes-official"
        f" --run-dir runs/cityscapes-official --opt data.root={DATA_ROOT}"
    )
    print(f"{gpus} GPUs: run in a terminal from the repository root:\n{torchrun}")
else:
    print(f"skipped: {gpus} CUDA GPU(s) here; torchrun pays off with two or more")

# %% [markdown]
# ## Summary
#
# - The preset follows the hardware: `cityscapes-colab-t4` (fp16, micro-batch 2 x 4) on a T4,
#   `cityscapes-official` with the micro-batch the memory allows on L4 / A100 / H100, and
#   `minicity-cpu` without a GPU. Gradient accumulation keeps the global batch at the paper's 8.
# - A checkpoint that holds weights, optimiser, schedule, scaler, random states and the data
#   position makes a resumed run the same run; we killed a process and checked the schedule.
# - On Colab, keep data and runs on Drive and rerun the notebook after a disconnect.
# - `torchrun --nproc_per_node=N -m dgcn train ...` is the multi-GPU run, batch 8 in total.
#
# ## Exercises
#
# 1. Resume with a different `train.iterations` and compare the logged learning rates with the
#    formula. *Hint:* $T$ enters $\eta_t$; what does the scheduler's state hold?
# 2. Train twice from scratch with `train.micro_batch=2` and `train.micro_batch=4` (batch 8) on
#    MiniCity. Are the losses identical? *Hint:* which layer sees the micro-batch, not the batch?
# 3. Delete the momentum buffers from a checkpoint (`state["optimizer"]["state"] = {}`), save
#    it, resume, and compare the next few losses with an uninterrupted run.
# 4. Measure the peak memory of one 832 x 832 training step on your GPU with
#    `python benchmarks/train_step.py` and correct `GIB_PER_IMAGE`. *Hint:* the log records
#    `gpu_mem_gib` too.
#
# ## References
#
# - Zhang et al., *Dual Graph Convolutional Network for Semantic Segmentation*, BMVC 2019,
#   Sec. 4 (implementation details: batch 8, SGD with momentum, poly schedule, power 0.9).
# - The authors' training script in `lxtGH/GALD-DGCNet` (8 GPUs x 1 image, SyncBN, crop 832,
#   OHEM, 60,000 iterations), summarised in `docs/reference/official_dgcnet.md`.
# - PyTorch: [`torchrun`](https://pytorch.org/docs/stable/elastic/run.html),
#   [`DistributedDataParallel`](https://pytorch.org/docs/stable/notes/ddp.html),
#   [`SyncBatchNorm`](https://pytorch.org/docs/stable/generated/torch.nn.SyncBatchNorm.html),
#   [automatic mixed precision](https://pytorch.org/docs/stable/amp.html).
# - Colab: [mounting Google Drive](https://colab.research.google.com/notebooks/io.ipynb).
