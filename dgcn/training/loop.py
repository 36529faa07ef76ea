"""``fit``: the training loop for one GPU, many GPUs (``torchrun``) or a CPU.

SGD with the poly schedule per iteration, CE/OHEM + aux loss, mixed precision chosen by the
device, gradient accumulation, channels_last, DDP with SyncBatchNorm, atomic checkpoints (the
one before kept as ``previous.pt``), exact resume (on another GPU too, keeping the run's
precision and micro-batch: :mod:`dgcn.training.resume`), a wall-clock limit
(``train.time_limit``), JSONL metrics + curves PNG, tqdm progress, TensorBoard when installed.

:func:`fit` wires one :class:`TrainingRun` together and loops over its steps:
:func:`train_step`, :func:`log_step`, :func:`evaluate_step` and :func:`checkpoint_step`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from dgcn import distributed
from dgcn.checkpoint import load_model_weights, save_checkpoint
from dgcn.config import Config, model_overrides, parse_duration, save_config
from dgcn.datasets.build import build_dataset, prepare_data
from dgcn.errors import ConfigError, RunDirError, TrainingError
from dgcn.evaluation.loop import evaluate
from dgcn.fileio import write_text_atomic
from dgcn.models import build_model, model_spec
from dgcn.progress import progress_bar
from dgcn.training.interrupt import Interrupted, StopRequest, ignore_stop_signals, signal_name
from dgcn.training.losses import SegmentationLoss
from dgcn.training.resume import (
    HISTORY,
    LAST,
    PRECISIONS,
    PREVIOUS,
    Precision,
    ResumePoint,
    RunSettings,
    TimeLimit,
    accumulation_steps,
    describe_device,
    find_checkpoint,
    rank_seed,
    resolve_precision,
    restore_rng,
    resume_settings,
    rng_state,
    set_rng_state,
)
from dgcn.training.rundir import (
    METRICS,
    MetricsLog,
    NewRun,
    check_resume_config,
    config_changes,
    plot_curves,
    prepare_run_dir,
)
from dgcn.training.sampling import ResumableSampler, SeededDataset
from dgcn.training.schedule import sgd_with_poly

#: what other modules import from here; the precision and resume helpers live in
#: :mod:`dgcn.training.resume`, the run folder's rules in :mod:`dgcn.training.rundir`
__all__ = [
    "HISTORY",
    "Interrupted",
    "LAST",
    "METRICS",
    "PREVIOUS",
    "Precision",
    "RunDirError",
    "TrainingError",
    "TrainingRun",
    "accumulation_steps",
    "check_resume_config",
    "config_changes",
    "fit",
    "resolve_precision",
    "rng_state",
    "set_rng_state",
]


def finite_model(model: torch.nn.Module) -> bool:
    """Whether every floating-point parameter and buffer is finite (BN statistics included:
    a diverged run can keep a finite loss while its running variances overflow)."""
    return all(
        bool(t.isfinite().all()) for t in model.state_dict().values() if t.is_floating_point()
    )


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: JSONL + PNG only
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


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
) -> tuple[distributed.DistInfo, ResumePoint | None]:
    """The checks that stop a bad start before any work, the process group and torch's
    settings; returns where this process stands and the checkpoint to resume (None: a new run:
    ``last.pt``, or ``previous.pt`` when ``last.pt`` cannot be read, read by every process).
    """
    model_spec(cfg.model.name, **model_overrides(cfg))  # model options fail before any work
    info = distributed.setup(device)
    if info.is_main:
        prepare_run_dir(run_dir, resume, overwrite)
    distributed.barrier()
    point = find_checkpoint(run_dir) if resume else None
    if resume and point is None:  # a process other than the main one found nothing
        raise RunDirError(f"cannot resume: {run_dir / LAST} does not exist")
    if point is not None and not allow_config_change:
        check_resume_config(run_dir, cfg, point.state)  # on every rank: all stop together
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.train.cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return info, point


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
    optimizer, scheduler = sgd_with_poly(model.parameters(), cfg.train)
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
        settings: the precision and micro-batch as resolved for this run, which every
            checkpoint stores (see :func:`~dgcn.training.resume.resume_settings`).
        log, writer: the metrics log and the TensorBoard writer (main process only; the
            writer is None without tensorboard).
        rotate: whether the next checkpoint keeps ``last.pt`` as ``previous.pt`` (not after a
            resume from ``previous.pt``, whose ``last.pt`` could not be read).
        stop: the signal handlers of the run (see :mod:`dgcn.training.interrupt`).
        folder: a new run's folder until its first checkpoint (main process; None on resume).
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
    settings: RunSettings
    log: MetricsLog | None = None
    writer: Any = None
    rotate: bool = True
    stop: StopRequest = dataclasses.field(default_factory=StopRequest)
    folder: NewRun | None = None

    def autocast(self):
        """The mixed-precision context of a forward pass (none in fp32)."""
        if self.precision.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.info.device.type, dtype=self.precision.dtype)


def _restore(point: ResumePoint, model: torch.nn.Module, optimizer, scheduler, scaler) -> None:
    """Load a checkpoint's model, optimizer and schedule states, and its GradScaler state only
    when both the checkpoint and this start use one (fp16: a scaler that is off saves ``{}``,
    which an enabled one refuses; a resume that leaves fp16 drops the scale)."""
    state = point.state
    load_model_weights(model, state, point.path)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler.is_enabled() and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])


def _build_run(
    cfg: Config,
    run_dir: Path,
    progress: bool,
    info: distributed.DistInfo,
    settings: RunSettings,
    val_set,
    point: ResumePoint | None,
) -> TrainingRun:
    """The model and its optimisation with ``settings``, restored from ``point`` when given
    (else each process other than rank 0 starts its own random stream), as one
    :class:`TrainingRun`."""
    model = build_training_model(cfg, info, pretrained=point is None)
    precision = PRECISIONS[settings.precision]
    optimizer, scheduler, scaler = _optimization(cfg, model, info.device, precision.scaler)
    if point is not None:
        _restore(point, model, optimizer, scheduler, scaler)
    elif info.rank > 0:  # the same initial weights everywhere, then dropout masks of its own
        torch.manual_seed(rank_seed(cfg.train.seed, info.rank))
    t = cfg.train
    run = TrainingRun(
        cfg=cfg,
        run_dir=run_dir,
        progress=progress,
        info=info,
        precision=precision,
        micro=settings.micro_batch,
        accumulation=settings.accumulation,
        model=model,
        trained=_wrap(model, cfg, info),
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        criterion=SegmentationLoss(t.loss, t.aux_weight, t.ohem_thresh, t.ohem_min_kept),
        val_set=val_set,
        start=int(point.state["iteration"]) if point is not None else 0,
        settings=settings,
        rotate=point is None or point.path.name != PREVIOUS,
    )
    return run


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
        worker_init_fn=ignore_stop_signals,
    )
    return iter(loader)


def _open_run_dir(run: TrainingRun, point: ResumePoint | None, changes: list[str]) -> None:
    """(Main process) the run's folder, its config, the config history, the metrics log and
    the TensorBoard writer; a new run first moves aside the run it replaces (``--overwrite``),
    deleted at its first checkpoint (see :class:`~dgcn.training.rundir.NewRun`).

    Every start appends one line to ``config-history.jsonl``: the iteration it starts at, its
    config and settings and, for a resume, the checkpoint it read and its ``changes``.
    """
    resumed = point is not None
    if not resumed:
        run.folder = NewRun(run.run_dir)
        run.folder.open()
    run.run_dir.mkdir(parents=True, exist_ok=True)
    save_config(run.cfg, run.run_dir / "config.yaml")
    entry = {"iteration": run.start, "config": run.cfg.to_dict()}
    entry["settings"] = run.settings.to_dict()
    if resumed:
        entry.update({"checkpoint": point.path.name, "changes": changes})
    with open(run.run_dir / HISTORY, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
    run.log = MetricsLog(run.run_dir / METRICS, run.start if resumed else None)
    run.writer = _tensorboard(run.run_dir)


def _report_resume(run: TrainingRun, point: ResumePoint, changes: list[str]) -> None:
    """(Main process) one line on the resume, naming every change; one more before it when
    ``last.pt`` was passed over for ``previous.pt``."""
    if point.note:
        print(point.note, flush=True)
    where = f"resuming {run.run_dir} at iteration {run.start}/{run.cfg.train.iterations}"
    if changes:
        print(f"{where} with changes: {'; '.join(changes)} (recorded in {HISTORY})", flush=True)
    else:
        kept = run.settings
        print(
            f"{where} ({kept.precision}, micro-batch {kept.micro_batch} x {kept.accumulation})",
            flush=True,
        )


def train_step(run: TrainingRun, batches: Iterator, iteration: int) -> dict[str, float]:
    """One SGD step over ``run.accumulation`` micro-batches (gradients synchronised on the last
    one); returns the loss parts averaged over the micro-batches.

    Each micro-batch's loss is the mean over its images of per-image losses
    (:class:`~dgcn.training.losses.SegmentationLoss`); it is divided by the accumulation steps
    and DDP averages over the processes, so the step's gradient is that of the mean over every
    image of the global batch, as the authors' 8 processes x 1 image.

    Raises:
        TrainingError: the loss is not finite on some process (nothing is updated); the GPU
            ran out of memory (naming a smaller ``train.micro_batch``).
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
        try:
            with contextlib.nullcontext() if sync else run.trained.no_sync(), run.autocast():
                outputs = run.trained(images)
                loss, parts = run.criterion(outputs, masks)
            run.scaler.scale(loss / run.accumulation).backward()
        except torch.cuda.OutOfMemoryError as err:
            raise TrainingError(out_of_memory_message(run, iteration)) from err
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


