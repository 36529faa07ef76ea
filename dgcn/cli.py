"""The ``dgcn`` command line (also ``python -m dgcn``).

Every user mistake ends as one line on stderr and exit status 2 (``--debug`` shows the
traceback); the CLI only parses the arguments (``dgcn.cli_parser``: each sub-command's
options, defaults and example) and calls the package. Imports of modules that
load torch are function-local (marked ``# lazy``), so that ``dgcn --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from dgcn.cli_args import print_error
from dgcn.cli_parser import INFERENCE_OPTIONS, build_parser
from dgcn.config import load_config
from dgcn.errors import ConfigError, DgcnError, allocation_failure
from dgcn.fileio import file_sha256


def _summary(args: argparse.Namespace) -> int:
    from dgcn.datasets.labels import NUM_CLASSES  # lazy: torch
    from dgcn.models.profile import model_summary  # lazy: torch

    classes = NUM_CLASSES if args.classes is None else args.classes
    height, width = args.size
    if min(height, width) < 32 or args.batch < 1 or classes < 1:
        raise ConfigError(
            f"--size must be at least 32 x 32 (got {height} x {width}), --batch and --classes "
            "at least 1"
        )
    size = (args.batch, 3, height, width)
    print("\n".join(model_summary(args.model, classes, size, args.forward)))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from dgcn.training.plan import GPUS, plan_markdown  # lazy: torch

    unknown = [name for name in args.gpu or [] if name not in GPUS]
    if unknown:
        raise ConfigError(f"unknown GPU {unknown[0]!r}; choose from {', '.join(GPUS)}")
    configs = {name: load_config(name, args.opt) for name in args.config}
    gpus = [GPUS[name] for name in args.gpu] if args.gpu else None
    print(plan_markdown(configs, gpus))
    return 0


def _make_minicity(args: argparse.Namespace) -> int:
    from dgcn.datasets.minicity import make_minicity  # lazy: numpy, PIL

    height, width = args.size
    start = time.perf_counter()
    counts = make_minicity(
        args.out,
        train=args.train,
        val=args.val,
        test=args.test,
        seed=args.seed,
        height=height,
        width=width,
        overwrite=args.overwrite,
        version=args.generator_version,
    )
    listing = ", ".join(f"{split} {n}" for split, n in counts.items())
    print(
        f"MiniCity {height}x{width} in {args.out}: {listing} ({time.perf_counter() - start:.1f} s)"
    )
    if args.preview:
        from dgcn.datasets.minicity import write_preview  # lazy: matplotlib

        print(f"preview: {write_preview(args.out, args.preview)}")
    return 0


def _check_data(args: argparse.Namespace) -> int:
    if args.dataset.startswith("pascal-context"):
        from dgcn.datasets.pascal_context import check_pascal_context  # lazy: torch

        report = check_pascal_context(args.root, progress=not args.quiet)
        counts = report["splits"]
        print(f"{args.root}: OK (PASCAL Context)")
        print(f"  labels      {report['labels']}")
        print(f"  lists       {', '.join(report['lists'])}")
    else:
        from dgcn.datasets.cityscapes import check_tree  # lazy: torch

        counts = check_tree(args.root, progress=not args.quiet)
        print(f"{args.root}: OK")
    for split, n in counts.items():
        print(f"  {split:<12}{n:>6} images with labels")
    return 0


def _convert_pascal_context(args: argparse.Namespace) -> int:
    from dgcn.datasets.pascal_context import convert_pascal_context  # lazy: torch, scipy

    start = time.perf_counter()
    folder, count = convert_pascal_context(
        args.root, args.out, overwrite=args.overwrite, progress=not args.quiet
    )
    print(f"{count} labels as PNG in {folder} ({time.perf_counter() - start:.1f} s)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from dgcn.distributed import is_main_process  # lazy: torch
    from dgcn.training.runs import train  # lazy: torch

    cfg = load_config(args.config, args.opt)
    run_dir = args.run_dir or f"runs/{cfg.name}"
    summary = train(
        cfg,
        run_dir,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
        device=args.device,
        allow_config_change=args.allow_config_change,
    )
    if summary and "stopped_at" not in summary and is_main_process():  # fit printed a stop
        print(
            f"{cfg.name}: mIoU {100 * summary['miou']:.2f} % on {cfg.data.val_split} "
            f"({cfg.eval.mode}); run in {run_dir}"
        )
    return 0


def _load_for_inference(args: argparse.Namespace):
    """The model and config of ``--checkpoint`` with ``--opt``, ``--data-root`` and the test-mode
    options (``--mode``, ``--tile``, ...) applied."""
    from dgcn.checkpoint import load_for_inference  # lazy: torch

    opts = list(args.opt or [])
    if args.data_root:
        opts.append(f"data.root={args.data_root}")
    options = {key: getattr(args, key) for key in INFERENCE_OPTIONS}
    options = {key: value for key, value in options.items() if value is not None}
    return load_for_inference(args.checkpoint, args.official, args.config, opts, options)


def _evaluate(args: argparse.Namespace) -> int:
    from dgcn.evaluation.loop import evaluate_run  # lazy: torch

    model, cfg = _load_for_inference(args)
    if args.report_scaled is not None:
        cfg.eval.report_scaled = args.report_scaled
    evaluate_run(
        model,
        cfg,
        args.checkpoint,
        split=args.split,
        device=args.device,
        workers=args.workers,
        progress=not args.quiet,
        export_dir=args.export,
        output=args.output,
    )
    return 0


def _predict(args: argparse.Namespace) -> int:
    from dgcn.viz import prediction_pngs as pngs  # lazy: torch, matplotlib

    model, cfg = _load_for_inference(args)
    if args.images:
        samples = pngs.photo_samples(args.images)
    else:
        samples = pngs.split_samples(cfg, args.split, args.count)
    grid = pngs.predict_images(model, cfg, samples, args.out)
    print(
        f"{len(samples)} predictions in {Path(args.out)}"
        + (" (grid.png: image | truth | prediction | errors)" if grid else "")
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from dgcn.checkpoint import export_weights  # lazy: torch

    path = export_weights(args.checkpoint, args.out)
    size = path.stat().st_size / 2**20
    print(f"{path}: {size:.1f} MiB, sha256 {file_sha256(path)}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from dgcn.reproduce import reproduce  # lazy: torch

    reproduce(
        preset=args.preset,
        data_root=args.data_root,
        seeds=args.seeds,
        rows=args.rows,
        out=args.out,
        overrides=args.opt,
        progress=not args.quiet,
        device=args.device,
        join=args.join,
    )
    return 0


#: the function that runs each sub-command of :func:`dgcn.cli_parser.build_parser`
COMMANDS = {
    "summary": _summary,
    "plan": _plan,
    "train": _train,
    "evaluate": _evaluate,
    "predict": _predict,
    "reproduce": _reproduce,
    "export": _export,
    "make-minicity": _make_minicity,
    "check-data": _check_data,
    "convert-pascal-context": _convert_pascal_context,
}


def one_line(err: BaseException) -> str:
    """The error's own message on one line. An error raised in a DataLoader worker arrives
    wrapped ("Caught DatasetError in DataLoader worker process 0. Original Traceback ..."):
    its last line holds the original message."""
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for user errors)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # a mistake the parser printed in one line: its status, 2
        if not stop.code:
            raise  # --help and --version: done
        return stop.code if isinstance(stop.code, int) else 2
    try:
        return int(COMMANDS[args.command](args) or 0)
    except DgcnError as err:
        if args.debug:
            raise
        print_error(f"dgcn: error: {one_line(err)}")
        return 2
    except (MemoryError, RuntimeError) as err:  # out of memory where no message says more
        size = allocation_failure(err)
        if size is None or args.debug:
            raise
        print_error(
            f"dgcn: error: out of memory ({size} could not be allocated); use smaller images, "
            "a smaller batch or size, or a machine with more memory"
        )
        return 2
    except OSError as err:  # permission denied, no space left, a path that is a file, ...
        if args.debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        cause = err.strerror or type(err).__name__
        print_error(f"dgcn: error: {where}{cause}; check the path, its permissions and free space")
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C; a run stopped by a signal: 128 + its number
        message = getattr(err, "message", "interrupted")  # None: the trainer said it
        if message and os.environ.get("RANK", "0") == "0":
            print(f"dgcn: {message}", file=sys.stderr)
        if argv is None:  # the process's own command line: more signals must not cut the exit
            for number in (signal.SIGINT, signal.SIGTERM):
                signal.signal(number, signal.SIG_IGN)
        return getattr(err, "exit_code", 130)


if __name__ == "__main__":
    sys.exit(main())
