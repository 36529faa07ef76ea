"""``dgcn reproduce``: the paper's ablation table (baseline, + coordinate GCN, + feature GCN,
both), trained and evaluated with one preset, written beside the paper's numbers.

With no arguments it runs the CPU preset ``minicity-ablation``: one committed MiniCity backbone
(undilated, so its receptive field cannot see a whole vehicle) is frozen, its features are
computed once, and each row trains only its head on them (about a minute a row on two cores).
Every row's baseline is the same head with the graph module replaced by identity; two control
rows put pooling where the graphs go (image-level pooling, and PSPNet's pyramid pooling), and a
non-local row a full pixel-affinity block. Beside the mIoU the table gives each row's head and
context-module parameters and the share of big-vehicle objects (truck, bus, train) whose
majority prediction is right, and a second table each graph row's margin over the better
pooling row. With ``--preset cityscapes-paper --data-root <cityscapes>`` on a GPU every row is
trained end to end: the real reproduction.

On a PASCAL Context preset (a config whose ``data.dataset`` is ``pascal-context`` or
``pascal-context-60``) the paper has no ablation, only DGCNet's one number (53.7, ResNet-101,
multi-scale, from its abstract; which background setting it used is unconfirmed, see
``docs/reference/pascal_context.md``): the default is the ``both`` row beside it.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from dgcn.ablation import (  # the rows and their tables, re-exported: dgcn.reproduce.ROWS etc.
    FROZEN_ROWS,
    GRAPH_ROWS,
    LABELS,
    OBJECTS_COLUMN,
    PAPER_ROWS,
    PASCAL_CONTEXT_DATASETS,
    PASCAL_CONTEXT_ROWS,
    POOLING_ROWS,
    ROWS,
    baseline_of,
    best_row,
    class_names_of,
    context_miou,
    default_rows,
    gain,
    head_parameters,
    is_pascal_context,
    margin,
    paper_column,
    paper_numbers,
    per_class_table,
    pooling_table,
    results_table,
    rows_for,
)
from dgcn.checkpoint import export_weights, load_for_inference
from dgcn.config import Config, apply_overrides, load_config, model_overrides, parse_duration
from dgcn.distributed import is_main_process
from dgcn.errors import ConfigError, RunDirError
from dgcn.fileio import write_text_atomic
from dgcn.models import model_spec
from dgcn.reproduce_report import RECORD_KEYS, RESULTS, collect_results, read_results, write_report
from dgcn.training.frozen import cache_features, cache_key
from dgcn.training.interrupt import Interrupted
from dgcn.training.rundir import LAST, PREVIOUS, config_changes
from dgcn.training.runs import train as train_run

DEFAULT_PRESET = "minicity-ablation"

__all__ = [
    "COMMITTED_MODELS",
    "DEFAULT_PRESET",
    "FROZEN_ROWS",
    "GRAPH_ROWS",
    "LABELS",
    "MANIFEST",
    "OBJECTS_COLUMN",
    "PAPER_ROWS",
    "PASCAL_CONTEXT_DATASETS",
    "PASCAL_CONTEXT_ROWS",
    "POOLING_ROWS",
    "RECORD_KEYS",
    "RESULTS",
    "ROWS",
    "baseline_of",
    "best_row",
    "class_names_of",
    "collect_results",
    "committed_model",
    "continue_command",
    "context_miou",
    "default_rows",
    "gain",
    "head_parameters",
    "is_pascal_context",
    "margin",
    "paper_column",
    "paper_numbers",
    "per_class_table",
    "pooling_table",
    "read_results",
    "reproduce",
    "results_table",
    "rows_for",
]


MANIFEST = "reproduce.json"


def _settings(preset, data_root, seeds, rows, overrides) -> dict[str, Any]:
    return {
        "preset": preset,
        "data_root": data_root,
        "seeds": list(seeds),
        "rows": list(rows),
        "overrides": list(overrides or []),
    }


def continue_command(out: Path, settings: dict[str, Any]) -> str:
    """The ``dgcn reproduce`` command that continues the table in ``out``."""
    command = ["dgcn", "reproduce", "--preset", settings["preset"], "--out", str(out)]
    if settings["data_root"]:
        command += ["--data-root", settings["data_root"]]
    command += ["--seeds", *map(str, settings["seeds"]), "--rows", *settings["rows"]]
    if settings["overrides"]:
        command += ["--opt", *settings["overrides"]]
    return shlex.join(command)


def _read_manifest(out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The state of the table in ``out``: a new one, or the one it holds when that was started
    with the same ``settings`` (continued).

    Raises:
        RunDirError: ``out`` holds something else (results of other settings, of an older
            version without a manifest, other files).
    """
    path = out / MANIFEST
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
            held = manifest["settings"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise RunDirError(f"{path} is damaged ({err}); choose another --out") from err
        if held != settings:
            changed = [key for key in settings if settings[key] != held.get(key)]
            raise RunDirError(
                f"{out} already holds results of another table (it differs in "
                f"{', '.join(changed)}); continue it with {continue_command(out, held)}, or "
                "choose another --out"
            )
        return manifest
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file; choose a folder")
    if out.exists() and any(out.iterdir()):
        raise RunDirError(f"{out} already holds results; choose another --out")
    return {"settings": settings, "seconds": {}}


def _finished(run_dir: Path) -> tuple[dict[str, Any], float | None] | None:
    """(the evaluation summary, the seconds it took) of a finished run, else None."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
        return summary["eval"], summary.get("seconds")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise RunDirError(f"{path} is damaged ({err}); train that row again") from err


def _join(folders, rows, seeds, row_config) -> dict[tuple[str, int], Path]:
    """Which (row, seed) each run folder of ``folders`` is: its config must be the row's
    (the preset's with the row's model options and seed; the name, precision, micro-batch and
    such aside) and the run finished.

    Raises:
        RunDirError: a folder without a run, an unfinished run, a run that is no row.
    """
    joined = {}
    for folder in map(Path, folders):
        path = folder / "config.yaml"
        if not path.is_file():
            raise RunDirError(f"cannot join {folder}: it holds no run (no config.yaml)")
        cfg = load_config(path)
        configs = {(row, seed): row_config(row, seed) for row in rows for seed in seeds}
        match = [
            key
            for key, wanted in configs.items()
            if not config_changes(wanted, cfg) and cfg.train.iterations == wanted.train.iterations
        ]
        if not match:
            raise RunDirError(
                f"cannot join {folder}: its config is none of this table's rows "
                f"({', '.join(rows)}; seeds {', '.join(map(str, seeds))}); its model options "
                f"are {cfg.model.overrides}, its seed {cfg.train.seed}"
            )
        if _finished(folder) is None:
            raise RunDirError(
                f"cannot join {folder}: its run is not finished; resume it with dgcn train "
                f"--config {path} --run-dir {folder} --resume, then join it"
            )
        joined[match[0]] = folder
    return joined


def _row_config(
    preset: str, overrides: list[str] | None, data_root: str | None, row: str, seed: int
) -> Config:
    """The config of one row and seed of the table: the preset, the command's overrides, the
    row's model options, the seed and the data root."""
    cfg = load_config(preset, overrides)
    apply_overrides(cfg, {"model": {"overrides": ROWS[row]}, "train": {"seed": seed}})
    if data_root:
        cfg.data.root = data_root
    cfg.name = f"{row}-seed{seed}"
    return cfg


def _train_row(
    cfg: Config,
    run_dir: Path,
    out: Path,
    manifest: dict[str, Any],
    caches: dict[tuple, Any],
    progress: bool,
    device: str,
) -> tuple[dict[str, Any], float]:
    """Train one row (or resume it from its checkpoint); (its summary, its seconds over all
    sessions). A frozen-backbone row reuses the features cached for its backbone. A signal
    records the time spent, prints the command that continues the table and goes on up."""
    cache = None
    if cfg.frozen.backbone:
        key = cache_key(cfg)
        if key not in caches:
            caches[key] = cache_features(cfg, progress=progress)
        cache = caches[key]
    # a checkpoint to resume from (fit reads it; here only whether there is one)
    resume = any((run_dir / name).is_file() for name in (LAST, PREVIOUS))
    main, start = is_main_process(), time.perf_counter()
    try:
        summary = train_run(
            cfg, run_dir, resume=resume, progress=progress, device=device, cache=cache
        )
    except Interrupted:
        _spent(out, manifest, cfg.name, time.perf_counter() - start, main)
        if main:
            print(f"continue the table with: {continue_command(out, manifest['settings'])}")
        raise
    return summary, _spent(out, manifest, cfg.name, time.perf_counter() - start, main)


def _record(
    cfg: Config,
    row: str,
    seed: int,
    summary: dict[str, Any],
    seconds: float,
    params: dict[str, Any],
    run_dir: Path,
    preset: str,
) -> dict[str, Any]:
    """The table's record of one finished row and seed."""
    pascal = is_pascal_context(cfg.data.dataset)
    return {
        "row": row,
        "seed": seed,
        "miou": summary["miou"],
        "context_miou": math.nan if pascal else context_miou(summary["per_class"]),
        "pixel_accuracy": summary["pixel_accuracy"],
        "per_class": summary["per_class"],
        # frozen-backbone runs only (fit_head), on the Cityscapes classes
        "object_accuracy": summary.get("object_accuracy"),
        "object_per_class": summary.get("object_per_class"),
        **params,
        "seconds": seconds,
        "run_dir": str(run_dir),
        "preset": preset,
        "dataset": cfg.data.dataset,
        "model": cfg.model.name,
        "overrides": cfg.model.overrides,
    }


def reproduce(
    preset: str = DEFAULT_PRESET,
    data_root: str | None = None,
    seeds: list[int] | tuple[int, ...] = (0,),
    rows: list[str] | tuple[str, ...] | None = None,
    out: str | Path | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    device: str = "auto",
    join: list[str] | None = None,
) -> Path:
    """Train and evaluate every row for every seed; write results.md/.csv/.json and figures.

    The table is built row by row and can be continued: an ``out`` that holds a table started
    with the same preset, rows, seeds, data root and overrides (its ``reproduce.json``) keeps
    the rows that finished, resumes the row that has a checkpoint and trains the rest; the
    results files are rewritten after every row. ``train.time_limit`` counts for the whole
    command: the row running when it comes stops with a checkpoint, and one line gives the
    command that continues the table. SIGTERM and Ctrl-C stop the row as ``dgcn train`` does.

    Args:
        preset: config preset the rows start from.
        data_root: dataset root (overrides ``data.root``).
        seeds: training seeds; several give mean +- std.
        rows: keys of :data:`ROWS` (default :func:`default_rows`).
        out: output folder (default ``runs/reproduce/<timestamp>``).
        overrides: ``key=value`` config overrides for every row.
        join: finished run folders (e.g. of ``dgcn train --config ablation-coordinate``) that
            stand for the row and seed whose config they have, instead of training it.

    Returns:
        the output folder.

    Raises:
        ConfigError: an unknown row or a bad model option (before any row trains).
        RunDirError: ``out`` holds another table; a folder of ``join`` that is no row.
    """
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out or f"runs/reproduce/{stamp}")
    main = is_main_process()
    rows = tuple(rows or default_rows(preset, overrides))
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ConfigError(f"unknown row {unknown[0]!r}; rows: {', '.join(ROWS)}")
    settings = _settings(preset, data_root, seeds, rows, overrides)
    manifest = _read_manifest(out, settings)

    def row_config(row: str, seed: int):
        return _row_config(preset, overrides, data_root, row, seed)

    params = {}
    for row in rows:  # every row's model options are checked before the first row trains
        cfg = row_config(row, seeds[0])
        model_spec(cfg.model.name, **model_overrides(cfg))
        params[row] = head_parameters(cfg)
    joined = _join(join, rows, seeds, row_config) if join else {}
    limit = parse_duration(cfg.train.time_limit) or 0.0
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    start = time.perf_counter()
    todo = [(seed, row) for seed in seeds for row in rows]
    records = []
    caches: dict[tuple, Any] = {}
    trained = False
    for done, (seed, row) in enumerate(todo, 1):
        cfg = row_config(row, seed)
        run_dir = joined.get((row, seed), out / cfg.name)
        finished = _finished(run_dir)
        if finished is None:
            left = limit - (time.perf_counter() - start)
            if limit and trained and left <= 0:  # the first row of a command always starts
                return _stop(out, manifest, records, len(todo), f"before row {cfg.name}")
            if limit:
                cfg.train.time_limit = max(left, 1e-6)
            trained = True
            summary, seconds = _train_row(cfg, run_dir, out, manifest, caches, progress, device)
            if "stopped_at" in summary:
                return _stop(out, manifest, records, len(todo), f"in row {cfg.name}")
            finished = summary, seconds
        summary, seconds = finished
        seconds = manifest["seconds"].get(cfg.name, seconds)
        records.append(_record(cfg, row, seed, summary, seconds, params[row], run_dir, preset))
        if main:
            minutes = sum(manifest["seconds"].values()) / 60
            write_report(out, records, preset, seeds, minutes, pending=len(todo) - done)
    return out