def out_of_memory_message(run: TrainingRun, iteration: int) -> str:
    """What to do when a forward-backward pass does not fit on the GPU, in one line: the
    largest smaller micro-batch that still divides the batch (more accumulation steps, the
    same global batch), with ``--resume`` when a checkpoint exists."""
    batch, world = run.cfg.train.batch_size, run.info.world_size
    smaller = [m for m in range(run.micro - 1, 0, -1) if batch % (m * world) == 0]
    again = "--resume" if (run.run_dir / LAST).is_file() else "--overwrite"
    where = (
        f"out of GPU memory at iteration {iteration + 1} with micro-batch {run.micro} in "
        f"{run.precision.name} on {describe_device(run.info.device)}"
    )
    if smaller:
        return (
            f"{where}; run the same command with {again} --opt train.micro_batch={smaller[0]} "
            f"(more accumulation steps, the batch stays {batch})"
        )
    return f"{where}; use a smaller data.crop_size or a GPU with more memory"


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


def bn_synchronized(model: torch.nn.Module) -> bool:
    """Whether the model's BatchNorm layers are SyncBatchNorm (the same statistics on every
    process)."""
    return any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())


def evaluate_step(run: TrainingRun, iteration: int) -> dict[str, Any] | None:
    """Evaluate the model on the validation split (sharded over the processes) with the
    config's test mode, log mIoU and pixel accuracy at ``iteration``; returns the summary
    (None, and nothing logged, when a signal cut the evaluation short).

    Under DDP without SyncBatchNorm each process's BN running statistics follow its own last
    micro-batches; rank 0's are first copied to every process, so that every shard is
    evaluated with the model that the checkpoint (rank 0's) holds. With
    ``eval.precision=auto`` a run evaluates in its own precision (its autocast dtype; on CUDA
    in channels_last, see :func:`dgcn.evaluation.loop.evaluate`) when the device runs it, else
    in the device's default (an fp16 run emulated on a CPU evaluates in fp32).
    """
    cfg, info = run.cfg, run.info
    if info.distributed and not bn_synchronized(run.model):
        distributed.broadcast_buffers(run.model, info)
    eval_cfg = cfg.eval
    if eval_cfg.precision == "auto" and run.precision.name in distributed.device_precisions(
        info.device
    ):
        eval_cfg = dataclasses.replace(eval_cfg, precision=run.precision.name)  # the run's own
    val_loader = DataLoader(
        distributed.shard(run.val_set, info),
        batch_size=1,
        num_workers=min(2, cfg.data.workers),
        worker_init_fn=ignore_stop_signals,
    )
    run.model.eval()
    matrix = evaluate(
        run.model,
        val_loader,
        eval_cfg,
        num_classes=cfg.model.num_classes,
        device=info.device,
        progress=run.progress and info.is_main,
        stop=run.stop.__bool__,
    )
    run.model.train()
    if run.stop:
        return None
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

    The checkpoint that ``last.pt`` held becomes ``previous.pt`` (see
    :func:`~dgcn.checkpoint.save_checkpoint`). Every process's random states are gathered
    into it (``rng_ranks``, under ``torchrun``), so each one resumes its own.

    Raises:
        TrainingError: non-finite weights or BatchNorm statistics (the last checkpoint is kept).
    """
    info = run.info
    if distributed.any_process(not finite_model(run.model), info):
        raise TrainingError(
            f"the model diverged: non-finite weights or BatchNorm statistics at "
            f"iteration {done}; training stopped and {run.run_dir / LAST} (the last good "
            "checkpoint, if any) is kept. Lower train.lr"
        )
    states = distributed.all_gather_objects(rng_state(info.device), info)
    if info.is_main:
        state = {
            "model_name": run.cfg.model.name,
            "config": run.cfg.to_dict(),
            "iteration": done,
            "settings": run.settings.to_dict(),
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),
            "rng": states[0],
        }
        if info.distributed:
            state["rng_ranks"] = states
        previous = run.run_dir / PREVIOUS if run.rotate else None
        save_checkpoint(run.run_dir / LAST, state, previous=previous)
        if run.folder is not None:
            run.folder.keep()  # a start that has a checkpoint is not undone
        plot_curves(run.log.records, run.run_dir / "curves.png")
    run.rotate = True


def _finish(run: TrainingRun, summary: dict[str, Any]) -> None:
    """(Main process) the final curves and ``summary.json``; then every process meets."""
    if run.info.is_main:
        plot_curves(run.log.records, run.run_dir / "curves.png")
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


def resume_command(run: TrainingRun, device: str = "auto") -> str:
    """The command that resumes this run from its folder, with the run's own config."""
    folder = run.run_dir
    command = ["dgcn", "train"]
    if run.info.distributed:
        command = ["torchrun", "--standalone", f"--nproc_per_node={run.info.world_size}"]
        command += ["-m", "dgcn", "train"]
    command += ["--config", str(folder / "config.yaml"), "--run-dir", str(folder), "--resume"]
    if device != "auto":
        command += ["--device", device]
    return shlex.join(command)


