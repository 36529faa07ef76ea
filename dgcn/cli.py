"""The ``dgcn`` command line (also ``python -m dgcn``).

Every user mistake ends as one line on stderr and exit status 2 (``--debug`` shows the
traceback); the CLI only parses the arguments and calls the package. Imports of modules that
load torch are function-local (marked ``# lazy``), so that ``dgcn --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import typing
from pathlib import Path

from dgcn.config import EvalConfig, load_config
from dgcn.errors import ConfigError, DgcnError
from dgcn.fileio import file_sha256

#: the preset whose data part gives ``make-minicity`` its defaults
MINICITY_PRESET = "minicity-cpu"


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


#: the test-mode options of ``evaluate`` and ``predict``: fields of the config's ``eval`` part
INFERENCE_OPTIONS = (
    "mode",
    "tile",
    "overlap",
    "scales",
    "scale_tile",
    "flip",
    "average",
    "precision",
)


def _choices(field: str) -> tuple[str, ...]:
    """The choices of an :class:`EvalConfig` field, read from its type."""
    return typing.get_args(typing.get_type_hints(EvalConfig)[field])


def _add_inference_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="runs/<name>/last.pt or the authors' .pth")
    p.add_argument("--official", action="store_true", help="the file is the authors' checkpoint")
    p.add_argument("--config", help="data/eval config for --official (cityscapes-official)")
    p.add_argument("--data-root", help="dataset root (overrides data.root)")
    p.add_argument("--split", help="split (default: the config's val split)")
    p.add_argument("--mode", choices=_choices("mode"))
    p.add_argument("--tile", type=int, help="sliding-window tile (the authors: 832)")
    p.add_argument("--overlap", type=float, help="sliding-window overlap (the authors: 1/3)")
    p.add_argument("--scales", type=float, nargs="+", help="multi-scale factors")
    p.add_argument(
        "--scale-tile",
        type=int,
        help="--mode multiscale: slide this tile over every scale (default: each scale whole, "
        "as the authors)",
    )
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument(
        "--average",
        choices=_choices("average"),
        help="what windows, scales and flips average (the authors: logits)",
    )
    p.add_argument(
        "--precision",
        choices=_choices("precision"),
        help="autocast (auto: bf16 on CUDA >= Ampere, fp16 before, fp32 on a CPU)",
    )
    p.add_argument("--opt", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="dgcn", description="Dual Graph Convolutional Network: build, train, evaluate."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    summary = sub.add_parser(
        "summary", help="parameters and FLOPs per block, and one forward pass on a random image"
    )
    summary.add_argument("--model", default="dgcnet_official_r101", help="a preset name")
    summary.add_argument("--size", nargs=2, type=int, default=(1024, 2048), metavar=("H", "W"))
    summary.add_argument("--batch", type=int, default=1)
    summary.add_argument("--classes", type=int, help="classes (default: the Cityscapes train ids)")
    summary.add_argument(
        "--forward",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run one real forward pass on the CPU (random weights)",
    )
    summary.set_defaults(func=_summary)

    plan = sub.add_parser(
        "plan", help="micro-batch and training time of presets on common GPUs (estimates)"
    )
    plan.add_argument(
        "--config",
        nargs="+",
        default=["cityscapes-official", "cityscapes-paper"],
        help="presets or YAML paths, one column each",
    )
    plan.add_argument("--gpu", nargs="+", help="GPU names (default: all; e.g. T4 'H100 SXM')")
    plan.add_argument("--opt", nargs="*", metavar="KEY=VALUE", help="overrides for every config")
    plan.set_defaults(func=_plan)

    train = sub.add_parser("train", help="train one run (also under torchrun)")
    train.add_argument("--config", required=True, help="preset name or YAML path")
    train.add_argument("--opt", nargs="*", metavar="KEY=VALUE", help="e.g. train.lr=0.02")
    train.add_argument("--run-dir", help="output folder (default runs/<config name>)")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from run-dir/last.pt (previous.pt when last.pt cannot be read), with the "
        "run's own precision and micro-batch unless --opt sets them",
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing run")
    train.add_argument(
        "--allow-config-change",
        action="store_true",
        help="resume with a config other than the run's own (kept in config-history.jsonl)",
    )
    train.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="mIoU, per-class IoU, pixel accuracy of a model")
    _add_inference_args(evaluate)
    evaluate.add_argument(
        "--export",
        help="write labelId PNGs here (Cityscapes eval script): a new or empty folder outside "
        "the dataset, or the export of this same evaluation",
    )
    evaluate.add_argument(
        "--output",
        help="results .json (default next to the checkpoint: eval-<checkpoint>-<split>-<mode>-"
        "<hash of the settings>.json); an existing file is replaced only when it holds this "
        "same evaluation's results",
    )
    evaluate.add_argument(
        "--report-scaled",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also report mIoU x K/(K+1), labelled 'EncNet-style K+1' (PASCAL Context: the "
        "59-class mIoU x 59/60, the 60-class figure some papers print); eval.report_scaled",
    )
    evaluate.add_argument("--workers", type=int, default=2)
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(func=_evaluate)

    predict = sub.add_parser("predict", help="colourised masks, overlays and grids as PNG")
    _add_inference_args(predict)
    predict.add_argument(
        "--images",
        nargs="+",
        help="image files of distinct names: x.png gives x_pred.png (else --count from --split)",
    )
    predict.add_argument("--count", type=int, default=8, help="images of the split to show")
    predict.add_argument("--out", default="runs/predictions", help="output folder")
    predict.set_defaults(func=_predict)

    reproduce = sub.add_parser(
        "reproduce", help="the ablation table: baseline, coordinate, feature, both (make demo)"
    )
    reproduce.add_argument(
        "--preset",
        default="minicity-ablation",
        help="config preset of the rows (default: the CPU ablation on a frozen MiniCity backbone)",
    )
    reproduce.add_argument("--data-root", help="dataset root (Cityscapes for the GPU presets)")
    reproduce.add_argument("--seeds", type=int, nargs="+", default=[0])
    reproduce.add_argument(
        "--rows",
        nargs="+",
        metavar="ROW",
        help="rows to run: baseline coordinate feature both global-pool ppm non-local "
        "official-baseline official-coordinate official-feature official-both (default: the "
        "four paper rows, plus global-pool, ppm and non-local on a frozen backbone)",
    )
    reproduce.add_argument(
        "--out",
        help="output folder (default runs/reproduce/<timestamp>); one that holds a table of the "
        "same settings is continued: finished rows kept, the current row resumed",
    )
    reproduce.add_argument(
        "--join",
        nargs="+",
        metavar="RUN_DIR",
        help="finished runs of `dgcn train` that stand for the table's row whose config they have",
    )
    reproduce.add_argument("--opt", nargs="*", metavar="KEY=VALUE", help="config overrides")
    reproduce.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    reproduce.add_argument("--quiet", action="store_true")
    reproduce.set_defaults(func=_reproduce)

    export = sub.add_parser(
        "export", help="a run's weights and config without optimizer state, with its sha256"
    )
    export.add_argument("--checkpoint", required=True, help="runs/<name>/last.pt")
    export.add_argument("--out", required=True, help="the file to write")
    export.set_defaults(func=_export)

    minicity = sub.add_parser(
        "make-minicity", help="generate MiniCity, a synthetic city in the Cityscapes layout"
    )
    data = load_config(MINICITY_PRESET).data  # the defaults: the CPU preset's MiniCity
    minicity.add_argument("--out", default=data.root, help="output root (%(default)s)")
    minicity.add_argument(
        "--train", type=int, default=data.minicity_train, help="training images (%(default)s)"
    )
    minicity.add_argument(
        "--val", type=int, default=data.minicity_val, help="validation images (%(default)s)"
    )
    minicity.add_argument("--test", type=int, default=0, help="test images")
    minicity.add_argument("--seed", type=int, default=data.minicity_seed)
    minicity.add_argument(
        "--size", nargs=2, type=int, default=tuple(data.minicity_size), metavar=("H", "W")
    )
    minicity.add_argument(
        "--generator-version",
        type=int,
        default=data.minicity_version,
        help="the generator's rules: 2 mixes trucks, buses and trains in one image; 1 rebuilds "
        "the first edition's data byte for byte (%(default)s)",
    )
    minicity.add_argument("--overwrite", action="store_true", help="replace another MiniCity")
    minicity.add_argument("--preview", metavar="PNG", help="also save a grid of train images")
    minicity.set_defaults(func=_make_minicity)

    check = sub.add_parser(
        "check-data",
        help="validate a Cityscapes-layout or PASCAL Context tree and print counts per split",
    )
    check.add_argument(
        "--root",
        required=True,
        help="dataset root (Cityscapes: holds leftImg8bit/; PASCAL Context: VOCdevkit/VOC2010)",
    )
    check.add_argument(
        "--dataset",
        default="cityscapes",
        choices=["cityscapes", "minicity", "pascal-context", "pascal-context-60"],
        help="the layout to check (%(default)s; minicity is the Cityscapes layout)",
    )
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=_check_data)

    convert = sub.add_parser(
        "convert-pascal-context",
        help="write the PASCAL Context .mat labels once as 8-bit PNGs (values 0..59)",
    )
    convert.add_argument(
        "--root", required=True, help="the VOC2010 folder (holds JPEGImages/ and trainval/)"
    )
    convert.add_argument(
        "--out",
        help="folder that receives SegmentationClassContext/ (default: VOCdevkit/VOC2010, where "
        "the loader finds it)",
    )
    convert.add_argument("--overwrite", action="store_true", help="replace existing PNGs")
    convert.add_argument("--quiet", action="store_true", help="no progress bar")
    convert.set_defaults(func=_convert_pascal_context)
    return parser


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
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DgcnError as err:
        if args.debug:
            raise
        print(f"dgcn: error: {one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # permission denied, no space left, a path that is a file, ...
        if args.debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        cause = err.strerror or type(err).__name__
        print(
            f"dgcn: error: {where}{cause}; check the path, its permissions and free space",
            file=sys.stderr,
        )
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
