"""The run folder: what a run writes, when a folder may be used, and a start that fails leaves
nothing behind.

A run folder holds ``config.yaml`` (the config of its latest start), ``config-history.jsonl``
(one line per start), ``metrics.jsonl`` (one record per log step and evaluation), ``last.pt``
and ``previous.pt`` (the newest checkpoint and the one before it), ``curves.png``,
``summary.json`` (written when the run is finished) and ``tensorboard/`` when TensorBoard is
installed. Both trainers (:func:`~dgcn.training.loop.fit` and
:func:`~dgcn.training.frozen.fit_head`) use the rules here:

- a new run needs a folder that is absent or empty (:func:`prepare_run_dir`), or one whose run
  never reached a checkpoint (a start that was killed: it is replaced, see :func:`not_started`),
  or ``--overwrite`` for a folder that holds a run;
- ``--resume`` needs ``last.pt`` (or ``previous.pt``, the one before it, when ``last.pt``
  cannot be read: :func:`find_checkpoint`) and the run's own config
  (:func:`check_resume_config`; only the keys of :data:`RESUME_KEYS` may differ);
- :class:`NewRun` undoes a new start that fails before its first checkpoint: the folder it
  created is removed, and the run that ``--overwrite`` replaces is put back, so that the same
  command simply runs again once the cause is fixed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dgcn.checkpoint import load_checkpoint, require_entries, require_training_state
from dgcn.config import Config, config_from_dict, load_config
from dgcn.errors import CheckpointError, RunDirError
from dgcn.fileio import is_temp_name, read_utf8, remove_stale_temp_files, write_text_atomic
from dgcn.optional import available, note_skipped

LAST = "last.pt"
PREVIOUS = "previous.pt"
HISTORY = "config-history.jsonl"

#: config keys that a resume may change without ``--allow-config-change``: they say how a run
#: is computed on the machine at hand, not which run it is (each change is reported)
RESUME_KEYS = (
    "train.precision",
    "train.micro_batch",
    "train.time_limit",
    "train.threads",
    "train.compile",
    "data.workers",
)

METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CURVES = "curves.png"

#: files by which a folder is recognised as a dgcn run (``--overwrite`` replaces only those)
RUN_FILES = (LAST, PREVIOUS, METRICS, "config.yaml", SUMMARY)

#: everything a start writes into its folder
WRITTEN = (*RUN_FILES, HISTORY, CURVES, "tensorboard")


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` holds a dgcn run (one of :data:`RUN_FILES`)."""
    return any((path / name).is_file() for name in RUN_FILES)


def not_started(path: Path) -> bool:
    """Whether ``path`` holds only what a start writes before its first checkpoint (its config,
    history, metrics, curves): a run killed before it had anything to resume from, which a new
    start may replace without ``--overwrite``."""
    if not path.is_dir() or not is_run_dir(path):
        return False
    if any((path / name).exists() for name in (LAST, PREVIOUS, SUMMARY)):
        return False
    return all(p.name in WRITTEN or is_temp_name(p.name) for p in path.iterdir())


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> Path | None:
    """Check the run directory before anything is written; returns the checkpoint to resume.

    Nothing is deleted here: a run that a new start replaces is moved aside by
    :meth:`NewRun.open` only once the new run has been set up successfully.

    Raises:
        RunDirError: the path is a file; the directory holds a run and neither flag was given;
            ``--resume`` without a checkpoint; ``overwrite`` on a non-empty folder that is not
            a dgcn run.
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
        if not last.is_file() and not (run_dir / PREVIOUS).is_file():
            if not_started(run_dir):
                raise RunDirError(
                    f"cannot resume: {run_dir} holds no checkpoint (its run stopped before the "
                    "first one); start it again without --resume"
                )
            raise RunDirError(f"cannot resume: {last} does not exist (start without --resume)")
        remove_stale_temp_files(run_dir)  # a kill during a checkpoint write leaves one
        return last if last.is_file() else run_dir / PREVIOUS
    if run_dir.exists() and any(run_dir.iterdir()) and not not_started(run_dir):
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


class NewRun:
    """The folder of a new run from the moment it is written to its first checkpoint.

    :meth:`open` moves a run that this start replaces (``--overwrite``, or a run that never
    reached a checkpoint) aside to ``.<name>.replaced.<pid>`` next to the folder and creates
    the folder; :meth:`keep` (after the first checkpoint) deletes what was moved aside;
    :meth:`undo` (the start failed or was interrupted first) removes what this start wrote and
    puts the earlier folder back, so the same command runs again once its cause is fixed.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        # the folders this start creates, innermost first (undo removes those left empty:
        # another run may have been started in a parent meanwhile)
        self.created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
        self.aside: Path | None = None
        self.kept = False

    def open(self) -> None:
        """Move the run this start replaces aside, then create the folder."""
        if is_run_dir(self.run_dir):
            aside = self.run_dir.with_name(f".{self.run_dir.name}.replaced.{os.getpid()}")
            os.replace(self.run_dir, aside)
            self.aside = aside
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def keep(self) -> None:
        """The run has a checkpoint: the run it replaced is deleted."""
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.aside = None
        self.kept = True

    def undo(self) -> None:
        """Remove what this start wrote (nothing when it reached a checkpoint) and put back the
        folder it replaced."""
        if self.kept:
            return
        if self.run_dir.is_dir():  # created, empty before, or its run moved aside: all ours
            for path in self.run_dir.iterdir():
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        if self.aside is not None:
            self.run_dir.rmdir()
            os.replace(self.aside, self.run_dir)
            self.aside = None
            return
        for folder in self.created:  # innermost first; one that holds anything stays
            try:
                folder.rmdir()
            except OSError:
                break


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _resolved(config: Config) -> dict[str, Any]:
    data = config.to_dict()
    data["model"]["num_classes"] = config.num_classes
    return data