def _spent(out: Path, manifest: dict[str, Any], name: str, seconds: float, main: bool) -> float:
    """Add ``seconds`` to the time row ``name`` has taken over all sessions (kept in the
    manifest); returns the total."""
    total = manifest["seconds"].get(name, 0.0) + seconds
    manifest["seconds"][name] = total
    if main:
        write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return total


def _stop(out: Path, manifest: dict[str, Any], records: list, total: int, where: str) -> Path:
    """(Main process) one line: where the time limit stopped the table and how to go on."""
    if is_main_process():
        print(
            f"reproduce stopped by train.time_limit {where} ({len(records)} of {total} rows "
            f"finished, in {out / 'results.csv'}); continue with: "
            f"{continue_command(out, manifest['settings'])}",
            flush=True,
        )
    return out


#: the committed MiniCity models (the graphs and the pooling control): name -> the ``dgcn
#: reproduce`` row (preset ``minicity-ablation``, seed 0) whose run was exported to
#: ``experiments/checkpoints/<name>.pt``
COMMITTED_MODELS = {
    "minicity-dgcnet-paper": "both",
    "minicity-dgcnet-official": "official-both",
    "minicity-global-pool": "global-pool",
}
COMMITTED_DIR = Path("experiments/checkpoints")


def committed_model(name: str, progress: bool = True) -> tuple[torch.nn.Module, Any]:
    """(model in eval mode, its config) of a committed MiniCity model, as the notebooks use them.

    Loaded from ``experiments/checkpoints/<name>.pt`` (relative to the working directory, the
    repository root in the notebooks) when the file is there; otherwise trained first by the
    command that made it, ``dgcn reproduce --seeds 0 --rows <row>`` (about a minute on a CPU;
    it needs the committed ``minicity-backbone.pt``, whose sha256 the preset checks), and
    exported to that path.

    Raises:
        ConfigError: an unknown name.
    """
    if name not in COMMITTED_MODELS:
        raise ConfigError(f"no committed model {name!r}; known: {', '.join(COMMITTED_MODELS)}")
    path = COMMITTED_DIR / f"{name}.pt"
    if not path.exists():
        row = COMMITTED_MODELS[name]
        print(f"{path} is missing: training it as it was made (dgcn reproduce --rows {row})")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = reproduce(
            DEFAULT_PRESET, rows=[row], out=f"runs/committed/{name}-{stamp}", progress=progress
        )
        export_weights(out / f"{row}-seed0" / "last.pt", path)
    return load_for_inference(path)
