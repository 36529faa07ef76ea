"""The cost of context: the DGCNet graphs against pyramid pooling, a non-local block and global
pooling, time and memory as the image grows.

Each context module of a head (:func:`dgcn.models.dual_gcn.context_module`, paper form, the
coordinate graph with ``downsample=8``) at D = 512 channels and batch 1, on the stride-8
feature of three inputs: a MiniCity image (16 x 32), an 832 x 832 crop (104 x 104) and a
whole 1024 x 2048 Cityscapes image (128 x 256). Three measures per module and size:

* CPU forward+backward time: one training-mode call (the input requires grad, the backward is
  seeded with a fixed random gradient), median of ``--repeats`` calls after a first one (the
  warm-up), with ``--threads`` torch threads (1 by default, recorded); a call that takes over
  ``--slow`` seconds is timed once after its warm-up.
* CPU peak memory of one such call, beyond the module and its input: measured in a fresh
  Python process (no earlier measurement's memory, cached by the allocator, can hide this
  one's) started with ``MALLOC_MMAP_THRESHOLD_`` = 64 KiB (glibc then maps every larger
  allocation on its own and unmaps it when freed, so the resident size follows the live
  tensors); after a warm-up call on a 16 x 16 input (code and state that a first call pages
  in), the kernel's peak-RSS counter is reset (``5`` written to ``/proc/self/clear_refs``), the
  RSS read, the call made and the peak RSS read (``VmHWM`` of ``/proc/self/status``): the
  difference is every byte live at the call's highest point (saved activations, transients,
  the output, the input's and the parameters' gradients). Where the counter cannot be reset
  the peak comes from ``resource.getrusage`` (``memory_method`` says which). The time is
  measured in another fresh process with the allocator as it is.
* CUDA bf16 activation memory: :func:`dgcn.models.profile.activation_memory` of the module
  alone (bytes autograd keeps for backward under bf16 autocast, counted on fake CUDA tensors:
  no GPU and no memory needed, so every size is counted).

A CPU measurement whose peak, extrapolated from the module's previous size (as N^2 for the
non-local block, as N for the others; a priori 4 N^2 floats for the non-local block), would
exceed ``--memory-limit-gb`` or 80 % of the memory available is skipped with a printed line
and recorded as skipped. The JSON (``context_cost_cpu.json``) is rewritten after every
measurement (``complete`` false until the end); the figure ``context_cost.png`` is drawn by
:func:`dgcn.viz.cost.context_cost_figure`.

    nice python benchmarks/context_cost.py [--repeats 3] [--threads 1] [--memory-limit-gb 16]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, write_result  # noqa: E402

from dgcn.models.dual_gcn import DualGCN, context_module  # noqa: E402
from dgcn.models.profile import activation_memory  # noqa: E402

CHANNELS = 512
#: the stride-8 feature sizes, by the input they come from
SIZES = {"MiniCity 128x256": (16, 32), "832x832 crop": (104, 104), "1024x2048 image": (128, 256)}
#: the modules, by the name of :data:`dgcn.models.dual_gcn.CONTEXTS`
MODULES = ("coordinate", "feature", "both", "ppm", "non-local", "global-pool")
#: how a module's peak memory grows with N, for the extrapolation that decides on a skip
GROWTH = {"non-local": 2}


def build(name: str, channels: int = CHANNELS) -> nn.Module:
    """The module of the row ``name`` in its paper form (the graphs as :class:`DualGCN` with
    ``downsample=8``), in training mode."""
    if name in ("coordinate", "feature", "both"):
        return DualGCN(channels, "paper", name, downsample=8).train()
    return context_module(channels, name, "paper").train()


def _status_bytes(key: str) -> int | None:
    """A ``kB`` line of /proc/self/status (``VmRSS``, ``VmHWM``) in bytes, None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux >= 4.0); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_bytes("VmHWM") is not None


