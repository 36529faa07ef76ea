"""Helpers shared by the benchmark scripts: machine description, CUDA memory and TF32 settings,
the measured matrix-product rate, and JSON output.

Results go to ``benchmarks/results/``, or to the folder named by the environment variable
``DGCN_BENCH_RESULTS`` (``benchmarks/gpu_session.sh`` points it at the folder that a lent GPU
machine hands back). A script writes its JSON as it goes, after each part, with
``complete: false`` until the last part is in, so that a run stopped at its time limit still
leaves what it measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from collections.abc import Iterator
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


def die(message: str) -> None:
    """End a benchmark script on a user's mistake: ``message`` as one line on stderr (naming
    the cause and what to do), exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def machine() -> dict:
    """What ran the benchmark: CPU, cores, torch and the CUDA and cuDNN versions it was built
    with (None for a build without them), and the GPU (name, compute capability, memory) if
    there is one."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        info["gpu"] = torch.cuda.get_device_name()
        info["capability"] = f"{properties.major}.{properties.minor}"
        info["gpu_memory_gib"] = properties.total_memory / 2**30
    return info


#: the keys of :func:`cuda_memory`, all None on a CPU
MEMORY_KEYS = ("peak_gib", "peak_reserved_gib", "free_gib", "total_gib")


def cuda_memory(device: torch.device) -> dict:
    """The memory figures a reader needs beside the peak of allocated tensors, in GiB.

    ``peak_gib``: ``max_memory_allocated`` (the tensors); ``peak_reserved_gib``:
    ``max_memory_reserved`` (what the caching allocator took from the driver, the figure that
    must fit the card); ``free_gib``/``total_gib``: ``mem_get_info`` now (the driver's view,
    other processes and the CUDA context included). All None on a CPU.
    """
    if device.type != "cuda":
        return dict.fromkeys(MEMORY_KEYS)
    free, total = torch.cuda.mem_get_info(device)
    return {
        "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30,
        "peak_reserved_gib": torch.cuda.max_memory_reserved(device) / 2**30,
        "free_gib": free / 2**30,
        "total_gib": total / 2**30,
    }


def tf32_state() -> dict:
    """Whether float32 matrix products and cuDNN convolutions may run in TF32 (a 10-bit
    mantissa on the tensor cores). torch's defaults: products no, convolutions yes; the
    training and evaluation loops of the package turn both on, on CUDA."""
    return {
        "matmul": torch.backends.cuda.matmul.allow_tf32,
        "cudnn": torch.backends.cudnn.allow_tf32,
    }


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 on (as the training loop sets it) or off (true fp32) for both matrix products and
    convolutions while the block runs; the previous settings are restored afterwards."""
    saved = tf32_state()
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved["matmul"]
        torch.backends.cudnn.allow_tf32 = saved["cudnn"]


def matmul_tflops(device: torch.device, n: int = 8192, repeats: int = 20) -> float | None:
    """The bf16 matrix-product rate this GPU reaches, TFLOP/s: ``repeats`` products of two
    ``n x n`` matrices (2 n^3 FLOPs each) timed together by CUDA events, after three warm-up
    products. A practical ceiling below the datasheet's peak; None on a CPU."""
    if device.type != "cuda":
        return None
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    c = torch.empty_like(a)
    for _ in range(3):
        torch.matmul(a, b, out=c)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        torch.matmul(a, b, out=c)
    end.record()
    end.synchronize()
    seconds = start.elapsed_time(end) / 1000 / repeats
    del a, b, c
    torch.cuda.empty_cache()
    return 2 * n**3 / seconds / 1e12


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
