"""Helpers shared by the benchmark scripts: machine description and JSON output.

Results go to ``benchmarks/results/``, or to the folder named by the environment variable
``DGCN_BENCH_RESULTS`` (``benchmarks/gpu_session.sh`` points it at the folder that a lent GPU
machine hands back). A script writes its JSON as it goes, after each part, with
``complete: false`` until the last part is in, so that a run stopped at its time limit still
leaves what it measured.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from dgcn.fileio import write_text_atomic

RESULTS = Path(os.environ.get("DGCN_BENCH_RESULTS") or Path(__file__).parent / "results")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict:
    """What ran the benchmark: CPU, cores, GPU (if any), torch version."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_result(name: str, payload: dict, complete: bool = True) -> Path:
    """Write ``<RESULTS>/<name>.json`` atomically, with the machine, a timestamp, the command
    line of the running script and whether the run is ``complete``.

    Call it after every part of a benchmark with ``complete=False`` and once more at the end:
    each call replaces the file, so a run killed in between leaves its last parts on disk.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    script = f"benchmarks/{Path(sys.argv[0]).name}"
    record = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(["python", script, *sys.argv[1:]]),
        "complete": complete,
        **payload,
    }
    path = RESULTS / f"{name}.json"
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")
    return path
