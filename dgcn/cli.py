"""The ``dgcn`` command line (also ``python -m dgcn``).

Every user mistake ends as one line on stderr and exit status 2 (``--debug`` shows the
traceback); the CLI only wires the package together.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dgcn.errors import ConfigError, DgcnError


def _summary(args: argparse.Namespace) -> int:
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    import torch

    from dgcn.models import build_model
    from dgcn.models.profile import block_table

    height, width = args.size
    if min(height, width) < 32 or args.batch < 1 or args.classes < 1:
        raise ConfigError(
            f"--size must be at least 32 x 32 (got {height} x {width}), --batch and --classes "
            "at least 1"
        )
    size = (args.batch, 3, height, width)
    rows = block_table(lambda: build_model(args.model, num_classes=args.classes), size)
    print(f"{args.model}: {args.classes} classes, input {list(size)}, training forward (aux head)")
    print(f"{'block':<28}{'params':>14}{'GFLOPs':>12}")
    for row in rows:
        print(f"{row['block']:<28}{row['params']:>14,}{row['gflops']:>12.2f}")
    if not args.forward:
        return 0
    torch.manual_seed(0)
    model = build_model(args.model, num_classes=args.classes).eval()
    images = torch.randn(size)
    start = time.perf_counter()
    with torch.no_grad():
        logits = model(images)["out"]
    seconds = time.perf_counter() - start
    predicted = logits.argmax(1).unique().numel()
    print(
        f"forward pass on a random {height}x{width} image (random weights, CPU): logits "
        f"{list(logits.shape)}, {seconds:.2f} s, {predicted} classes predicted"
    )
    return 0


def _make_minicity(args: argparse.Namespace) -> int:
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    from dgcn.datasets.minicity import make_minicity

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
    )
    listing = ", ".join(f"{split} {n}" for split, n in counts.items())
    print(
        f"MiniCity {height}x{width} in {args.out}: {listing} ({time.perf_counter() - start:.1f} s)"
    )
    if args.preview:
        # lazy: a command imports only what it needs, so `dgcn --help` starts fast
        from dgcn.datasets.minicity import write_preview

        print(f"preview: {write_preview(args.out, args.preview)}")
    return 0


def _check_data(args: argparse.Namespace) -> int:
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    from dgcn.datasets.cityscapes import check_tree

    counts = check_tree(args.root, progress=not args.quiet)
    print(f"{args.root}: OK")
    for split, n in counts.items():
        print(f"  {split:<12}{n:>6} images with labels")
    return 0


def _train(args: argparse.Namespace) -> int:
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    from dgcn.config import load_config
    from dgcn.training.frozen import train

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
    if summary and _is_main():
        print(
            f"{cfg.name}: mIoU {100 * summary['miou']:.2f} % on {cfg.data.val_split} "
            f"({cfg.eval.mode}); run in {run_dir}"
        )
    return 0


def _is_main() -> bool:
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    from dgcn.config import distributed_env

    return distributed_env()["rank"] == 0


def _inference_config(args: argparse.Namespace):
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    from dgcn.config import check_config
    from dgcn.inference_setup import load_for_inference

    opts = list(args.opt or [])
    if args.data_root:
        opts.append(f"data.root={args.data_root}")
    model, cfg = load_for_inference(args.checkpoint, args.official, args.config, opts)
    for key in ("mode", "tile", "overlap", "scales", "flip"):
        value = getattr(args, key, None)
        if value is not None:
            setattr(cfg.eval, key, value)
    return model, check_config(cfg)  # the options above pass the config's value rules too


def default_eval_output(checkpoint: Path, split: str, mode: str) -> str:
    """Next to the checkpoint, except for the committed models: never write into the
    repository's ``experiments/checkpoints``, use ``runs/evaluate/`` instead."""
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    from dgcn.config import REPO_DIR

    name = f"eval-{split}-{mode}.json"
    if checkpoint.resolve().parent == (REPO_DIR / "experiments" / "checkpoints").resolve():
        return str(Path("runs/evaluate") / f"{checkpoint.stem}-{name}")
    return str(checkpoint.with_name(name))