def changed_keys(previous: Config, current: Config) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (old value, new value)} for every key but ``name`` that differs.

    ``model.num_classes`` compares as the classes each config predicts (:attr:`Config.num_classes`):
    unset (the dataset's) and the dataset's number written out are the same config.
    """
    old, new = (_flatten(_resolved(c)) for c in (previous, current))
    return {
        key: (old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key) and key != "name"
    }


@dataclass
class ResumePoint:
    """The checkpoint a run resumes from.

    Attributes:
        path: ``last.pt``, or ``previous.pt`` when ``last.pt`` cannot be read or is missing.
        state: the loaded checkpoint.
        note: why ``last.pt`` was passed over, in one line (None when it was read).
    """

    path: Path
    state: dict[str, Any]
    note: str | None = None


def _cause(err: Exception, limit: int = 160) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load(path: Path, resumable: bool) -> dict[str, Any]:
    state = load_checkpoint(path)
    require_entries(state, path, "config", "iteration", *(("model",) if resumable else ()))
    if resumable:
        require_training_state(state, path)
    return state


def find_checkpoint(run_dir: str | Path, resumable: bool = False) -> ResumePoint | None:
    """The checkpoint to resume ``run_dir`` from: ``last.pt``; ``previous.pt`` (the checkpoint
    before it) when ``last.pt`` cannot be read or is missing; None when the folder has neither.
    With ``resumable``, a checkpoint without the optimizer, schedule and random states (a file
    of ``dgcn export``; a frozen-backbone run's) counts as one that cannot be read.

    Raises:
        CheckpointError: no readable checkpoint, in one line naming both files.
    """
    run_dir = Path(run_dir)
    last, previous = run_dir / LAST, run_dir / PREVIOUS
    if not last.is_file() and not previous.is_file():
        return None
    failure: CheckpointError | None = None
    if last.is_file():
        try:
            return ResumePoint(last, _load(last, resumable))
        except CheckpointError as err:
            failure = err
            if not previous.is_file():
                raise CheckpointError(
                    f"{_cause(err, 400)}; there is no {PREVIOUS} beside it to fall back to: "
                    "start the run again with --overwrite"
                ) from err
    try:
        state = _load(previous, resumable)
    except CheckpointError as err:
        if failure is None:
            raise
        raise CheckpointError(
            f"cannot resume {run_dir}: neither {LAST} nor {PREVIOUS} can be read "
            f"({_cause(failure)}; {_cause(err)}); start the run again with --overwrite"
        ) from err
    why = f"{last} cannot be read ({_cause(failure)})" if failure else f"{last} is missing"
    note = f"{why}; resuming from {PREVIOUS} at iteration {state.get('iteration')}"
    return ResumePoint(previous, state, note)


def config_changes(previous: Config, current: Config) -> list[str]:
    """The dotted keys in which ``current`` differs from the run's ``previous`` config, apart
    from the name, ``train.iterations`` grown (extending a run is what resume is for) and the
    keys of :data:`RESUME_KEYS` (precision, micro-batch, time limit,
    threads, compile, loader workers: how the run is computed on the machine at hand, changes
    that a resume reports and records)."""
    changed = changed_keys(previous, current)
    if "train.iterations" in changed:
        old, new = changed["train.iterations"]
        if new >= old:
            del changed["train.iterations"]
    return [key for key in changed if key not in RESUME_KEYS]


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


def read_metrics(path: Path, then: str = "") -> list[dict[str, Any]]:
    """The records of a metrics log; a line cut by a kill (not JSON) is skipped.

    Raises:
        RunDirError: the file is not UTF-8 text (damaged), naming it and the line; the fix
            (delete the line) ends in ``then``.
    """
    fix = f"the log is damaged: delete that line, or the file, {then}".strip()
    records = []
    for line in read_utf8(path, RunDirError, fix).splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if isinstance(record, dict):
            records.append(record)
    return records


class MetricsLog:
    """JSON lines, one record per log step; on resume, records past the resume point are
    dropped so the file reads as one uninterrupted run."""

    def __init__(self, path: Path, resume_iteration: int | None) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        if resume_iteration is not None and path.exists():
            records = read_metrics(path, "and resume again")
            self.records = [r for r in records if r.get("iteration", 0) <= resume_iteration]
        self._rewrite()

    def _rewrite(self) -> None:
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in self.records))

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def evaluated_at(self, iteration: int) -> bool:
        """Whether an evaluation is logged at ``iteration``."""
        return any(r.get("iteration") == iteration and "miou" in r for r in self.records)


def plot_curves(records: list[dict[str, Any]], path: Path) -> None:
    """Draw the loss and mIoU curves of ``records`` into ``path``; without matplotlib nothing
    is drawn and one note says so (the JSONL log holds the same numbers)."""
    if not records:
        return
    if not available("matplotlib"):
        note_skipped(path.name, instead=f"the losses and mIoU are in {METRICS}")
        return
    # lazy: viz sits above training (the one upward import: a run draws its own curves.png
    # with the same figure the notebooks show)
    from dgcn.viz.predictions import save_figure, training_curves

    save_figure(training_curves(records), path)