def _stop(run: TrainingRun, done: int, device: str, reason: str) -> dict[str, Any]:
    """(Main process) the curves and one line saying where the run stopped, by what
    (``train.time_limit=...`` or a signal's name), and how to resume it; ``summary.json`` is
    not written (the run is not finished). Every process meets."""
    t = run.cfg.train
    command = resume_command(run, device)
    if run.info.is_main:
        plot_curves(run.log.records, run.run_dir / "curves.png")
        if run.writer is not None:
            run.writer.close()
        where = f"at iteration {done}/{t.iterations}"
        if done == t.iterations:
            where = f"after iteration {done}/{t.iterations}, in the final evaluation,"
        print(f"stopped {where} by {reason}; resume with: {command}", flush=True)
    distributed.barrier()
    return {"stopped_at": done, "iterations": t.iterations, "resume": command}


def _stop_reason(run: TrainingRun, clock: TimeLimit, done: int) -> str | None:
    """Why the run stops after iteration ``done`` (a signal's name, the time limit), agreed
    by every process; None: it goes on. One all-reduce per iteration under ``torchrun``."""
    t = run.cfg.train
    expired = False
    if clock:
        evaluation_next = bool(t.eval_every) and (done + 1) % t.eval_every == 0
        expired = clock.expired(evaluation_next)
    signum, expired = distributed.max_over_processes([run.stop.signum or 0, expired], run.info)
    if signum:
        run.stop.signum = run.stop.signum or signum  # a rank the signal has not reached yet
        return signal_name(signum)
    return f"train.time_limit={t.time_limit}" if expired else None


