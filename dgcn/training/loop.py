"""``fit``: the training loop for one GPU, many GPUs (``torchrun``) or a CPU.

SGD with the poly schedule per iteration, CE/OHEM + aux loss, mixed precision chosen by the
device, gradient accumulation, channels_last, DDP with SyncBatchNorm, atomic checkpoints,
exact resume, JSONL metrics + curves PNG, tqdm progress, TensorBoard when installed.

:func:`fit` wires one :class:`TrainingRun` together and loops over its steps:
:func:`train_step`, :func:`log_step`, :func:`evaluate_step` and :func:`checkpoint_step`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from dgcn import distributed
from dgcn.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from dgcn.config import Config, config_from_dict, load_config, model_overrides, save_config
from dgcn.datasets.build import build_dataset, prepare_data
from dgcn.errors import ConfigError, DgcnError
from dgcn.evaluation.loop import evaluate
from dgcn.fileio import remove_stale_temp_files, write_text_atomic
from dgcn.models import build_model, model_spec
from dgcn.training.losses import SegmentationLoss
from dgcn.training.sampling import ResumableSampler, SeededDataset
from dgcn.training.schedule import poly_scheduler

LAST = "last.pt"
METRICS = "metrics.jsonl"


class TrainingError(DgcnError):
    """Training cannot go on (a non-finite loss); the last good checkpoint is kept."""


class RunDirError(DgcnError):
    """A run directory exists and neither --resume nor --overwrite was given."""


@dataclass
class Precision:
    """The autocast dtype (None = fp32) and whether a GradScaler is needed."""

    dtype: torch.dtype | None
    scaler: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def resolve_precision(preference: str, device: torch.device) -> Precision:
    """``auto``: bf16 on CUDA compute capability >= 8, fp16 + GradScaler below, fp32 on CPU."""
    table = {
        "fp32": Precision(None, False),
        "bf16": Precision(torch.bfloat16, False),
        "fp16": Precision(torch.float16, True),
    }
    if preference == "auto":
        if device.type != "cuda":
            return table["fp32"]
        major, _ = torch.cuda.get_device_capability(device)
        return table["bf16"] if major >= 8 else table["fp16"]
    if preference not in table:
        raise ConfigError(f"train.precision must be auto, fp32, bf16 or fp16, got {preference!r}")
    if preference == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision=fp16 needs a CUDA GPU; use fp32 or bf16 on a CPU")
    return table[preference]


def accumulation_steps(cfg: Config, world_size: int) -> tuple[int, int]:
    """(micro batch per process, accumulation steps) so that the global batch is exact."""
    batch = cfg.train.batch_size
    micro = cfg.train.micro_batch or max(1, batch // world_size)
    if batch % (micro * world_size):
        raise ConfigError(
            f"train.batch_size={batch} is not a multiple of train.micro_batch={micro} x "
            f"{world_size} processes; choose micro_batch so that it divides"
        )
    return micro, batch // (micro * world_size)


#: files by which a folder is recognised as a dgcn run (``--overwrite`` replaces only those)
RUN_FILES = (LAST, METRICS, "config.yaml", "summary.json")


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` holds a dgcn run (one of :data:`RUN_FILES`)."""
    return any((path / name).is_file() for name in RUN_FILES)


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> Path | None:
    """Check the run directory before anything is written; returns the checkpoint to resume.

    Nothing is deleted here: an existing run that ``overwrite`` replaces is removed by
    :func:`clear_run_dir` only once the new run has been set up successfully.

    Raises:
        RunDirError: the path is a file; the directory holds a run and neither flag was given;
            ``overwrite`` on a non-empty folder that is not a dgcn run.
    """
    last = run_dir / LAST
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} is a file; choose a folder for --run-dir")
    existing = next((p for p in run_dir.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise RunDirError(
            f"run directory {run_dir} lies under the file {existing}; choose a folder"
        )
    if resume:
        if not last.is_file():
            raise RunDirError(f"cannot resume: {last} does not exist (start without --resume)")
        remove_stale_temp_files(run_dir)  # a kill during a checkpoint write leaves one
        return last
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise RunDirError(
                f"run directory {run_dir} already holds a run; pass --resume to continue it, "
                "--overwrite to replace it, or choose another --run-dir"
            )
        if not is_run_dir(run_dir):
            raise RunDirError(
                f"{run_dir} is not empty and holds no dgcn run (none of {', '.join(RUN_FILES)}); "
                "--overwrite only replaces runs: choose another --run-dir"
            )
    return None


def clear_run_dir(run_dir: Path) -> None:
    """Remove the earlier run that ``--overwrite`` replaces (checked by prepare_run_dir)."""
    if run_dir.is_dir() and is_run_dir(run_dir):
        shutil.rmtree(run_dir)


HISTORY = "config-history.jsonl"


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def config_changes(previous: Config, current: Config) -> list[str]:
    """The dotted keys in which ``current`` differs from the run's ``previous`` config, apart
    from the name and from ``train.iterations`` grown (extending a run is what resume is for)."""
    old, new = _flatten(previous.to_dict()), _flatten(current.to_dict())
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and k != "name"]
    if "train.iterations" in changed and new["train.iterations"] >= old["train.iterations"]:
        changed.remove("train.iterations")
    return changed


def check_resume_config(run_dir: Path, cfg: Config, state: dict[str, Any] | None = None) -> None:
    """Refuse to resume with a config other than the run's own (see :func:`config_changes`).

    Raises:
        RunDirError: naming the differing keys and the two ways out.
    """
    path = run_dir / "config.yaml"
    if path.is_file():
        previous = load_config(path)
    else:
        state = state or load_checkpoint(run_dir / LAST)
        previous = config_from_dict(state["config"])
    changed = config_changes(previous, cfg)
    if changed:
        shown = ", ".join(changed[:4]) + (
            f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        )
        raise RunDirError(
            f"cannot resume {run_dir}: this config differs from the run's in {shown}; resume "
            f"with the run's own config (--config {path}), or pass --allow-config-change"
        )


def finite_model(model: torch.nn.Module) -> bool:
    """Whether every floating-point parameter and buffer is finite (BN statistics included:
    a diverged run can keep a finite loss while its running variances overflow)."""
    return all(
        bool(t.isfinite().all()) for t in model.state_dict().values() if t.is_floating_point()
    )


class MetricsLog:
    """JSON lines, one record per log step; on resume, records past the resume point are
    dropped so the file reads as one uninterrupted run."""

    def __init__(self, path: Path, resume_iteration: int | None) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        if resume_iteration is not None and path.exists():
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
                if record.get("iteration", 0) <= resume_iteration:
                    self.records.append(record)
        self._rewrite()

    def _rewrite(self) -> None:
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in self.records))

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: JSONL + PNG only
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _plot_curves(records: list[dict[str, Any]], path: Path) -> None:
    try:
        # lazy: matplotlib is optional, and viz sits above training (the one upward import:
        # a run draws its own curves.png with the same figure the notebooks show)
        from dgcn.viz.predictions import save_figure, training_curves
    except ImportError:  # matplotlib missing (core install): the JSONL log is still there
        return
    if records:
        save_figure(training_curves(records), path)


