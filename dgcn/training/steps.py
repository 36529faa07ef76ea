"""The steps of one training run, which :func:`~dgcn.training.loop.fit` loops over.

:class:`TrainingRun` holds what the steps read and update; :func:`train_step` (one SGD step
over the micro-batches of one global batch), :func:`log_step`, :func:`evaluate_step` and
:func:`checkpoint_step`; and the stop of a run before its end (a signal, the time limit):
:func:`stop_reason`, agreed by every process, and :func:`stop_step`, which prints the line
that resumes it (:func:`resume_command`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from dgcn import distributed
from dgcn.checkpoint import load_checkpoint, save_checkpoint
from dgcn.config import Config
from dgcn.errors import CheckpointError, TrainingError
from dgcn.evaluation.loop import evaluate
from dgcn.precision import Precision, device_precisions
from dgcn.training.interrupt import StopRequest, quiet_workers, signal_name
from dgcn.training.losses import SegmentationLoss
from dgcn.training.resume import RunSettings, TimeLimit, describe_device, rng_state
from dgcn.training.rundir import LAST, PREVIOUS, MetricsLog, NewRun, plot_curves


def finite_model(model: torch.nn.Module) -> bool:
    """Whether every floating-point parameter and buffer is finite (BN statistics included:
    a diverged run can keep a finite loss while its running variances overflow)."""
    return all(
        bool(t.isfinite().all()) for t in model.state_dict().values() if t.is_floating_point()
    )


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
    if eval_cfg.precision == "auto" and run.precision.name in device_precisions(info.device):
        eval_cfg = dataclasses.replace(eval_cfg, precision=run.precision.name)  # the run's own
    val_loader = DataLoader(
        distributed.shard(run.val_set, info),
        batch_size=1,
        num_workers=min(2, cfg.data.workers),
        worker_init_fn=quiet_workers(),
    )
    run.model.eval()
    matrix = evaluate(
        run.model,
        val_loader,
        eval_cfg,
        num_classes=cfg.num_classes,
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
        then = lambda: newest_checkpoint(run, done)  # noqa: E731 (read only on a failure)
        save_checkpoint(run.run_dir / LAST, state, previous=previous, then=then)
        if run.folder is not None:
            run.folder.keep()  # a start that has a checkpoint is not undone
        plot_curves(run.log.records, run.run_dir / "curves.png")
    run.rotate = True


def newest_checkpoint(run: TrainingRun, done: int) -> str:
    """What to do when the checkpoint at iteration ``done`` cannot be written: free space, then
    resume from the newest intact checkpoint, named with its iteration."""
    for path in (run.run_dir / LAST, run.run_dir / PREVIOUS):
        try:
            saved = int(load_checkpoint(path)["iteration"])
        except CheckpointError:
            continue
        return (
            f"free space in {run.run_dir}, then resume from the newest intact checkpoint, "
            f"{path} at iteration {saved} (iterations {saved + 1}-{done} are not saved), with "
            f"`{resume_command(run)}`"
        )
    return (
        f"no checkpoint was saved, so the run's {done} iterations are lost: free space in "
        f"{run.run_dir.parent} and start it again"
    )


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


def stop_step(run: TrainingRun, done: int, device: str, reason: str) -> dict[str, Any]:
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


def stop_reason(run: TrainingRun, clock: TimeLimit, done: int) -> str | None:
    """Why the run stops after iteration ``done`` (a signal's name, the time limit), agreed
    by every process; None: it goes on. One all-reduce per iteration under ``torchrun``."""
    t = run.cfg.train
    expired = False
    if clock:
        evaluation_next = bool(t.eval_every) and (done + 1) % t.eval_every == 0
        expired = clock.expired(evaluation_next)
    signum, expired = _agree(run, expired)
    if signum:
        return signal_name(signum)
    return f"train.time_limit={t.time_limit}" if expired else None


def agreed_signal(run: TrainingRun) -> int:
    """The signal that stops the run, agreed by every process (0: none)."""
    return _agree(run, False)[0]


def _agree(run: TrainingRun, expired: bool) -> tuple[int, bool]:
    """(the signal received by any process, 0 if none; the time limit reached on any), in one
    all-reduce; a process that the signal has not reached yet takes it as its own."""
    signum, expired = distributed.max_over_processes([run.stop.signum or 0, expired], run.info)
    if signum:
        run.stop.signum = run.stop.signum or signum
    return signum, bool(expired)


def evaluation_pending(run: TrainingRun) -> bool:
    """Whether a resumed run starts where an evaluation was due but not logged (a signal cut
    it short), agreed by every process."""
    t = run.cfg.train
    due = bool(t.eval_every) and 0 < run.start < t.iterations and run.start % t.eval_every == 0
    missing = run.info.is_main and due and not run.log.evaluated_at(run.start)
    return distributed.any_process(missing, run.info)
