"""``fit``: the training loop for one GPU, many GPUs (``torchrun``) or a CPU.

SGD with the poly schedule per iteration, CE/OHEM + aux loss, mixed precision chosen by the
device, gradient accumulation, channels_last, DDP with SyncBatchNorm, atomic checkpoints (the
one before kept as ``previous.pt``), exact resume (on another GPU too, keeping the run's
precision and micro-batch: :mod:`dgcn.training.resume`), a wall-clock limit
(``train.time_limit``), JSONL metrics + curves PNG, tqdm progress, TensorBoard when installed.

:func:`fit` sets one :class:`~dgcn.training.steps.TrainingRun` up (the checks before any
work, the data, the model and its optimisation, the run folder) and loops over its steps
(:mod:`dgcn.training.steps`); SIGTERM and Ctrl-C stop it with a checkpoint
(:mod:`dgcn.training.interrupt`), and the run folder's rules are :mod:`dgcn.training.rundir`'s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from dgcn import distributed
from dgcn.checkpoint import load_model_weights
from dgcn.config import Config, model_overrides, parse_duration, save_config
from dgcn.datasets.build import build_dataset, prepare_data
from dgcn.errors import ConfigError, RunDirError, TrainingError
from dgcn.fileio import write_text_atomic
from dgcn.models import build_model, model_spec
from dgcn.precision import PRECISIONS, Precision, resolve_precision
from dgcn.progress import progress_bar
from dgcn.training.interrupt import Interrupted, StopRequest, quiet_workers, signal_name
from dgcn.training.losses import SegmentationLoss
from dgcn.training.resume import (
    RunSettings,
    TimeLimit,
    accumulation_steps,
    rank_seed,
    restore_rng,
    resume_settings,
    rng_state,
    set_rng_state,
)
from dgcn.training.rundir import (
    HISTORY,
    LAST,
    METRICS,
    PREVIOUS,
    MetricsLog,
    NewRun,
    ResumePoint,
    check_resume_config,
    config_changes,
    find_checkpoint,
    plot_curves,
    prepare_run_dir,
)
from dgcn.training.sampling import ResumableSampler, SeededDataset
from dgcn.training.schedule import sgd_with_poly
from dgcn.training.steps import (
    TrainingRun,
    agreed_signal,
    checkpoint_step,
    evaluate_step,
    evaluation_pending,
    finite_model,
    log_step,
    resume_command,
    stop_reason,
    stop_step,
    train_step,
)

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
    "evaluate_step",
    "finite_model",
    "resume_command",
    "train_step",
    "config_changes",
    "fit",
    "resolve_precision",
    "rng_state",
    "set_rng_state",
]


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
    model = build_model(cfg.model.name, cfg.num_classes, **overrides)
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
    point = find_checkpoint(run_dir, resumable=True) if resume else None
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
        worker_init_fn=quiet_workers(),
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
    # the log first: a damaged one stops a resume before the config and history are written
    run.log = MetricsLog(run.run_dir / METRICS, run.start if resumed else None)
    save_config(run.cfg, run.run_dir / "config.yaml")
    entry = {"iteration": run.start, "config": run.cfg.to_dict()}
    entry["settings"] = run.settings.to_dict()
    if resumed:
        entry.update({"checkpoint": point.path.name, "changes": changes})
    with open(run.run_dir / HISTORY, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
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
            reason = stop_reason(run, clock, done)
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
            :data:`~dgcn.training.rundir.RESUME_KEYS` may change) unless
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
    if run.start and evaluation_pending(run):
        with torch.random.fork_rng(devices=[]):  # the loader's seed draw, as if not redone
            evaluate_step(run, run.start)
    stopped, newest = None, run.start
    if not agreed_signal(run):
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
    if stopped is None and not agreed_signal(run):
        summary = evaluate_step(run, t.iterations) if t.iterations > 0 else {}
        if not agreed_signal(run):
            _finish(run, summary)
            return summary
    done, reason = stopped or (newest, signal_name(run.stop.signum))
    result = stop_step(run, done, device, reason)
    if run.stop:
        raise Interrupted(run.stop.signum)
    return result
