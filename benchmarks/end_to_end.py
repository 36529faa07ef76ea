"""One end-to-end training figure: ``dgcn train`` with the official preset on a synthetic
1024x2048 MiniCity, the data loader, OHEM's per-image synchronisation and logging inside it.

The script generates MiniCity in a temporary folder (``dgcn make-minicity``, ``--images``
training images and one validation image, at Cityscapes' size), runs ``python -m dgcn train
--config cityscapes-official`` on it for ``--iterations`` with ``--workers`` loader workers
(no pretrained file: random weights, the same arithmetic), logging every ``--log-every``
iterations, and reads the run's ``metrics.jsonl``: the figure is the seconds per iteration of
the log windows after the first (the first holds cuDNN's autotuning and the workers' start,
reported apart). The final checkpoint and evaluation count in the wall time only. The
temporary folder is removed at the end; the JSON (``end_to_end_<device>.json``) names the
commands with ``<data>`` and ``<run>`` for its paths.

``--limit`` stops the training with SIGTERM after that many seconds (it ends after its current
iteration with a checkpoint); what its log holds by then is reported (``complete: false``).

    python benchmarks/end_to_end.py [--iterations 30] [--workers 8] [--images 16] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import die, write_result  # noqa: E402

CONFIG = "cityscapes-official"


def commands(args, data: Path, run: Path) -> list[list[str]]:
    """The two commands: MiniCity's generation, then the training run on it."""
    height, width = args.size
    python = [sys.executable, "-m", "dgcn"]
    generate = [
        *python,
        "make-minicity",
        "--out",
        str(data),
        "--train",
        str(args.images),
        "--val",
        "1",
        "--size",
        str(height),
        str(width),
    ]
    overrides = [
        "data.dataset=minicity",
        f"data.root={data}",
        f"data.minicity_train={args.images}",
        "data.minicity_val=1",
        f"data.minicity_size=[{height},{width}]",
        f"data.workers={args.workers}",
        "model.overrides.pretrained=null",
        f"train.iterations={args.iterations}",
        f"train.log_every={args.log_every}",
        *(args.opt or []),
    ]
    train = [*python, "train", "--config", CONFIG, "--run-dir", str(run), "--quiet", "--opt"]
    return [generate, train + overrides]


def shown(command: list[str], data: Path, run: Path) -> str:
    """A command as a shell line, its temporary paths written ``<data>`` and ``<run>``."""
    line = shlex.join(["python", *command[1:]])
    return line.replace(str(data), "<data>").replace(str(run), "<run>")


def per_iteration(records: list[dict]) -> dict:
    """Seconds per iteration from a run's training log records (those with
    ``seconds_per_iter``): the mean over the windows after the first, weighted by their
    iterations, and the first window apart."""
    logs = [r for r in records if "seconds_per_iter" in r]
    windows, previous = [], 0
    for r in logs:
        windows.append({"iterations": r["iteration"] - previous, "seconds": r["seconds_per_iter"]})
        previous = r["iteration"]
    later = windows[1:]
    counted = sum(w["iterations"] for w in later)
    return {
        "first_window": windows[0] if windows else None,
        "windows": windows,
        "measured_iterations": counted,
        "seconds_per_iter": (
            sum(w["iterations"] * w["seconds"] for w in later) / counted if counted else None
        ),
        "gpu_mem_gib": logs[-1].get("gpu_mem_gib") if logs else None,
    }


def train(command: list[str], limit: float | None) -> tuple[int, float, bool]:
    """Run the training command; (exit status, wall seconds, whether ``limit`` stopped it)."""
    start = time.perf_counter()
    process = subprocess.Popen(command)
    try:
        status = process.wait(timeout=limit)
        return status, time.perf_counter() - start, False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # stops after its iteration, with a checkpoint
        try:
            status = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
        return status, time.perf_counter() - start, True


