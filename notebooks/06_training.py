# ---
# jupyter:
#   colab:
#     gpuType: T4
#     provenance: []
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
# # 06 · Training on a GPU
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcn-book/dgcn-book/blob/main/notebooks/06_training.ipynb)
#
# The earlier notebooks built DGCNet piece by piece; this one trains it, on a free Colab T4, a
# rented A100 or H100, or (in smoke mode) a laptop CPU. You will:
#
# - choose a preset and a micro-batch from the GPU's name and memory, from the activation
#   memory counted without a GPU, with the decision printed;
# - estimate a run's time on a T4, L4, A100 or H100 from its FLOP count, and plan a long run
#   over Colab sessions of a few hours (the data on the local disk, the run on Google Drive);
# - learn what a checkpoint must hold for a resumed run to be the same run;
# - kill a training process right after its first checkpoint, resume it, and check that the
#   learning-rate schedule went on exactly where it stopped;
# - stop another with `SIGTERM` (what Ctrl-C's `SIGINT` does too) and see it keep every
#   iteration: a checkpoint, one line with the resume command, exit status 143;
# - read the training curves from `metrics.jsonl`, and get the `torchrun` command for many GPUs.
#
# | mode | what runs | time |
# |---|---|---|
# | CPU smoke | `minicity-cpu`: 40 iterations killed, resumed; 20 SIGTERM'd | about 30 s (2 cores) |
# | GPU full | `cityscapes-official` (62,475 iterations, batch 8) or `-colab-t4` | section 3 |
# | CPU full | `minicity-cpu`, 250 iterations on MiniCity | about a minute (2 cores, estimate) |
#
# **What full mode is.** Without a GPU and Cityscapes (a GPU without Cityscapes falls back too),
# full mode trains `minicity-cpu`, a micro ResNet, from scratch for 250 iterations: the whole
# engine runs and leaves a weak model; smoke mode's 40 iterations say only that the loop runs.
# The models the book studies are committed in `experiments/checkpoints/` (notebooks 02, 03 and
# 07 load them).

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
# Every expensive constant, set once from `SMOKE` (`None`: the preset's own value). On Colab the
# run directory lives on Google Drive and the dataset on the runtime's local disk (section 1).

# %%
# ruff: noqa: E402, B018 (imports where first needed; a cell's last expression is shown)
# %matplotlib inline
import time
from pathlib import Path

DRIVE = Path("/content/drive/MyDrive")  # used only in Colab
ZIPS = DRIVE / "cityscapes-zips"  # the two Cityscapes zips, put on Drive once (notebook 05)
ITERATIONS = 40 if SMOKE else None  # None: the preset's (62,475 on Cityscapes, 250 on MiniCity)
CHECKPOINT_EVERY = 10 if SMOKE else None  # None: the preset's
LOG_EVERY = 5 if SMOKE else None
EVAL_EVERY = 10 if SMOKE else None  # None: the preset's (0 = evaluate at the end only)
VAL_LIMIT = 10 if SMOKE else 0  # validation images evaluated at the end (0 = all)
SIMULATE_DISCONNECT = SMOKE  # kill the first training process after its first checkpoint
DATA_ROOT = Path("data/cityscapes")  # in Colab: the runtime's local disk, unzipped each session
RUN_DIR = DRIVE / "dgcn" / "runs" / "06" if IN_COLAB else Path("runs/notebooks/06")
SESSION_HOURS = 5  # hours of training per Colab session: the free tier promises no length
SESSION_LIMIT = f"{SESSION_HOURS}h" if IN_COLAB else None  # train.time_limit: stop in time

# %% [markdown]
# ## 1. Colab: data on the local disk, the run on Drive
#
# A Colab runtime is a virtual machine with a limited lifetime (the free tier promises no
# session length: at best about 12 hours, less when GPUs are in demand or the notebook sits
# idle), and its local disk goes with it. Only what must outlive it goes to Google Drive:
#
# - **the Cityscapes zips** (about 11 GB and 250 MB) in `MyDrive/cityscapes-zips/`, put there
#   once (notebook 05, section 4). Extracted on Drive they would need about twice that, more
#   than a free 15 GB Drive holds, and thousands of small PNGs read slowly through the mount; so
#   each session unzips them onto the local disk, into `data/cityscapes` (the next cell skips
#   files already there);
# - **the run** (`RUN_DIR`: `config.yaml`, `last.pt` and the checkpoint before it,
#   `previous.pt`, `metrics.jsonl`, the curves). A checkpoint holds the weights and momentum
#   buffers in fp32, about 0.58 GB for the ResNet-101 DGCNet (printed in section 2), so the two
#   checkpoints and the zips fit in a free Drive.
#
# The next cell mounts Drive and unzips the data (in Colab only; elsewhere it only reports where
# things are); `dgcn check-data --root data/cityscapes` checks the tree.

# %%
if IN_COLAB:
    from google.colab import drive

    drive.mount("/content/drive")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("gtFine_trainvaltest.zip", "leftImg8bit_trainvaltest.zip"):
        if (ZIPS / name).is_file():  # -n: never overwrite, so a second run of the cell is quick
            start = time.time()
            unzip = ["unzip", "-q", "-n", str(ZIPS / name), "-d", str(DATA_ROOT)]
            subprocess.run(unzip, check=True)
            print(f"unzipped {name} onto the local disk in {time.time() - start:.0f} s")
        else:
            print(f"{ZIPS / name} is missing: put the Cityscapes zips there (notebook 05)")
    print(f"Drive mounted: data in {DATA_ROOT.resolve()} (local disk), run in {RUN_DIR}")
else:
    print(f"not in Colab: data from {DATA_ROOT}, run in {RUN_DIR} (inside the repository)")
HAVE_CITYSCAPES = (DATA_ROOT / "leftImg8bit").is_dir()
if HAVE_CITYSCAPES:
    counts = {split: len(datasets.scan_split(DATA_ROOT, split)) for split in ("train", "val")}
    print(f"Cityscapes at {DATA_ROOT}: {counts['train']} train, {counts['val']} val images")
