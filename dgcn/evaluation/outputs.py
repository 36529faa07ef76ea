"""What ``dgcn evaluate`` may write: its results JSON and its ``labelIds`` export, and the
rules that keep them from replacing anything else.

An evaluation is identified by :func:`evaluation_identity`: the checkpoint's file, the data
(dataset, root, split, ``val_limit``), the test mode (``mode``, ``tile``, ``overlap``,
``scales``, ``scale_tile``, ``flip``, ``average``) and the precision that runs. The rules:

* **Results** (:func:`results_path`): ``--output`` must end in ``.json``. The default is
  :func:`default_eval_output`, named by the checkpoint, the split, the mode and a short hash
  of the identity, so two different evaluations never share a default file. A file that
  exists is replaced only when it holds the results of the same evaluation (rerun, e.g.
  after the run trained further); anything else there (a checkpoint, another evaluation's
  results, a file of another program) is refused and left as it is.
* **Export** (:func:`check_export_dir`): the folder may not lie inside the dataset's root (the
  export's ``<city>/<image>.png`` names would write over the images of ``leftImg8bit/val``),
  nor contain it; it must be new or empty, or hold the export of the same evaluation, known by
  the marker :data:`EXPORT_MARKER` that :func:`mark_export_dir` writes before the first PNG.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from dgcn.config import REPO_DIR, Config
from dgcn.errors import ConfigError
from dgcn.fileio import write_text_atomic

#: the file by which an export folder is known as written by ``dgcn evaluate``
EXPORT_MARKER = ".dgcn-export.json"


def evaluation_identity(
    cfg: Config, checkpoint: str | os.PathLike, split: str, precision: str
) -> dict[str, Any]:
    """What makes one evaluation differ from another: the checkpoint's file (absolute), the
    data, the test mode of ``cfg.eval`` and the precision that runs (``fp32``, ``bf16``, ...)."""
    e = cfg.eval
    return {
        "checkpoint": str(Path(checkpoint).resolve()),
        "dataset": cfg.data.dataset,
        "root": cfg.data.root,
        "split": split,
        "val_limit": cfg.data.val_limit,
        "mode": e.mode,
        "tile": e.tile,
        "overlap": e.overlap,
        "scales": list(e.scales),
        "scale_tile": e.scale_tile,
        "flip": e.flip,
        "average": e.average,
        "precision": precision,
    }


def _digest(identity: dict[str, Any]) -> str:
    settings = {k: v for k, v in identity.items() if k != "checkpoint"}  # named by its folder
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def default_eval_output(checkpoint: str | os.PathLike, identity: dict[str, Any]) -> str:
    """Where the results of an evaluation go by default: ``eval-<checkpoint name>-<split>-
    <mode>-<hash of the other settings>.json`` next to the checkpoint, so that ``last.pt`` and
    ``previous.pt``, or two scales or flips, never share a file; for the committed models
    ``runs/evaluate/`` instead (never the repository's ``experiments/checkpoints``)."""
    checkpoint = Path(checkpoint)
    name = f"eval-{checkpoint.stem}-{identity['split']}-{identity['mode']}-{_digest(identity)}"
    if checkpoint.resolve().parent == (REPO_DIR / "experiments" / "checkpoints").resolve():
        return str(Path("runs/evaluate") / f"{name}.json")
    return str(checkpoint.with_name(f"{name}.json"))


def _read_json(path: Path) -> Any:
    """The JSON object in ``path``; None when it is not JSON text (a checkpoint, an image)."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def results_path(
    output: str | os.PathLike | None, checkpoint: str | os.PathLike, identity: dict[str, Any]
) -> Path:
    """The results file of an evaluation, checked before any image is read.

    Args:
        output: ``--output``; None: :func:`default_eval_output`.
        checkpoint: the model's file.
        identity: :func:`evaluation_identity` of the evaluation.

    Raises:
        ConfigError: ``--output`` does not end in ``.json``, is a folder, or is a file that
            does not hold the results of this same evaluation.
    """
    path = Path(output if output is not None else default_eval_output(checkpoint, identity))
    if output is not None and path.suffix.lower() != ".json":
        raise ConfigError(
            f"--output {path} must be a .json file (it receives the results as JSON); "
            "choose a name ending in .json"
        )
    if path.is_dir():
        raise ConfigError(f"--output {path} is a folder; name the .json file to write")
    if not path.exists():
        return path
    record = _read_json(path)
    if not isinstance(record, dict) or "confusion" not in record or "miou" not in record:
        raise ConfigError(
            f"{path} exists and is not a results file of dgcn evaluate; it is left as it is: "
            "choose another --output"
        )
    if record.get("evaluation") != identity:
        raise ConfigError(
            f"{path} holds the results of another evaluation (of {record.get('checkpoint')}, or "
            "other settings); it is left as it is: choose another --output, or delete it"
        )
    return path  # the same evaluation run again: its own file is replaced


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_export_dir(
    export_dir: str | os.PathLike, data_root: str | os.PathLike, identity: dict[str, Any]
) -> Path:
    """Check the folder of ``--export`` before any image is read (see the module's rules).

    Raises:
        ConfigError: the folder lies in the dataset's root or holds it, is a file, or holds
            files that are not the export of this same evaluation.
    """
    folder, root = Path(export_dir), Path(data_root)
    resolved, root_resolved = folder.resolve(), root.resolve()
    if _inside(resolved, root_resolved) or _inside(root_resolved, resolved):
        where = "lies inside" if _inside(resolved, root_resolved) else "holds"
        raise ConfigError(
            f"--export {folder} {where} the dataset root {root}: its PNGs would be written among "
            "the dataset's own images and labels; choose a folder outside it (e.g. runs/export)"
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--export {folder} is a file; choose a folder")
    if not folder.is_dir() or not any(folder.iterdir()):
        return folder
    marker = _read_json(folder / EXPORT_MARKER) if (folder / EXPORT_MARKER).is_file() else None
    if not isinstance(marker, dict):
        raise ConfigError(
            f"--export {folder} is not empty and was not written by dgcn evaluate (no "
            f"{EXPORT_MARKER}); it is left as it is: choose a new or empty folder"
        )
    if marker.get("evaluation") != identity:
        raise ConfigError(
            f"--export {folder} holds the export of another evaluation (another checkpoint or "
            "other settings); it is left as it is: choose a new or empty folder, or delete it"
        )
    return folder  # the same evaluation exported again: its own PNGs are replaced


def mark_export_dir(folder: Path, identity: dict[str, Any]) -> None:
    """Create the export folder and write its :data:`EXPORT_MARKER` (before the first PNG)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / EXPORT_MARKER, json.dumps({"evaluation": identity}, indent=2))


__all__ = [
    "EXPORT_MARKER",
    "check_export_dir",
    "default_eval_output",
    "evaluation_identity",
    "mark_export_dir",
    "results_path",
]