def utilisation(seconds: float | None, overrides: list[str]) -> dict:
    """Achieved TFLOP/s and MFU (against this GPU's datasheet peak) of one iteration of the
    preset with ``overrides`` (the official one: 832x832 crop, batch 8); None values without
    a figure, MFU None on a CPU or an unlisted GPU."""
    import torch  # lazy: --dry-run needs no torch

    from dgcn.config import load_config
    from dgcn.training.plan import card_for, training_flops

    cfg = load_config(CONFIG, [*overrides, "train.iterations=1"])
    flops = training_flops(cfg)  # 3 x forward x batch, one iteration
    card = card_for(torch.cuda.get_device_name()) if torch.cuda.is_available() else None
    achieved = flops / seconds / 1e12 if seconds else None
    return {
        "tflops_achieved": achieved,
        "peak_tflops": card.peak_tflops if card else None,
        "mfu": achieved / card.peak_tflops if achieved and card else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--workers", type=int, default=8, help="loader workers (4-8)")
    parser.add_argument("--images", type=int, default=16, help="MiniCity training images")
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"))
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--limit", type=float, help="seconds of training before SIGTERM")
    parser.add_argument("--opt", nargs="*", metavar="KEY=VALUE", help="more overrides")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    if min(args.iterations, args.images, args.log_every) < 1 or args.workers < 0:
        die("--iterations, --images and --log-every must be >= 1, --workers >= 0")
    if args.log_every >= args.iterations:
        die("--log-every must be below --iterations: the first log window is left out")
    if args.dry_run:
        data, run = Path("<data>"), Path("<run>")
        for command in commands(args, data, run):
            print(shown(command, data, run))
        return
    with tempfile.TemporaryDirectory(prefix="dgcn-end-to-end-") as work:
        data, run = Path(work) / "minicity", Path(work) / "run"
        generate, training = commands(args, data, run)
        start = time.perf_counter()
        if subprocess.run(generate, stdout=subprocess.DEVNULL).returncode:
            die("dgcn make-minicity failed (its message is above); nothing was trained")
        generated = time.perf_counter() - start
        print(
            f"MiniCity {args.size[0]}x{args.size[1]}, {args.images} + 1 images: {generated:.1f} s"
        )
        status, wall, stopped = train(training, args.limit)
        metrics = run / "metrics.jsonl"
        records = (
            [json.loads(line) for line in metrics.read_text().splitlines()]
            if metrics.exists()
            else []
        )
        summary_path = run / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    figures = per_iteration(records)
    import torch  # lazy

    device = "cuda" if torch.cuda.is_available() else "cpu"
    payload = {
        "config": CONFIG,
        "size": list(args.size),
        "images": args.images,
        "workers": args.workers,
        "iterations": args.iterations,
        "log_every": args.log_every,
        "commands": [shown(c, data, run) for c in (generate, training)],
        "generate_seconds": generated,
        "train_wall_seconds": wall,
        "exit_status": status,
        "stopped_by_limit": stopped,
        **{k: summary.get(k) for k in ("precision", "micro_batch", "accumulation")},
        **figures,
    }
    write_result(f"end_to_end_{device}", payload, complete=False)  # the figures first
    try:  # a FLOP count that fails (a tiny crop) must not cost the measured figures
        payload.update(utilisation(figures["seconds_per_iter"], args.opt or []))
    except Exception as error:
        payload["utilisation_error"] = f"{type(error).__name__}: {error}"
    complete = status == 0 and not stopped and figures["seconds_per_iter"] is not None
    path = write_result(f"end_to_end_{device}", payload, complete=complete)
    if figures["seconds_per_iter"]:
        print(
            f"dgcn train end to end: {figures['seconds_per_iter']:.3f} s/iteration over "
            f"{figures['measured_iterations']} iterations (first window "
            f"{figures['first_window']['seconds']:.3f} s/it), wall {wall:.0f} s"
        )
    print(f"wrote {path}")
    if status != 0:
        raise SystemExit(status)


if __name__ == "__main__":
    main()
