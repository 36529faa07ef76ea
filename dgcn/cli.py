"""The ``dgcn`` command line (also ``python -m dgcn``).

Every user mistake ends as one line on stderr and exit status 2 (``--debug`` shows the
traceback); the CLI only wires the package together.
"""

from __future__ import annotations

import argparse
import sys
import time

from dgcn.errors import DgcnError


def _summary(args: argparse.Namespace) -> int:
    import torch

    from dgcn.models import build_model
    from dgcn.models.profile import block_table

    height, width = args.size
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
    from dgcn.datasets.minicity import make_minicity

    height, width = args.size
    start = time.perf_counter()
    counts = make_minicity(
        args.out, train=args.train, val=args.val, test=args.test, seed=args.seed,
        height=height, width=width, overwrite=args.overwrite,
    )  # fmt: skip
    listing = ", ".join(f"{split} {n}" for split, n in counts.items())
    print(
        f"MiniCity {height}x{width} in {args.out}: {listing} ({time.perf_counter() - start:.1f} s)"
    )
    if args.preview:
        from dgcn.datasets.minicity import write_preview

        print(f"preview: {write_preview(args.out, args.preview)}")
    return 0


def _check_data(args: argparse.Namespace) -> int:
    from dgcn.datasets.cityscapes import check_tree

    counts = check_tree(args.root, progress=not args.quiet)
    print(f"{args.root}: OK")
    for split, n in counts.items():
        print(f"  {split:<12}{n:>6} images with labels")
    return 0


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


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for user errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DgcnError as err:
        if args.debug:
            raise
        print(f"dgcn: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dgcn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