def _evaluate(args: argparse.Namespace) -> int:
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    import json

    from torch.utils.data import DataLoader

    from dgcn.datasets.build import build_dataset, image_paths, prepare_data
    from dgcn.evaluation.inference import evaluate
    from dgcn.evaluation.metrics import format_table
    from dgcn.fileio import write_text_atomic
    from dgcn.training import distributed

    info = distributed.setup(args.device)
    model, cfg = _inference_config(args)
    if info.is_main:
        prepare_data(cfg.data)  # MiniCity: generated when absent
    distributed.barrier()
    model.to(info.device)
    split = args.split or cfg.data.val_split
    dataset = build_dataset(cfg.data, split, train=False)
    subset = distributed.shard(dataset, info)
    paths = image_paths(dataset)
    loader = DataLoader(subset, batch_size=1, num_workers=args.workers)
    start = time.perf_counter()
    matrix = evaluate(
        model,
        loader,
        cfg.model.num_classes,
        **cfg.eval.inference_kwargs(),
        device=info.device,
        progress=not args.quiet,
        export_dir=args.export,
        image_paths=[paths[i] for i in subset.indices],
    )
    seconds = time.perf_counter() - start
    if info.is_main:
        summary = matrix.summary()
        result = {
            "checkpoint": str(args.checkpoint),
            "split": split,
            "images": len(dataset),
            "mode": cfg.eval.mode,
            "tile": cfg.eval.tile,
            "overlap": cfg.eval.overlap,
            "scales": cfg.eval.scales,
            "flip": cfg.eval.flip,
            "processes": info.world_size,
            "seconds": seconds,
            **summary,
            "confusion": matrix.matrix.tolist(),
        }
        output = args.output or default_eval_output(Path(args.checkpoint), split, cfg.eval.mode)
        print(format_table(summary))  # first: a failed write below loses no result
        print(f"{len(dataset)} images in {seconds:.1f} s")
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(output, json.dumps(result, indent=2) + "\n")
        print(f"results: {output}")
        if args.export:
            print(f"labelId PNGs for the Cityscapes evaluation script: {args.export}")
    distributed.barrier()
    distributed.cleanup()
    return 0