def _prepare(name: str, height: int, width: int, channels: int, threads: int):
    """The module, one forward+backward as a function returning its seconds, and the inputs
    (with the gradient seeding the backward) at ``height x width`` and at 16 x 16."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    module = build(name, channels)

    def step(x: torch.Tensor, seed: torch.Tensor) -> float:
        module.zero_grad(set_to_none=True)
        x.grad = None
        start = time.perf_counter()
        module(x).backward(seed)  # seed: the gradient flowing into the module's output
        return time.perf_counter() - start

    def inputs(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(1, channels, h, w, requires_grad=True)
        return x, torch.randn_like(x)

    return module, step, inputs(height, width), inputs(16, 16)


def cpu_peak(
    name: str, height: int, width: int, channels: int = CHANNELS, threads: int = 1
) -> dict:
    """Peak memory of one forward+backward, beyond the module and its input, in this process.

    A warm-up call on a 16 x 16 input first loads the code and state that a first call pages
    in; then the peak-RSS counter is reset and the call measured. Run it in a fresh process
    whose allocator returns freed memory (:func:`measure_cpu` does: ``MALLOC_MMAP_THRESHOLD_``),
    or the warm-up's freed memory, reused, would be missing from the peak.

    Returns:
        ``{"cpu_peak_mib", "memory_method"}``
    """
    module, step, (x, seed), (small, small_seed) = _prepare(name, height, width, channels, threads)
    step(small, small_seed)
    del small, small_seed
    module.zero_grad(set_to_none=True)  # freed before the count, so that the call's grads count
    gc.collect()
    reset = _reset_peak()
    before = _status_bytes("VmRSS") or 0
    step(x, seed)
    if reset:
        peak, method = _status_bytes("VmHWM") - before, "VmHWM after clear_refs, minus VmRSS"
    else:  # no resettable counter: the process's peak so far, minus its memory before the call
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        method = "getrusage ru_maxrss minus VmRSS (may include the start-up peak)"
    return {"cpu_peak_mib": peak / 2**20, "memory_method": method}


def cpu_time(
    name: str,
    height: int,
    width: int,
    channels: int = CHANNELS,
    repeats: int = 3,
    threads: int = 1,
    slow: float = 30.0,
) -> dict:
    """Median seconds of ``repeats`` forward+backward calls after a warm-up call (one call
    only if the warm-up took over ``slow`` seconds).

    Returns:
        ``{"cpu_seconds", "timed_runs", "first_seconds", "threads"}``
    """
    _, step, (x, seed), _ = _prepare(name, height, width, channels, threads)
    first = step(x, seed)
    runs = 1 if first > slow else repeats
    times = [step(x, seed) for _ in range(runs)]
    return {
        "cpu_seconds": statistics.median(times),
        "timed_runs": runs,
        "first_seconds": first,
        "threads": threads,
    }


#: glibc's size from which an allocation is a mapping of its own, unmapped when freed: fixed
#: (which also stops glibc from raising it) in the processes that measure the peak
MMAP_THRESHOLD = 64 * 1024


def measure_cpu(
    name: str,
    height: int,
    width: int,
    channels: int = CHANNELS,
    repeats: int = 3,
    threads: int = 1,
    slow: float = 30.0,
) -> dict:
    """:func:`cpu_peak` and :func:`cpu_time`, each in a fresh Python process (this script with
    ``--child``): the peak with ``MALLOC_MMAP_THRESHOLD_`` set, the time with the allocator
    as it is (freshly mapped memory costs page faults that a reused heap does not)."""
    result: dict = {}
    for what in ("peak", "time"):
        command = [sys.executable, __file__, "--child", what, name, str(height), str(width)]
        command += ["--channels", str(channels), "--repeats", str(repeats)]
        command += ["--threads", str(threads), "--slow", str(slow)]
        env = dict(os.environ)
        if what == "peak":
            env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(
                f"the {what} measurement of {name} at {height}x{width} failed ({tail}); "
                f"run it alone: {' '.join(command)}"
            )
        result.update(json.loads(done.stdout.strip().splitlines()[-1]))
    return result


def activation_mib(name: str, height: int, width: int, channels: int = CHANNELS) -> float:
    """MiB that autograd keeps for backward under CUDA bf16 autocast (fake tensors, no GPU)."""
    module = build(name, channels)
    return activation_memory(module, (1, channels, height, width), "bf16", loss=False) / 2**20


def estimated_peak_bytes(name: str, pixels: int, previous: dict | None) -> float:
    """The CPU peak extrapolated from the module's previous (smaller) measurement, as
    ``N^GROWTH``; with none, 4 N^2 floats for the non-local block and 0 for the others."""
    power = GROWTH.get(name, 1)
    if previous is None or previous.get("cpu_peak_mib") is None:
        return 4 * 4 * pixels**2 if power == 2 else 0.0
    return previous["cpu_peak_mib"] * 2**20 * (pixels / previous["pixels"]) ** power


def available_bytes() -> float:
    """MemAvailable of /proc/meminfo (infinite where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


def run(
    sizes: dict[str, tuple[int, int]],
    modules=MODULES,
    channels: int = CHANNELS,
    repeats: int = 3,
    threads: int = 1,
    slow: float = 30.0,
    limit_gb: float = 16.0,
    save=None,
) -> list[dict]:
    """Every module at every size, smallest size first; ``save(records)`` after each one.

    Returns:
        records ``{"module", "size", "height", "width", "pixels", "params",
        "bf16_activation_mib", "cpu_seconds", "cpu_peak_mib", ..., "skipped"}``; a skipped CPU
        measurement has None for its CPU values and the reason in ``skipped``.
    """
    records: list[dict] = []
    last: dict[str, dict] = {}
    for size, (height, width) in sorted(sizes.items(), key=lambda s: s[1][0] * s[1][1]):
        pixels = height * width
        for name in modules:
            record = {
                "module": name,
                "size": size,
                "height": height,
                "width": width,
                "pixels": pixels,
                "params": sum(p.numel() for p in build(name, channels).parameters()),
                "bf16_activation_mib": activation_mib(name, height, width, channels),
                "cpu_seconds": None,
                "cpu_peak_mib": None,
                "skipped": None,
            }
            estimate = estimated_peak_bytes(name, pixels, last.get(name))
            limit = min(limit_gb * 2**30, 0.8 * available_bytes())
            if estimate > limit:
                record["skipped"] = (
                    f"estimated CPU peak {estimate / 2**30:.1f} GiB > limit {limit / 2**30:.1f} GiB"
                )
                print(f"{name:<12}{size:<18} CPU skipped: {record['skipped']}")
            else:
                record.update(measure_cpu(name, height, width, channels, repeats, threads, slow))
                last[name] = record
                print(
                    f"{name:<12}{size:<18}{1000 * record['cpu_seconds']:>10.1f} ms"
                    f"{record['cpu_peak_mib']:>10.1f} MiB CPU peak"
                    f"{record['bf16_activation_mib']:>10.1f} MiB bf16 saved"
                )
            records.append(record)
            if save:
                save(records)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    parser.add_argument("--slow", type=float, default=30.0, help="time such calls only once")
    parser.add_argument("--memory-limit-gb", type=float, default=16.0)
    parser.add_argument("--channels", type=int, default=CHANNELS)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # peak|time MODULE H W
    args = parser.parse_args()
    if args.child:
        what, name, height, width = args.child[0], args.child[1], *map(int, args.child[2:])
        if what == "peak":
            result = cpu_peak(name, height, width, args.channels, args.threads)
        else:
            result = cpu_time(
                name, height, width, args.channels, args.repeats, args.threads, args.slow
            )
        print(json.dumps(result))
        return
    plot = RESULTS / "context_cost.png"

    def save(records, complete=False):
        return write_result(
            "context_cost_cpu",
            {
                "channels": args.channels,
                "batch": 1,
                "threads": args.threads,
                "repeats": args.repeats,
                "sizes": {name: list(hw) for name, hw in SIZES.items()},
                "time": "median forward+backward seconds after one warm-up call, training mode",
                "cpu_memory": "peak RSS of one forward+backward beyond the module and its input, "
                f"fp32, in a fresh process with MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD} after a "
                "16x16 warm-up call (VmHWM after clear_refs minus VmRSS)",
                "memory_limit_gb": args.memory_limit_gb,
                "bf16_memory": "dgcn.models.profile.activation_memory(module, (1, C, h, w), "
                "'bf16', loss=False): bytes saved for backward on fake CUDA tensors",
                "plot": plot.name if complete else None,
                "records": records,
            },
            complete=complete,
        )

    records = run(
        SIZES,
        MODULES,
        args.channels,
        args.repeats,
        args.threads,
        args.slow,
        args.memory_limit_gb,
        save,
    )
    from dgcn.viz.cost import context_cost_figure  # lazy: matplotlib only for the figure
    from dgcn.viz.predictions import save_figure  # lazy: as above

    threads = f"{args.threads} CPU thread" + ("s" if args.threads > 1 else "")
    title = f"context modules (paper form) at D = {args.channels}, batch 1, {threads}"
    save_figure(context_cost_figure(records, title), plot)
    path = save(records, complete=True)
    print(f"wrote {path} and {plot}")


if __name__ == "__main__":
    main()