else:
    print(f"no Cityscapes at {DATA_ROOT} (a GPU run would fall back to MiniCity)")

# %% [markdown]
# ## 2. Which preset for this GPU, and how many images per pass?
#
# The authors' released training script runs 8 GPUs x 1 image of 832 x 832 (crops of the
# 1024 x 2048 frames) with synchronised BatchNorm; the paper (as summarised) states a batch of 8
# and crops of 768 (`docs/reference/paper_results.md`). One GPU reaches the same batch by
# *gradient accumulation*: `train.micro_batch` images per forward pass, `8 / micro_batch`
# passes per SGD step, each pass's loss divided by the number of passes so that the gradients
# add up to that of the batch of 8. Only BatchNorm sees `micro_batch` images instead of 8.
#
# How many 832 x 832 images fit in one pass? Most of a step's memory is what the forward pass
# keeps for backward. `dgcn.models.profile.activation_memory` counts those bytes without a GPU,
# running the model on *fake* CUDA tensors (shapes and dtypes only) under the run's autocast
# precision; a batch of 2 minus a batch of 1 is the cost of one more image.
# `dgcn.training.plan.memory_plan` adds 12 bytes per parameter (fp32 weights, gradients and SGD
# momentum), 20 % on top of the activations (the gradients flowing back, OHEM's softmax, the
# allocator's rounding) and 1 GiB for the CUDA context and cuDNN, and picks the largest
# micro-batch that divides the batch and fits. These are **estimates**: `python
# benchmarks/train_step.py` measures the peak, and `metrics.jsonl` logs it as `gpu_mem_gib`. A
# T4 has no bf16 and gets the fp16 preset (with a GradScaler); Ampere and newer GPUs (L4, A100,
# H100) get `cityscapes-official`, whose `precision: auto` picks bf16.
#
# **Backbone weights.** `cityscapes-official` and `cityscapes-colab-t4` start from an ImageNet
# deep-stem ResNet-101 at `data/pretrained/resnet101-imagenet.pth`, MIT CSAIL's file (from
# their semantic-segmentation-pytorch), downloaded there on first use from
# http://sceneparsing.csail.mit.edu/model/pretrained_resnet/resnet101-imagenet.pth (no checksum
# is published; the download prints the sha256 it computed). Offline, the run stops with one
# line naming that address: put the file at that path by hand. The authors' own copy (stem
# named `conv1.0` ... `conv1.6`) loads from the same path. `cityscapes-colab` uses
# torchvision's ImageNet ResNet-101 instead, which torchvision downloads itself, at the price of
# a plain 7x7 stem and no multi-grid (`docs/reference/pretrained_backbones.md`).

# %%
official = dgcn.load_config("cityscapes-official")
counts = dgcn.training.plan.model_counts(official, "bf16")
print(
    f"{official.model.name} at {official.data.crop_size}: "
    f"{counts['per_image_bytes'] / 2**30:.2f} GiB kept for backward per image (bf16/fp16), "
    f"{counts['constant_bytes'] / 2**30:.2f} GiB whatever the batch (autocast's weight copies)"
)
print(
    f"{counts['parameters']:,} parameters: {12 * counts['parameters'] / 2**30:.2f} GiB of "
    f"weights, gradients and momentum; a checkpoint holds about "
    f"{8 * counts['parameters'] / 1e9:.2f} GB (weights and momentum, fp32)"
)


# %%
def choose_preset(device_name, memory_gib):
    """(preset, overrides, reason) for a CUDA device name and its memory; None = no GPU."""
    if device_name is None:
        return "minicity-cpu", [], "no CUDA GPU: the CPU preset on MiniCity"
    t4 = "T4" in device_name.upper()
    preset = "cityscapes-colab-t4" if t4 or memory_gib < 20 else "cityscapes-official"
    plan = dgcn.training.plan.memory_plan(dgcn.load_config(preset), memory_gib, bf16=not t4)
    micro, steps = plan["micro_batch"], plan["accumulation"]
    reason = (
        f"{memory_gib:.1f} GiB, {plan['precision']}: micro-batch {micro} x {steps} accumulation "
        f"steps, about {plan['planned_gib']:.1f} GiB planned"
    )
    if not plan["fits"]:
        reason += " (more than the card has: expect an out-of-memory error)"
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
# And on this machine. The notebook asks Colab for a T4 GPU (its accelerator metadata), but a
# runtime may still start without one: then the cell stops with one line saying how to switch
# (Runtime > Change runtime type) rather than spend the session on the CPU preset. With a GPU
# it shows what `nvidia-smi` reports and the plan `dgcn plan` makes for that card.

# %%
import shutil

import torch

try:  # on Colab without a GPU: one line on how to switch, rather than hours of CPU training
    GPU_NAME, GPU_GIB = dgcn.training.plan.this_gpu(IN_COLAB, SMOKE)
except dgcn.errors.ConfigError as err:
    raise SystemExit(f"stop: {err}") from None
if GPU_NAME is None:
    print("no CUDA GPU")
else:
    print(f"GPU: {GPU_NAME}, {GPU_GIB:.1f} GiB, capability {torch.cuda.get_device_capability()}")
    if shutil.which("nvidia-smi"):  # the driver's view: name, memory, what is in use
        query = ["nvidia-smi", "--query-gpu=name,memory.total,memory.used", "--format=csv"]
        print(subprocess.run(query, capture_output=True, text=True).stdout.strip())
    card = dgcn.training.plan.card_for(GPU_NAME)
    if card is not None:  # what `dgcn plan --gpu ...` prints for this card
        names = ("cityscapes-colab-t4", "cityscapes-official")
        print(dgcn.training.plan.plan_markdown({n: dgcn.load_config(n) for n in names}, [card]))