def _predict(args: argparse.Namespace) -> int:
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    import torch
    from torchvision import tv_tensors

    from dgcn.datasets.build import build_dataset, image_paths, prepare_data
    from dgcn.datasets.cityscapes import read_photo
    from dgcn.datasets.transforms import eval_transforms
    from dgcn.evaluation.inference import predict
    from dgcn.fileio import atomic_path
    from dgcn.viz.palette import colorize, denormalize, overlay
    from dgcn.viz.predictions import prediction_grid, save_figure

    model, cfg = _inference_config(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = []  # (name, image tensor [3,H,W], target or None)
    if args.images:
        for path in args.images:
            image = read_photo(Path(path))
            tensor, _ = eval_transforms()(tv_tensors.Image(image), tv_tensors.Mask(image[0]))
            samples.append((Path(path).stem, tensor.as_subclass(torch.Tensor), None))
    else:
        prepare_data(cfg.data)  # MiniCity: generated when absent
        dataset = build_dataset(cfg.data, args.split or cfg.data.val_split, train=False)
        paths = image_paths(dataset)
        for i in range(min(args.count, len(dataset))):
            image, mask = dataset[i]
            samples.append((paths[i].stem.replace("_leftImg8bit", ""), image, mask))
    from PIL import Image

    preds = []
    for name, image, _ in samples:
        probs = predict(model, image[None], **cfg.eval.inference_kwargs())
        pred = probs.argmax(1)[0]
        preds.append(pred)
        for suffix, array in (
            ("pred", colorize(pred)),
            ("overlay", overlay(denormalize(image), pred)),
        ):
            with atomic_path(out / f"{name}_{suffix}.png") as tmp:
                Image.fromarray(array).save(tmp, format="PNG")
    with_targets = [(s, p) for s, p in zip(samples, preds, strict=True) if s[2] is not None]
    if with_targets:
        grid = prediction_grid(
            [s[1] for s, _ in with_targets],
            [s[2] for s, _ in with_targets],
            [p for _, p in with_targets],
            titles=[s[0] for s, _ in with_targets],
        )
        save_figure(grid, out / "grid.png")
    print(
        f"{len(samples)} predictions in {out}"
        + (" (grid.png: image | truth | prediction | errors)" if with_targets else "")
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    from dgcn.fileio import file_sha256
    from dgcn.training.checkpoint import export_weights

    path = export_weights(args.checkpoint, args.out)
    size = path.stat().st_size / 2**20
    print(f"{path}: {size:.1f} MiB, sha256 {file_sha256(path)}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    # lazy: a command imports only what it needs, so `dgcn --help` starts fast
    from dgcn.reproduce import reproduce

    reproduce(
        preset=args.preset,
        data_root=args.data_root,
        seeds=args.seeds,
        rows=args.rows,
        out=args.out,
        overrides=args.opt,
        progress=not args.quiet,
        device=args.device,
    )
    return 0


def _add_inference_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="runs/<name>/last.pt or the authors' .pth")
    p.add_argument("--official", action="store_true", help="the file is the authors' checkpoint")
    p.add_argument("--config", help="data/eval config for --official (cityscapes-official)")
    p.add_argument("--data-root", help="dataset root (overrides data.root)")
    p.add_argument("--split", help="split (default: the config's val split)")
    p.add_argument("--mode", choices=["whole", "slide", "multiscale"])
    p.add_argument("--tile", type=int, help="sliding-window tile (the authors: 832)")
    p.add_argument("--overlap", type=float, help="sliding-window overlap (the authors: 1/3)")
    p.add_argument("--scales", type=float, nargs="+", help="multi-scale factors")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None)
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
    summary.add_argument("--classes", type=int, default=19)
    summary.add_argument(
        "--forward",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run one real forward pass on the CPU (random weights)",
    )
    summary.set_defaults(func=_summary)

    train = sub.add_parser("train", help="train one run (also under torchrun)")
    train.add_argument("--config", required=True, help="preset name or YAML path")
    train.add_argument("--opt", nargs="*", metavar="KEY=VALUE", help="e.g. train.lr=0.02")
    train.add_argument("--run-dir", help="output folder (default runs/<config name>)")
    train.add_argument("--resume", action="store_true", help="continue from run-dir/last.pt")
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
    evaluate.add_argument("--export", help="write labelId PNGs here (Cityscapes eval script)")
    evaluate.add_argument("--output", help="results JSON (default next to the checkpoint)")
    evaluate.add_argument("--workers", type=int, default=2)
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(func=_evaluate)

    predict = sub.add_parser("predict", help="colourised masks, overlays and grids as PNG")
    _add_inference_args(predict)
    predict.add_argument("--images", nargs="+", help="image files (else --count from --split)")
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
        help="rows to run: baseline coordinate feature both global-pool official-baseline "
        "official-coordinate official-feature official-both (default: the four paper rows, "
        "plus global-pool on a frozen backbone)",
    )
    reproduce.add_argument("--out", help="output folder (default runs/reproduce/<timestamp>)")
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
    minicity.add_argument("--out", default="data/minicity", help="output root")
    minicity.add_argument("--train", type=int, default=200, help="training images")
    minicity.add_argument("--val", type=int, default=50, help="validation images")
    minicity.add_argument("--test", type=int, default=0, help="test images")
    minicity.add_argument("--seed", type=int, default=0)
    minicity.add_argument("--size", nargs=2, type=int, default=(128, 256), metavar=("H", "W"))
    minicity.add_argument("--overwrite", action="store_true", help="replace another MiniCity")
    minicity.add_argument("--preview", metavar="PNG", help="also save a grid of train images")
    minicity.set_defaults(func=_make_minicity)

    check = sub.add_parser(
        "check-data", help="validate a Cityscapes-layout tree and print counts per split"
    )
    check.add_argument("--root", required=True, help="dataset root (holds leftImg8bit/)")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=_check_data)
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
    except KeyboardInterrupt:
        print("dgcn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
