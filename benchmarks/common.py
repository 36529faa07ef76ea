"""Helpers shared by the benchmark scripts: machine description and JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from dgcn.fileio import write_text_atomic

RESULTS = Path(__file__).parent / "results"


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


def write_result(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically, with the machine, a timestamp and
    the command line of the running script."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    script = f"benchmarks/{Path(sys.argv[0]).name}"
    record = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(["python", script, *sys.argv[1:]]),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")
    return path