def rng_state() -> dict[str, Any]:
    """Every RNG the loop draws from (CPU, CUDA, Python)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def build_training_model(cfg: Config, info: distributed.DistInfo, pretrained: bool = True):
    """The model on its device (same init on every rank), SyncBN when distributed on CUDA.

    ``pretrained=False`` skips the backbone weights (a resumed run loads its own).
    """
    torch.manual_seed(cfg.train.seed)
    overrides = model_overrides(cfg, pretrained)
    model = build_model(cfg.model.name, cfg.model.num_classes, **overrides)
    model.to(info.device)
    if info.device.type == "cuda" and cfg.train.channels_last:
        model.to(memory_format=torch.channels_last)
    if info.distributed and info.device.type == "cuda" and cfg.train.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def _setup(
    cfg: Config,
    run_dir: Path,
    resume: bool,
    overwrite: bool,
    device: str,
    allow_config_change: bool,
) -> tuple[distributed.DistInfo, Path | None]:
    """The checks that stop a bad start before any work, the process group and torch's
    settings; returns where this process stands and the checkpoint to resume (None: a new run).
    """
    model_spec(cfg.model.name, **model_overrides(cfg))  # model options fail before any work
    info = distributed.setup(device)
    resume_from = prepare_run_dir(run_dir, resume, overwrite) if info.is_main else None
    distributed.barrier()
    if resume and not info.is_main:
        resume_from = run_dir / LAST
    if resume and not allow_config_change:
        check_resume_config(run_dir, cfg)  # on every rank: all stop together
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.train.cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return info, resume_from


def _datasets(cfg: Config, info: distributed.DistInfo) -> tuple[Any, Any]:
    """The training and validation splits (MiniCity is generated first, by the main process);
    the validation split is built once and reused by every evaluation."""
    if info.is_main:
        prepare_data(cfg.data)
    distributed.barrier()
    train_set = build_dataset(cfg.data, cfg.data.train_split, train=True)
    val_set = build_dataset(cfg.data, cfg.data.val_split, train=False)
    if len(val_set) == 0:
        raise ConfigError(f"the validation split {cfg.data.val_split!r} is empty")
    return train_set, val_set


def _optimization(cfg: Config, model: torch.nn.Module, device: torch.device, scaler: bool):
    """(SGD, its poly schedule per iteration, the GradScaler, enabled when ``scaler``)."""
    # the optimizer is built after SyncBN conversion, so BN scales and shifts are trained
    # (the released script built it before, leaving them out of SGD)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=cfg.train.lr,
        momentum=cfg.train.momentum,
        weight_decay=cfg.train.weight_decay,
    )
    scheduler = poly_scheduler(optimizer, cfg.train.iterations, cfg.train.poly_power)
    return optimizer, scheduler, torch.amp.GradScaler(device.type, enabled=scaler)


def _wrap(model: torch.nn.Module, cfg: Config, info: distributed.DistInfo) -> torch.nn.Module:
    """The model as the train step calls it: in DDP when distributed, compiled when asked."""
    trained = model
    if info.distributed:
        ids = [info.device.index] if info.device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.train.compile and info.device.type == "cuda":
        trained = torch.compile(trained)
    return trained


@dataclass
class TrainingRun:
    """A run while :func:`fit` trains it: what the steps below read and update.

    Attributes:
        cfg, run_dir, progress: as given to :func:`fit`.
        info: where this process stands.
        precision: the autocast dtype and whether a GradScaler is used.
        micro, accumulation: images per forward pass and passes per step (per process).
        model: the model whose state dict a checkpoint saves (SyncBN-converted, unwrapped).
        trained: the model as the train step calls it (see :func:`_wrap`).
        optimizer, scheduler, scaler, criterion: the optimisation.
        val_set: the validation split.
        start: the first iteration to run (the checkpoint's iteration when resumed).
        log, writer: the metrics log and the TensorBoard writer (main process only; the
            writer is None without tensorboard).
    """

    cfg: Config
    run_dir: Path
    progress: bool
    info: distributed.DistInfo
    precision: Precision
    micro: int
    accumulation: int
    model: torch.nn.Module
    trained: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    criterion: SegmentationLoss
    val_set: Any
    start: int
    log: MetricsLog | None = None
    writer: Any = None

    def autocast(self):
        """The mixed-precision context of a forward pass (none in fp32)."""
        if self.precision.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.info.device.type, dtype=self.precision.dtype)


def _restore(
    resume_from: Path | None, model: torch.nn.Module, optimizer, scheduler, scaler
) -> dict[str, Any] | None:
    """Load a checkpoint's model, optimizer, schedule and scaler states; returns the checkpoint
    (None when ``resume_from`` is: a new run)."""
    if resume_from is None:
        return None
    state = load_checkpoint(resume_from)
    load_model_weights(model, state, resume_from)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    return state


def _build_run(
    cfg: Config,
    run_dir: Path,
    progress: bool,
    info: distributed.DistInfo,
    precision: Precision,
    micro: int,
    accumulation: int,
    val_set,
    resume_from: Path | None,
) -> tuple[TrainingRun, dict[str, Any] | None]:
    """The model and its optimisation, restored from ``resume_from`` when given, as one
    :class:`TrainingRun`; returns it and the checkpoint (None for a new run)."""
    model = build_training_model(cfg, info, pretrained=resume_from is None)
    optimizer, scheduler, scaler = _optimization(cfg, model, info.device, precision.scaler)
    state = _restore(resume_from, model, optimizer, scheduler, scaler)
    t = cfg.train
    run = TrainingRun(
        cfg=cfg,
        run_dir=run_dir,
        progress=progress,
        info=info,
        precision=precision,
        micro=micro,
        accumulation=accumulation,
        model=model,
        trained=_wrap(model, cfg, info),
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        criterion=SegmentationLoss(t.loss, t.aux_weight, t.ohem_thresh, t.ohem_min_kept),
        val_set=val_set,
        start=int(state["iteration"]) if state is not None else 0,
    )
    return run, state


def _train_batches(run: TrainingRun, train_set) -> Iterator:
    """This process's micro-batches from ``run.start`` on, in the order of one global stream.

    Starting the iterator draws a base seed from the global RNG: a resumed run restores the
    RNG after this call.
    """
    cfg, info = run.cfg, run.info
    sampler = ResumableSampler(
        len(train_set),
        run.micro,
        info.world_size,
        info.rank,
        run.accumulation,
        cfg.train.seed,
        run.start,
    )
    loader = DataLoader(
        SeededDataset(train_set),
        batch_size=run.micro,
        sampler=sampler,
        num_workers=cfg.data.workers,
        pin_memory=info.device.type == "cuda",
        persistent_workers=cfg.data.workers > 0,
        prefetch_factor=4 if cfg.data.workers else None,
    )
    return iter(loader)


def _open_run_dir(run: TrainingRun, resumed: bool) -> None:
    """(Main process) the run's folder, its config, the config history, the metrics log and
    the TensorBoard writer; a new run first removes the run that ``--overwrite`` replaces."""
    if not resumed:
        clear_run_dir(run.run_dir)  # --overwrite: the new run is set up, the old one goes
    run.run_dir.mkdir(parents=True, exist_ok=True)
    save_config(run.cfg, run.run_dir / "config.yaml")
    with open(run.run_dir / HISTORY, "a") as handle:  # every start, with the config it ran
        handle.write(json.dumps({"iteration": run.start, "config": run.cfg.to_dict()}) + "\n")
    run.log = MetricsLog(run.run_dir / METRICS, run.start if resumed else None)
    run.writer = _tensorboard(run.run_dir)


def train_step(run: TrainingRun, batches: Iterator, iteration: int) -> dict[str, float]:
    """One SGD step over ``run.accumulation`` micro-batches (gradients synchronised on the last
    one); returns the loss parts averaged over the micro-batches.

    Each micro-batch's loss is the mean over its images of per-image losses
    (:class:`~dgcn.training.losses.SegmentationLoss`); it is divided by the accumulation steps
    and DDP averages over the processes, so the step's gradient is that of the mean over every
    image of the global batch, as the authors' 8 processes x 1 image.

    Raises:
        TrainingError: the loss is not finite on some process (nothing is updated).
    """
    info = run.info
    run.optimizer.zero_grad(set_to_none=True)
    parts_sum: dict[str, float] = {}
    for step in range(run.accumulation):
        images, masks = next(batches)
        images = images.to(info.device, non_blocking=True)
        masks = masks.to(info.device, non_blocking=True)
        if info.device.type == "cuda" and run.cfg.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        sync = step == run.accumulation - 1 or not info.distributed
        with contextlib.nullcontext() if sync else run.trained.no_sync(), run.autocast():
            outputs = run.trained(images)
            loss, parts = run.criterion(outputs, masks)
        run.scaler.scale(loss / run.accumulation).backward()
        for key, value in parts.items():
            parts_sum[key] = parts_sum.get(key, 0.0) + float(value) / run.accumulation
    if distributed.any_process(not math.isfinite(parts_sum["loss"]), info):
        raise TrainingError(
            f"non-finite loss ({parts_sum['loss']}) at iteration {iteration + 1}; training "
            f"stopped and {run.run_dir / LAST} (the last good checkpoint, if any) is kept. "
            "Lower train.lr or use train.precision=fp32"
        )
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return parts_sum


def log_step(
    run: TrainingRun, done: int, window: list[dict[str, float]], seconds: float
) -> dict[str, str]:
    """Log the mean of the loss parts over the steps of ``window`` (which took ``seconds``) as
    one record at iteration ``done``; returns the progress bar's postfix."""
    record = {
        "iteration": done,
        "lr": run.optimizer.param_groups[0]["lr"],
        "seconds_per_iter": seconds / len(window),
    }
    for key in window[0]:
        record[key] = sum(w[key] for w in window) / len(window)
    if run.info.device.type == "cuda":
        record["gpu_mem_gib"] = torch.cuda.max_memory_allocated(run.info.device) / 2**30
    if run.info.is_main:
        run.log.append(record)
        if run.writer is not None:
            for key, value in record.items():
                run.writer.add_scalar(f"train/{key}", value, done)
    postfix = {"loss": f"{record['loss']:.3f}", "lr": f"{record['lr']:.2e}"}
    if "gpu_mem_gib" in record:
        postfix["mem"] = f"{record['gpu_mem_gib']:.1f}G"
    return postfix


def evaluate_step(run: TrainingRun, iteration: int) -> dict[str, Any]:
    """Evaluate the model on the validation split (sharded over the processes) with the
    config's test mode, log mIoU and pixel accuracy at ``iteration``; returns the summary.

    ``eval.precision=auto`` evaluates in the run's own precision (its autocast dtype; on CUDA
    in channels_last, see :func:`dgcn.evaluation.loop.evaluate`)."""
    cfg, info = run.cfg, run.info
    eval_cfg = cfg.eval
    if eval_cfg.precision == "auto":
        eval_cfg = dataclasses.replace(eval_cfg, precision=run.precision.name)
    val_loader = DataLoader(
        distributed.shard(run.val_set, info), batch_size=1, num_workers=min(2, cfg.data.workers)
    )
    run.model.eval()
    matrix = evaluate(
        run.model,
        val_loader,
        eval_cfg,
        num_classes=cfg.model.num_classes,
        device=info.device,
        progress=run.progress and info.is_main,
    )
    run.model.train()
    summary = matrix.summary()
    if info.is_main:
        run.log.append(
            {
                "iteration": iteration,
                "miou": summary["miou"],
                "pixel_accuracy": summary["pixel_accuracy"],
            }
        )
        if run.writer is not None:
            run.writer.add_scalar("val/miou", summary["miou"], iteration)
    return summary


def checkpoint_step(run: TrainingRun, done: int) -> None:
    """Save ``last.pt`` (atomically) and redraw ``curves.png``, after checking on every process
    that the model is finite.

    Raises:
        TrainingError: non-finite weights or BatchNorm statistics (the last checkpoint is kept).
    """
    if distributed.any_process(not finite_model(run.model), run.info):
        raise TrainingError(
            f"the model diverged: non-finite weights or BatchNorm statistics at "
            f"iteration {done}; training stopped and {run.run_dir / LAST} (the last good "
            "checkpoint, if any) is kept. Lower train.lr"
        )
    if run.info.is_main:
        save_checkpoint(
            run.run_dir / LAST,
            {
                "model_name": run.cfg.model.name,
                "config": run.cfg.to_dict(),
                "iteration": done,
                "model": run.model.state_dict(),
                "optimizer": run.optimizer.state_dict(),
                "scheduler": run.scheduler.state_dict(),
                "scaler": run.scaler.state_dict(),
                "rng": rng_state(),
            },
        )
        _plot_curves(run.log.records, run.run_dir / "curves.png")


def _finish(run: TrainingRun, summary: dict[str, Any]) -> None:
    """(Main process) the final curves and ``summary.json``; then every process meets."""
    if run.info.is_main:
        _plot_curves(run.log.records, run.run_dir / "curves.png")
        result = {
            "name": run.cfg.name,
            "iterations": run.cfg.train.iterations,
            "precision": run.precision.name,
            "processes": run.info.world_size,
            "accumulation": run.accumulation,
            "micro_batch": run.micro,
            "eval": summary,
        }
        write_text_atomic(run.run_dir / "summary.json", json.dumps(result, indent=2) + "\n")
        if run.writer is not None:
            run.writer.close()
    distributed.barrier()


def fit(
    cfg: Config,
    run_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "auto",
    allow_config_change: bool = False,
) -> dict[str, Any]:
    """Train (and evaluate) one run; returns a summary dict (also written to summary.json).

    Args:
        cfg: the run's configuration.
        run_dir: where checkpoints, logs and figures go.
        resume: continue from ``run_dir/last.pt`` exactly; the config must be the run's own
            (``train.iterations`` may grow) unless ``allow_config_change``.
        overwrite: replace an existing run in ``run_dir``.
        progress: show tqdm progress (rank 0).
        device: ``auto``, ``cuda`` or ``cpu``.

    Raises:
        RunDirError, ConfigError, DatasetError, CheckpointError, TrainingError.
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    info, resume_from = _setup(cfg, run_dir, resume, overwrite, device, allow_config_change)
    precision = resolve_precision(cfg.train.precision, info.device)
    micro, accumulation = accumulation_steps(cfg, info.world_size)
    train_set, val_set = _datasets(cfg, info)
    run, state = _build_run(
        cfg, run_dir, progress, info, precision, micro, accumulation, val_set, resume_from
    )
    batches = _train_batches(run, train_set)
    if state is not None:
        set_rng_state(state["rng"])  # after the loader's base seed was drawn
    if info.is_main:
        _open_run_dir(run, resumed=state is not None)
    run.model.train()
    t = cfg.train
    with tqdm(
        total=t.iterations,
        initial=run.start,
        desc=cfg.name,
        unit="it",
        disable=not (progress and info.is_main),
        dynamic_ncols=True,
    ) as bar:
        window: list[dict[str, float]] = []
        tick = time.perf_counter()
        for iteration in range(run.start, t.iterations):
            window.append(train_step(run, batches, iteration))
            done = iteration + 1
            bar.update(1)
            if done % t.log_every == 0 or done == t.iterations:
                bar.set_postfix(log_step(run, done, window, time.perf_counter() - tick))
                window, tick = [], time.perf_counter()
            if t.eval_every and done % t.eval_every == 0 and done < t.iterations:
                evaluate_step(run, done)
            if done % t.checkpoint_every == 0 or done == t.iterations:
                checkpoint_step(run, done)
    summary = evaluate_step(run, t.iterations) if t.iterations > 0 else {}
    _finish(run, summary)
    return summary