PRESET, OVERRIDES, REASON = choose_preset(GPU_NAME, GPU_GIB)

# %% [markdown]
# In smoke mode the answer is always the CPU preset, shortened to a few iterations; a GPU preset
# without Cityscapes on disk falls back to MiniCity (on the GPU); in Colab the run also gets
# `train.time_limit=5h` (section 3). Then the notebook's schedule constants:

# %%
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
    ("train.time_limit", SESSION_LIMIT),
]:
    if value is not None:
        OVERRIDES.append(f"{key}={value}")
print(f"decision: preset {PRESET!r} because {REASON}")
print(f"overrides: {OVERRIDES}")

# %% [markdown]
# The configuration is the preset's YAML plus these overrides, the object that `dgcn train
# --config PRESET --opt KEY=VALUE ...` builds. A run folder that already holds a run keeps
# **its own** configuration (a run started on a T4 in fp16 with micro-batch 2 stays that run
# when a later session gets an A100), so the next cell reads `RUN_DIR/config.yaml` when it
# exists instead of this GPU's choice. (The staged disconnect of section 5 starts afresh.)

# %%
RUN_CONFIG = RUN_DIR / "config.yaml"
if RUN_CONFIG.is_file() and not SIMULATE_DISCONNECT:
    cfg = dgcn.load_config(RUN_CONFIG)
    print(f"{RUN_DIR} holds a run: its own config ({cfg.name}) is used, not this GPU's choice")
else:
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
# ## 3. How long? Time per preset and GPU, and a plan for short sessions
#
# A training iteration costs about three forward passes in FLOPs (backward computes two
# products per layer, for the input's gradient and for the weights'), each counted on the meta
# device (`dgcn summary`, notebook 04) at the preset's crop. The official run, 62,475
# iterations of 8 crops of 832 (the authors' script, given 60,000 steps, repeats its list of
# 2,975 images 21 times: `docs/reference/official_dgcnet.md`), is
# $3 \times \text{FLOPs}_\text{forward} \times 8 \times 62{,}475 \approx 2.45 \times 10^{18}$
# FLOPs; `cityscapes-paper` trains 768 crops for 60,000, its own choice, as the paper (as
# summarised) gives no length. A GPU delivers its peak times the *utilisation* a network
# reaches on it, unknown before a run: convolutions use the tensor cores, but BatchNorm, ReLU,
# the upsampling and the loss are bound by memory bandwidth, and the input pipeline and the
# gradient exchange add waits. The table assumes 20 % to 40 % of the dense fp16/bf16 peak of
# NVIDIA's datasheets (T4 65 TFLOP/s, L4 121, A100 312, H100 SXM 989; their larger figures
# assume 2:4 sparsity, which dense training does not use). **Every number in it is an
# estimate** until a GPU run measures it (`benchmarks/train_step.py`: seconds per iteration and
# utilisation, `mfu`; a run logs `seconds_per_iter`). On the command line: `dgcn plan`.

# %%
# NBVAL_CHECK_OUTPUT
PLAN_CONFIGS = {n: dgcn.load_config(n) for n in ("cityscapes-official", "cityscapes-paper")}
for name, plan_cfg in PLAN_CONFIGS.items():
    flops = dgcn.training.plan.training_flops(plan_cfg)
    print(f"{name}: {flops:.2e} FLOPs for {plan_cfg.train.iterations:,} iterations")
print()
print(dgcn.training.plan.plan_markdown(PLAN_CONFIGS))

# %% [markdown]
# Eight H100s at one image each are the least certain row: one 832 x 832 image per GPU and pass
# is a small workload, so kernel launches, SyncBatchNorm and the gradient exchange weigh more,
# and the loader must deliver hundreds of images per second.
#
# A free Colab T4 cannot run 26 to 52 hours in one session, so the run is split into sessions,
# each ending on purpose before Colab ends it:
#
# 1. `train.time_limit=5h` (`SESSION_HOURS`): after 5 hours of training the run writes a
#    checkpoint, stops and prints the command that resumes it. The free tier does not promise
#    12 hours, so the plan assumes less; a limit shorter than the session costs one more
#    session start (clone, install, unzip: minutes).
# 2. At the end of each session, `drive.flush_and_unmount()` (section 8) writes through what
#    Drive still holds in its cache.
# 3. In the next session, run the notebook from the top again: it unzips the data, reads the
#    run's own config and resumes from `last.pt` (or `previous.pt`, should it be unreadable).
#
# A session that ends without warning loses at most `train.checkpoint_every` iterations (500
# for the T4 preset); a `SIGTERM` loses none (section 5), but whether Colab sends one before it
# recycles a runtime is not known here. The plan for the T4 preset, from the table's assumptions:

# %%
t4, plan_cfg = dgcn.training.plan.GPUS["T4"], dgcn.load_config("cityscapes-colab-t4")
fewest, most = dgcn.training.plan.estimate_hours(plan_cfg, t4)
per_iteration = [3600 * hours / plan_cfg.train.iterations for hours in (fewest, most)]
lost = [plan_cfg.train.checkpoint_every * seconds / 60 for seconds in per_iteration]
sessions = [int(-(-hours // SESSION_HOURS)) for hours in (fewest, most)]
print(
    f"cityscapes-colab-t4 on a T4: {fewest:.0f}-{most:.0f} h of training, "
    f"{per_iteration[0]:.1f}-{per_iteration[1]:.1f} s per iteration (estimates)"
)
print(f"sessions of {SESSION_HOURS} h of training: {sessions[0]} to {sessions[1]}")
print(
    f"an unexpected end loses at most {plan_cfg.train.checkpoint_every} iterations, "
    f"about {lost[0]:.0f}-{lost[1]:.0f} min"
)

# %% [markdown]
# ## 4. What a checkpoint must hold for an exact resume
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
# with momentum $\mu = 0.9$ and weight decay $\lambda$ (base rate $\eta_0 = 0.01$, power 0.9 and
# $\mu = 0.9$ in the paper as summarised and in the authors' scripts alike; $\lambda$ is 1e-4 in
# the first and 5e-4 in the second: `docs/reference/paper_results.md`). To continue a run *as
# if nothing had happened* at iteration $t$ we need everything on the right-hand sides:
#
# - $\theta_t$: the model weights **and** the BatchNorm running statistics (`model`);
# - $v_t$: the momentum buffers (`optimizer`); restarting them at zero is a small jolt;
# - $t$ and $T$: the schedule (`scheduler`), or $\eta$ restarts at $\eta_0$;
# - the fp16 loss scale (`scaler`), or the first steps after a resume may overflow;
# - $\mathcal{B}_t$: *which* images and crops come next: the engine derives the data order and
#   every augmentation from `(seed, position in the stream)`
#   (`dgcn.training.sampling.ResumableSampler`), so iteration $t$ always sees the same batch;
# - the remaining random states (`rng`), e.g. for dropout.
#
# `last.pt` holds all of them and is written atomically (temporary file, then `os.replace`): a
# kill in the middle of a write leaves the previous checkpoint intact, and the one before the
# newest stays beside it as `previous.pt`, from which a resume starts when `last.pt` cannot be
# read (a copy to Drive cut short, say). Since $T$ is part of the schedule, a resumed run must
# keep `train.iterations` (to train longer, start a new run). `tests/test_training.py` checks
# that a resumed run ends bit-identical to an uninterrupted one.
#
# ## 5. Train, be disconnected, resume
#
# We launch training as a separate process, exactly as from a terminal
# (`python -m dgcn train ...`), wait for its first `last.pt`, and kill it (`SIGKILL`: no
# clean-up, like a Colab runtime that vanishes). In full mode this staging is off and the cell
# only reports whether a checkpoint from an earlier session is waiting.

# %%
import json

LAST = RUN_DIR / "last.pt"
if SIMULATE_DISCONNECT:
    command = [sys.executable, "-m", "dgcn", "train", "--config", PRESET]
    command += ["--run-dir", str(RUN_DIR), "--overwrite", "--quiet", "--opt", *OVERRIDES]
    print("$ python", " ".join(command[1:]))
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LAST.unlink(missing_ok=True)  # the old run's checkpoint must not be taken for the new one
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
# After a disconnect, or in the next Colab session: run the notebook from the top again. The
# next cell takes the run's own config from `RUN_DIR/config.yaml` (written by the run's first
# process, here the killed one) and calls `dgcn.train_or_load(cfg, RUN_DIR)`, which looks at
# `last.pt`: none, it starts the run (`fit(cfg, RUN_DIR)`); one short of $T$, it resumes it
# (`fit(cfg, RUN_DIR, resume=True)`; from a terminal, the same command with `--resume`); one at
# $T$, it only loads the model. A folder that holds a run of another config is refused, never
# overwritten; when `train.time_limit` stops the run first, the cell says so.

# %%
state = f"at iteration {dgcn.load_checkpoint(LAST)['iteration']}" if LAST.exists() else "none"
print(f"checkpoint in {RUN_DIR} before: {state}")
if RUN_CONFIG.is_file():
    cfg = dgcn.load_config(RUN_CONFIG)  # the run's own config, not this machine's choice
    print(f"the run's own config: {cfg.name}, precision {cfg.train.precision}")
model, cfg = dgcn.train_or_load(cfg, RUN_DIR, progress=not SMOKE)
REACHED = dgcn.load_checkpoint(LAST)["iteration"]
FINISHED = REACHED >= cfg.train.iterations
if FINISHED:
    summary = json.loads((RUN_DIR / "summary.json").read_text())["eval"]
    print(f"mIoU {100 * summary['miou']:.1f} % on {cfg.data.val_split} ({cfg.data.root})")
    if SMOKE:
        print("(a 40-iteration smoke run: it shows that training and evaluation run, not a result)")
else:
    print(
        f"stopped at iteration {REACHED} of {cfg.train.iterations} (the session's time limit): "
        "run this notebook again in the next session to resume"
    )

# %% [markdown]
# Did the resumed process really continue the same run? Checks against the files it left: the
# log has one record per `log_every` iterations up to the checkpoint (iteration $T$ when the
# run is finished) with no gap or repetition across the kill (records written after the last
# checkpoint by the killed process are dropped on resume); and every logged learning rate is
# the poly formula at its iteration, so the schedule went on from the checkpoint, not from 0.

# %%
records = [json.loads(line) for line in (RUN_DIR / "metrics.jsonl").read_text().splitlines()]
train_records = [r for r in records if "loss" in r]
steps = [r["iteration"] for r in train_records]
every = cfg.train.log_every
expected_steps = list(range(every, REACHED + 1, every))
if REACHED % every and (FINISHED or steps[-1:] == [REACHED]):  # the last, shorter window
    expected_steps.append(REACHED)
assert steps == expected_steps, (steps, expected_steps)
for r in train_records:
    expected = cfg.train.lr * (1 - r["iteration"] / cfg.train.iterations) ** cfg.train.poly_power
    assert abs(r["lr"] - expected) <= 1e-9 * cfg.train.lr, (r["iteration"], r["lr"], expected)
print(f"{len(steps)} training records at iterations {steps[0]}..{steps[-1]}: no gap, no repeat")

# %% [markdown]
# **SIGKILL or SIGTERM: what a stop keeps.** The kill above was `SIGKILL`, which a process
# cannot catch: it ends at once, like a runtime that vanishes, and the run resumes from its last
# periodic checkpoint, training the iterations since (up to `train.checkpoint_every`) again.
# `SIGTERM` (what `kill PID` and `docker stop` send, as do schedulers that warn before they end
# a job) and `SIGINT` (Ctrl-C, Jupyter's interrupt button) are requests the run handles, and
# they keep every iteration done: `dgcn train` acknowledges the signal on stderr, finishes the
# iteration in progress, writes `last.pt` as the periodic checkpoint would, prints one line on
# stdout with the command that resumes the run, and exits with status 128 + the signal's number
# (143 for `SIGTERM`, 130 for `SIGINT`). Further signals cannot cut the write short; an
# evaluation the signal cut short runs first on resume. In a notebook, interrupting the kernel
# stops `dgcn.train_or_load` (or `fit`) the same way: it raises
# `dgcn.training.interrupt.Interrupted`, a `KeyboardInterrupt`, once the checkpoint is written,
# and running the cell again resumes. (A new start that fails before its first checkpoint, or
# is stopped during its set-up, leaves no folder behind: the same command starts again.)
#
# The next cell does it for real, in smoke mode: a second run in its own folder, the same
# preset and overrides with three more (a later `--opt` value replaces an earlier one): 20
# iterations with `train.checkpoint_every=1000`, so that when `SIGTERM` comes, after two log
# records (10 iterations), no checkpoint exists and a `SIGKILL` would lose them all; and
# `train.eval_every=0`, so that the signal lands in a training iteration.

# %%
import shlex
import shutil
import signal

STOP_DIR, STOP_ITERATIONS = RUN_DIR.parent / "06-sigterm", 20  # the run above stays as it is
if SIMULATE_DISCONNECT:
    stop_opts = [*OVERRIDES, f"train.iterations={STOP_ITERATIONS}", "train.checkpoint_every=1000"]
    stop_command = [sys.executable, "-m", "dgcn", "train", "--config", PRESET, "--quiet"]
    stop_command += ["--run-dir", str(STOP_DIR), "--opt", *stop_opts, "train.eval_every=0"]
    print("$ python", " ".join(stop_command[1:]))
    shutil.rmtree(STOP_DIR, ignore_errors=True)  # an earlier run's log would be read as its own
    stop_log, deadline = STOP_DIR / "metrics.jsonl", time.time() + 120  # the cell cannot hang
    stopper = subprocess.Popen(stop_command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    logged = 0  # records in the run's log: 2 = 10 iterations done
    while stopper.poll() is None and logged < 2 and time.time() < deadline:
        time.sleep(0.05)
        logged = stop_log.read_text().count("\n") if stop_log.is_file() else 0
    checkpoint_before = (STOP_DIR / "last.pt").exists()
    stopper.send_signal(signal.SIGTERM)  # had the run ended, or not logged in time: see below
    try:
        out, err = [stream.decode() for stream in stopper.communicate(timeout=60)]
    except subprocess.TimeoutExpired:
        stopper.kill()
        raise
    print(f"sent SIGTERM after {logged} log records; a checkpoint before it: {checkpoint_before}")
else:
    print("skipped: the staged stops run in smoke mode only (here: a second run of the preset)")

# %% [markdown]
# What the stopped process left: its exit status, the line it wrote on stderr when the signal
# came, its one line on stdout, and a `last.pt` at the iteration that the line names, which no
# periodic checkpoint could have written.

# %%
if SIMULATE_DISCONNECT:
    assert stopper.returncode == 128 + signal.SIGTERM == 143, (stopper.returncode, err)
    STOPPED_AT = dgcn.load_checkpoint(STOP_DIR / "last.pt")["iteration"]
    print(f"exit status {stopper.returncode} = 128 + {int(signal.SIGTERM)} ({signal.SIGTERM.name})")
    print("stderr:", *[line for line in err.splitlines() if line.startswith("dgcn:")])
    print("stdout:", out.strip())
    print(f"last.pt: iteration {STOPPED_AT} (checkpoint_every=1000: the stop wrote it)")
    assert logged == 2 and not checkpoint_before and STOPPED_AT % 1000  # the stop wrote it
    assert 2 * LOG_EVERY <= STOPPED_AT < STOP_ITERATIONS
    line = f"stopped at iteration {STOPPED_AT}/{STOP_ITERATIONS} by SIGTERM; resume with: "
    assert out.count("\n") == 1 and out.startswith(line)
else:
    STOPPED_AT = None
    print("skipped: no staged stop in full mode")

# %% [markdown]
# The line's command resumes the run (here as `python -m dgcn`, with `--quiet`) to the end of the
# schedule, and `config-history.jsonl` records the two starts. `tests/test_interrupts.py` checks,
# with the same real signals, that such a resumed run ends bit-identical to one never stopped.

# %%
if SIMULATE_DISCONNECT:
    resume_command = shlex.split(out.split("resume with: ")[1])  # ['dgcn', 'train', ...]
    resume_args = [sys.executable, "-m", *resume_command, "--quiet"]
    resumed = subprocess.run(resume_args, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    print(resumed.stdout.strip())
    starts = [json.loads(line)["iteration"] for line in (STOP_DIR / "config-history.jsonl").open()]
    stop_steps = [json.loads(line) for line in stop_log.read_text().splitlines()]
    stop_steps = [r["iteration"] for r in stop_steps if "loss" in r]
    print(f"starts at iterations {starts}; training records at {stop_steps}")
    assert dgcn.load_checkpoint(STOP_DIR / "last.pt")["iteration"] == STOP_ITERATIONS
    assert starts == [0, STOPPED_AT]  # the first start, and the resume at the stop
    assert stop_steps == list(range(LOG_EVERY, STOP_ITERATIONS + 1, LOG_EVERY))  # no gap
else:
    print("skipped: no staged stop in full mode")

# %% [markdown]
# ## 6. Training curves
#
# `metrics.jsonl` holds one JSON record per `log_every` iterations (the total loss, the main
# and auxiliary cross-entropies, the learning rate, seconds per iteration and, on CUDA, the peak
# memory) and one per evaluation (mIoU, kept as a fraction and drawn in %). `viz.training_curves`
# draws them, and the engine writes the same figure as `curves.png` beside the checkpoint. The
# loss is $\mathcal{L} = \ell(\text{main}) + 0.4\,\mathrm{CE}(\text{aux})$, the auxiliary head
# on layer3 as in the authors' code; $\ell$ is the cross-entropy (`minicity-cpu`; the paper's
# text as summarised) or the authors' OHEM cross-entropy (`cityscapes-official`). The dotted
# line marks the kill. In smoke mode the curves cover 40 iterations: a picture of the loop, not
# of what a model learned.

# %%
fig = viz.training_curves(records)
if KILLED_AT is not None:
    for ax in fig.axes:
        ax.axvline(KILLED_AT, color="0.5", ls=":", lw=1)
    fig.axes[0].text(KILLED_AT, fig.axes[0].get_ylim()[1], " kill + resume", va="top", fontsize=7)
if SMOKE:
    fig.suptitle("smoke run, 40 iterations: the training loop, not a trained model", fontsize=9)
fig

# %% [markdown]
# **What a finished run's curves look like.** The repository keeps the log of the CPU run that
# made the committed backbone (`experiments/checkpoints/minicity-backbone.pt`, exported from its
# `last.pt`): `dgcn train --config minicity-backbone --run-dir runs/minicity-backbone-v2`, 750
# iterations from scratch on MiniCity version 2, the data every committed model is trained on;
# its `metrics.jsonl` and `summary.json` are in `experiments/results/minicity-backbone/`. It
# reached 33.4 % mIoU on MiniCity val (50 whole images) in about 14 minutes on a CPU, at 0.14 to
# 3.55 s per iteration. The loss falls fastest in the first 100 iterations (3.10 at iteration
# 10, 1.00 at 100, 0.68 at 750) as the poly schedule takes the learning rate to zero; the mIoU
# panel has one point, as the preset evaluates only at the end (`train.eval_every: 0`).
# Retraining gives close but not bit-identical weights (on MiniCity version 1 a re-run reached
# 32.3 % where the committed run of then had 32.1 %), which is why the ablation checks the
# file's sha256.

# %%
# NBVAL_CHECK_OUTPUT
FINISHED_RUN = Path("experiments/results/minicity-backbone")
finished = [json.loads(line) for line in (FINISHED_RUN / "metrics.jsonl").read_text().splitlines()]
finished_miou = json.loads((FINISHED_RUN / "summary.json").read_text())["eval"]["miou"]
steps_logged = [r for r in finished if "loss" in r]
losses = {r["iteration"]: r["loss"] for r in steps_logged}
speeds = [r["seconds_per_iter"] for r in steps_logged]
minutes = sum(speeds) * 10 / 60  # one record per 10 iterations (log_every)
print(f"{len(losses)} logged steps, loss {losses[10]:.2f} at step 10, {losses[750]:.2f} at 750")
print(f"about {minutes:.0f} min of training, {min(speeds):.2f}-{max(speeds):.2f} s per iteration")
print(f"final mIoU {100 * finished_miou:.1f} % on MiniCity val (whole images)")
assert len(losses) == 75 and round(100 * finished_miou, 1) == 33.4
assert [round(losses[t], 2) for t in (10, 100, 750)] == [3.10, 1.00, 0.68]
assert round(minutes) == 14 and (round(min(speeds), 2), round(max(speeds), 2)) == (0.14, 3.55)

# %%
fig = viz.training_curves(finished)
fig.suptitle("dgcn train --config minicity-backbone: the committed backbone's run", fontsize=9)
ax = fig.axes[-1]  # one evaluation, at the end: show it on the run's whole length
ax.set_xlim(fig.axes[0].get_xlim())
ax.set_ylim(0, 50)
label, arrow = f"{100 * finished_miou:.1f} %", {"arrowstyle": "->", "lw": 0.8}
ax.annotate(label, (750, 100 * finished_miou), (520, 40), fontsize=8, arrowprops=arrow)
fig

# %% [markdown]
# The run directory, as `fit` left it: `config.yaml` (the resolved configuration), `last.pt`,
# `metrics.jsonl`, `curves.png`, `config-history.jsonl` (one line per start) and, once finished,
# `summary.json`. Notebook 07's `USE_NOTEBOOK_06 = True` evaluates this run's checkpoint instead
# of the committed models (after smoke mode, a 40-iteration model that only tests the code).

# %%
print(sorted(p.name for p in RUN_DIR.iterdir()))
if FINISHED:
    summary = json.loads((RUN_DIR / "summary.json").read_text())
    print(json.dumps({k: v for k, v in summary.items() if k != "eval"}))

# %% [markdown]
# ## 7. Many GPUs: `torchrun`
#
# On a machine with several GPUs the same engine runs one process per GPU under
# [`torchrun`](https://pytorch.org/docs/stable/elastic/run.html), which sets `RANK`,
# `WORLD_SIZE` and `LOCAL_RANK`; `fit` then wraps the model in `DistributedDataParallel`,
# converts BatchNorm to `SyncBatchNorm` (statistics over all GPUs, as the authors) and shards
# the data stream. `train.batch_size` stays the **global** batch: each process takes
# `batch_size / (WORLD_SIZE x accumulation)` images per pass; with 8 GPUs, one image each, the
# authors' setting exactly:
#
# ```bash
# torchrun --standalone --nproc_per_node=8 -m dgcn train --config cityscapes-official \
#     --run-dir runs/cityscapes-official --opt data.root=data/cityscapes
# # after an interruption: the same command with --resume
# torchrun --standalone --nproc_per_node=8 -m dgcn evaluate \
#     --checkpoint runs/cityscapes-official/last.pt
# ```
#
# Launch it from a terminal (a notebook kernel is a poor parent for 8 processes); the cell
# prints the command for this machine's GPU count.

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
# ## 8. The end of a Colab session
#
# Drive writes through a local cache: before the session ends, flush it and unmount, so that the
# last checkpoint is on Drive in full. To stop earlier by hand, interrupt the training cell
# (Jupyter sends the kernel `SIGINT`): the run writes its checkpoint first (section 5; that
# Colab's button does the same is expected, not checked here).

# %%
if IN_COLAB:
    drive.flush_and_unmount()
    print(f"Drive flushed and unmounted: {RUN_DIR} is complete on Drive")
else:
    print("not in Colab: nothing to flush")

# %% [markdown]
# ## Summary
#
# - The preset follows the hardware (`cityscapes-colab-t4`, fp16, on a T4; `cityscapes-official`,
#   bf16, on L4 / A100 / H100; `minicity-cpu` without a GPU or Cityscapes), the micro-batch the
#   memory rule (about 2.74 GiB per 832 x 832 image, counted on fake CUDA tensors): 8 x 1 on an
#   A100 40GB, 2 x 4 with gradient accumulation on a T4.
# - The official run (62,475 iterations of 8 crops of 832; nothing trains on whole frames) takes
#   an estimated 26-52 h on a T4, 5.5-10.9 h on an A100, 1.7-3.4 h on an H100. On Colab it runs
#   in sessions, each ended by `train.time_limit=5h` with a checkpoint on Drive, the data
#   unzipped to the local disk each time.
# - A checkpoint with weights, optimiser, schedule, scaler, random states and data position
#   makes a resumed run the same run: after a kill, every logged learning rate stayed on the
#   poly formula. `SIGTERM` or Ctrl-C loses nothing (a checkpoint, one resume line, exit status
#   143 or 130); `SIGKILL`, like a vanished runtime, goes back to the last periodic checkpoint.
# - Several GPUs run the same engine under `torchrun` (8 GPUs: one image each). Full mode on a
#   CPU (250 iterations) and smoke mode (40) test the engine; the models the book studies are
#   committed in `experiments/checkpoints/`.

# %% [markdown]
# ## Check your understanding
#
# **Q1.** With `train.micro_batch=2` and a batch of 8, the run takes 4 forward-backward passes
# per SGD step. What is exactly the same as one pass over 8 images, and what is not?
#
# <details><summary>Answer</summary>
#
# The gradient is the same: each pass's loss is divided by the number of passes and the loss
# is averaged per image, so the accumulated gradient is that of the mean over the 8 images.
# BatchNorm is not: in training mode it normalises with the statistics of the 2 images of the
# pass, not of all 8, and its running statistics are updated 4 times per step.
#
# </details>
#
# **Q2.** Why must a resumed run keep `train.iterations`? And section 5 stopped one run with
# `SIGKILL` and another with `SIGTERM`: why does the `SIGTERM`'d run lose no iteration, while
# the `SIGKILL`'d one loses those since its last checkpoint?
#
# <details><summary>Answer</summary>
#
# The total $T$ is part of the poly schedule $\eta_t = \eta_0 (1 - t/T)^{0.9}$: with another
# $T$ every learning rate from the resume on differs, a different run that merely starts from
# the same weights.
#
# A process can catch `SIGTERM`: dgcn's handler only notes it, the loop finishes the iteration
# in progress (half an SGD step is a state no checkpoint holds) and writes the whole state at
# that iteration, so the resume continues exactly as if never stopped. `SIGKILL` cannot be
# caught: the newest state on disk is the last periodic checkpoint. Resuming from it is exact
# too (the same state, the same batches from `(seed, position)`), but the iterations since are
# trained again and their log records dropped.
#
# </details>
#
# **Q3.** A sentence says DGCNet was trained "for 60k iterations at 1024x2048, as in the
# paper". What is wrong with it?
#
# <details><summary>Answer</summary>
#
# Three things. 60,000 is the number the authors' training script is given; it runs 62,475
# iterations, and the paper (as summarised) gives no length. Training uses crops, not whole
# frames: 768 in the paper as summarised, 832 in the authors' script. And neither is a fact
# about the paper's full text, not available here (check arXiv 1909.06121).
#
# </details>
#
# **Q4.** On Colab, why does the dataset go to the runtime's local disk but the run to Google
# Drive?
#
# <details><summary>Answer</summary>
#
# The run (config, checkpoints, metrics) must outlive the runtime, whose local disk goes with
# the session; the dataset can be unzipped again from Drive each session, and thousands of
# small PNGs read much faster from the local disk than through the mount (extracted on Drive
# they would also need about twice the zips' space).
#
# </details>
#
# **Q5.** You ran this notebook in full mode on a laptop. Is the model in
# `runs/notebooks/06/last.pt` the one to study in notebooks 02, 03 and 07?
#
# <details><summary>Answer</summary>
#
# No. Full mode on a CPU trains `minicity-cpu` for 250 iterations from scratch: a short run
# that exercises training, checkpoints and resume. The models the book studies are the trained
# ones committed in `experiments/checkpoints/`, which those notebooks load.
#
# </details>

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** The authors' script runs 62,475 iterations with the poly schedule (base rate
# 0.01, power 0.9). What is the learning rate half-way ($t = T/2$)? And at iteration 60,000,
# where a run that stopped at the nominal step count would end?
#
# <details><summary>Worked answer</summary>
#
# $\eta_t = 0.01\,(1 - t/T)^{0.9}$. Half-way, $0.01 \times 0.5^{0.9} = 0.00536$. At 60,000,
# $1 - 60{,}000/62{,}475 = 2{,}475/62{,}475 = 0.0396$ and $\eta = 0.01 \times 0.0396^{0.9} =
# 0.000547$, 5.5 % of the base rate: the last 2,475 iterations anneal from there to 0.
# The package's scheduler gives the same factors:
#
# ```python
# opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
# factor = dgcn.training.poly_scheduler(opt, total=62_475).lr_lambdas[0]
# 0.01 * factor(60_000)   # 0.000547
# ```
#
# </details>
#
# **Exercise 2.** The authors' list holds the 2,975 Cityscapes training images, and the script
# repeats it to cover 60,000 samples per process. How many copies is that, and how many passes
# over the training set does the whole run of 62,475 iterations of 8 images make?
#
# <details><summary>Worked answer</summary>
#
# $\lceil 60{,}000 / 2{,}975 \rceil = 21$ copies, $21 \times 2{,}975 = 62{,}475$ entries, one
# iteration per entry in each of the 8 processes. Images seen: $62{,}475 \times 8$, so
# $62{,}475 \times 8 / 2{,}975 = 168$ passes over the training set (each a random crop).
#
# </details>
#
# **Exercise 3.** Section 4 says that restarting the momentum buffers at zero is "a small jolt".
# With $\mu = 0.9$ and a constant gradient $g$, after how many iterations does the buffer
# $v_t$ reach 95 % of its steady value $g / (1 - \mu)$?
#
# <details><summary>Worked answer</summary>
#
# From $v_0 = 0$, $v_t = \mu v_{t-1} + g$ gives $v_t = g (1 - \mu^t)/(1 - \mu)$. We need
# $1 - 0.9^t \ge 0.95$, i.e. $t \ge \ln 0.05 / \ln 0.9 = 28.4$: after 29 iterations. Until
# then the steps are smaller than in an uninterrupted run, out of tens of thousands.
#
# </details>
#
# **Exercise 4.** Training uses crops; evaluating a whole 1024 x 2048 frame at once does not.
# How many stride-8 feature positions does the backbone produce for a 768 crop and a whole frame
# with the paper variant's torchvision backbone (`dgcnet_paper_r101`), and for an 832 crop and
# a whole frame with the authors' deep-stem one (`dgcnet_official_r101`)? The ratio of each?
#
# <details><summary>Worked answer</summary>
#
# Build both on the meta device (no memory) and run the backbone on empty inputs:
#
# ```python
# with torch.device("meta"):
#     net = models.build_model("dgcnet_paper_r101").eval()
#     net.backbone(torch.empty(1, 3, 768, 768))["out"].shape   # [1, 2048, 96, 96]
# ```
#
# Paper variant: 96 x 96 = 9,216 positions for a 768 crop, 128 x 256 = 32,768 for the frame,
# 3.6 times more. Authors' backbone (ceil-mode max-pool): 105 x 105 = 11,025 for an 832 crop,
# 129 x 257 = 33,153 for the frame, 3.0 times more. Any sum over positions (the graphs'
# projections are such sums) is that much larger on a whole frame than in training; sliding
# windows of the training crop, as in the authors' evaluation, keep the training scale.
#
# </details>

# %%
# The numeric answers of exercises 1-3, checked
import math

sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
factor = dgcn.training.poly_scheduler(sgd, total=62_475).lr_lambdas[0]
official_total = dgcn.load_config("cityscapes-official").train.iterations
assert official_total == 62_475
assert round(0.01 * factor(official_total / 2), 5) == 0.00536
assert round(2_475 / 62_475, 4) == 0.0396
assert round(0.01 * factor(60_000), 6) == 0.000547
assert round(100 * factor(60_000), 1) == 5.5
assert math.ceil(60_000 / 2_975) == 21 and 21 * 2_975 == official_total
assert official_total * 8 / 2_975 == 168
momentum = [0.0]
for _ in range(40):
    momentum.append(0.9 * momentum[-1] + 1.0)  # v_t for g = 1; steady value 10
assert round(math.log(0.05) / math.log(0.9), 1) == 28.4
assert next(t for t, v in enumerate(momentum) if v >= 0.95 * 10) == 29

# %%
# Exercise 4's feature positions, on the meta device
positions = {}
with torch.device("meta"), torch.no_grad():
    for name, crop in [("dgcnet_paper_r101", 768), ("dgcnet_official_r101", 832)]:
        net = models.build_model(name).eval()
        for size in [(crop, crop), (1024, 2048)]:
            h, w = net.backbone(torch.empty(1, 3, *size))["out"].shape[-2:]
            positions[name, size] = (h, w, h * w)
assert positions["dgcnet_paper_r101", (768, 768)] == (96, 96, 9_216)
assert positions["dgcnet_paper_r101", (1024, 2048)] == (128, 256, 32_768)
assert positions["dgcnet_official_r101", (832, 832)] == (105, 105, 11_025)
assert positions["dgcnet_official_r101", (1024, 2048)] == (129, 257, 33_153)
assert round(32_768 / 9_216, 1) == 3.6 and round(33_153 / 11_025, 1) == 3.0
print("all numeric answers check")

# %% [markdown]
# ## References
#
# - Zhang, Li, Arnab, Yang, Tong, Torr, *Dual Graph Convolutional Network for Semantic
#   Segmentation*, BMVC 2019, arXiv 1909.06121: the training settings as summarised, with their
#   provenance, in `docs/reference/paper_results.md` (which section of the paper states them is
#   unverified here; check arXiv 1909.06121).
# - The authors' training script in `lxtGH/GALD-DGCNet` (8 GPUs x 1 image, SyncBN, crop 832,
#   OHEM, given 60,000 steps, runs 62,475 iterations), summarised in
#   `docs/reference/official_dgcnet.md`.
# - PyTorch: [`torchrun`](https://pytorch.org/docs/stable/elastic/run.html),
#   [`DistributedDataParallel`](https://pytorch.org/docs/stable/notes/ddp.html),
#   [`SyncBatchNorm`](https://pytorch.org/docs/stable/generated/torch.nn.SyncBatchNorm.html),
#   [automatic mixed precision](https://pytorch.org/docs/stable/amp.html).
# - Colab: [mounting Google Drive](https://colab.research.google.com/notebooks/io.ipynb).
# - NVIDIA's datasheets for the T4, L4, A100 and H100: the dense fp16/bf16 tensor-core peaks
#   of section 3 (the sparse figures they also quote are twice these).