def _agreed_signal(run: TrainingRun) -> int:
    """The signal that stops the run, agreed by every process (0: none)."""
    signum = distributed.max_over_processes([run.stop.signum or 0], run.info)[0]
    if signum:
        run.stop.signum = run.stop.signum or signum
    return signum


def _evaluation_pending(run: TrainingRun) -> bool:
    """Whether a resumed run starts where an evaluation was due but not logged (a signal cut
    it short), agreed by every process."""
    t = run.cfg.train
    due = bool(t.eval_every) and 0 < run.start < t.iterations and run.start % t.eval_every == 0
    missing = run.info.is_main and due and not run.log.evaluated_at(run.start)
    return distributed.any_process(missing, run.info)


def _loop(run: TrainingRun, batches: Iterator, clock: TimeLimit, bar) -> tuple[int, str] | None:
    """Train from ``run.start`` to the end; returns (iteration, reason) when the run stopped
    before it, with a checkpoint at that iteration."""
    t = run.cfg.train
    window: list[dict[str, float]] = []
    tick = time.perf_counter()
    for iteration in range(run.start, t.iterations):
        started = time.perf_counter()
        window.append(train_step(run, batches, iteration))
        done = iteration + 1
        bar.update(1)
        if done % t.log_every == 0 or done == t.iterations:
            bar.set_postfix(log_step(run, done, window, time.perf_counter() - tick), refresh=False)
            window, tick = [], time.perf_counter()
        clock.step = time.perf_counter() - started
        if t.eval_every and done % t.eval_every == 0 and done < t.iterations:
            started = time.perf_counter()
            evaluate_step(run, done)
            clock.evaluation = time.perf_counter() - started
        if done % t.checkpoint_every == 0 or done == t.iterations:
            started = time.perf_counter()
            checkpoint_step(run, done)
            clock.checkpoint = time.perf_counter() - started
        if done < t.iterations:
            reason = _stop_reason(run, clock, done)
            if reason is not None:
                if done % t.checkpoint_every:
                    checkpoint_step(run, done)
                return done, reason
    return None


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

    A resumed run keeps the precision and micro-batch it resolved when it started (stored in
    its checkpoint), on this GPU or another one, unless ``cfg`` overrides ``train.precision``
    or ``train.micro_batch``; every change is printed in one line and recorded in
    ``config-history.jsonl`` (see :func:`~dgcn.training.resume.resume_settings`).

    With ``train.time_limit`` the run stops before the limit with a checkpoint, prints
    ``stopped at iteration i/T by train.time_limit=...; resume with: COMMAND`` and returns
    ``{"stopped_at": i, "iterations": T, "resume": COMMAND}``; no final evaluation is run and
    no ``summary.json`` is written. SIGTERM or SIGINT stops it the same way after the current
    iteration (``... by SIGTERM; resume with: COMMAND``) and raises
    :class:`~dgcn.training.interrupt.Interrupted`; an evaluation that the signal cut short is
    run when the run resumes. A new run that fails before its first checkpoint leaves no
    folder behind (see :class:`~dgcn.training.rundir.NewRun`).

    Args:
        cfg: the run's configuration.
        run_dir: where checkpoints, logs and figures go.
        resume: continue from ``run_dir/last.pt`` exactly (from ``previous.pt`` when
            ``last.pt`` cannot be read, said in one line); the config must be the run's own
            (``train.iterations`` may grow; the keys of
            :data:`~dgcn.training.resume.RESUME_KEYS` may change) unless
            ``allow_config_change``.
        overwrite: replace an existing run in ``run_dir``.
        progress: show tqdm progress (rank 0).
        device: ``auto``, ``cuda`` or ``cpu``.

    Raises:
        RunDirError, ConfigError, DatasetError, CheckpointError, TrainingError; Interrupted.
    """
    clock = TimeLimit(parse_duration(cfg.train.time_limit) or 0.0)  # from the call on
    run_dir = Path(run_dir)
    info, point = _setup(cfg, run_dir, resume, overwrite, device, allow_config_change)
    with StopRequest(announce=info.is_main) as stop:
        run = None
        try:
            settings, changes = resume_settings(cfg, info, point)
            train_set, val_set = _datasets(cfg, info)
            run = _build_run(cfg, run_dir, progress, info, settings, val_set, point)
            run.stop = stop
            batches = _train_batches(run, train_set)
            if point is not None:
                note = restore_rng(point.state, info, cfg.train.seed)  # after the base seed
                changes += [note] if note else []
            if info.is_main:
                _open_run_dir(run, point, changes)
                if point is not None:
                    _report_resume(run, point, changes)
            stop.defer()
            return _train_and_evaluate(run, batches, clock, device)
        except BaseException:
            if run is not None and run.folder is not None:
                if run.writer is not None:
                    run.writer.close()
                run.folder.undo()  # a new run without a checkpoint: as if never started
            raise


def _train_and_evaluate(run: TrainingRun, batches: Iterator, clock: TimeLimit, device: str):
    """:func:`fit` from its first iteration on: the loop, then the final evaluation and
    ``summary.json``, or the stop (time limit, signal) at the run's newest checkpoint."""
    t = run.cfg.train
    if run.start and _evaluation_pending(run):
        with torch.random.fork_rng(devices=[]):  # the loader's seed draw, as if not redone
            evaluate_step(run, run.start)
    stopped, newest = None, run.start
    if not _agreed_signal(run):
        with progress_bar(
            total=t.iterations,
            initial=run.start,
            desc=run.cfg.name,
            unit="it",
            disable=not (run.progress and run.info.is_main),
            dynamic_ncols=True,
        ) as bar:
            stopped = _loop(run, batches, clock, bar)
        newest = t.iterations  # unless stopped: the last iteration wrote a checkpoint
    if stopped is None and not _agreed_signal(run):
        summary = evaluate_step(run, t.iterations) if t.iterations > 0 else {}
        if not _agreed_signal(run):
            _finish(run, summary)
            return summary
    done, reason = stopped or (newest, signal_name(run.stop.signum))
    result = _stop(run, done, device, reason)
    if run.stop:
        raise Interrupted(run.stop.signum)
    return result
