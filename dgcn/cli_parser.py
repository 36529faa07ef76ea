"""The ``dgcn`` command's arguments: one sub-command per job, each with a one-line purpose,
its options with their defaults, and one example (``dgcn COMMAND --help`` shows all three).

Only the parser is here (:func:`build_parser`); ``dgcn.cli`` runs the command it parses. No
module that loads torch is imported, so that ``dgcn --help`` stays fast.
"""

from __future__ import annotations

import argparse
import textwrap
import typing

import dgcn
from dgcn.cli_args import OneLineParser, integer
from dgcn.config import EvalConfig, load_config
from dgcn.config_check import BATCH_MAX, SEED_MAX, SIDE_MAX, WORKERS_MAX

#: the preset whose data part gives ``make-minicity`` its defaults
MINICITY_PRESET = "minicity-cpu"

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

#: per sub-command: its line in ``dgcn --help``, its purpose and one example
COMMANDS = {
    "summary": (
        "parameters and FLOPs per block, and one forward pass on a random image",
        "Count the parameters and FLOPs of a preset's network per block (on the meta device, "
        "no memory allocated) and, unless --no-forward, run one forward pass on the CPU.",
        "dgcn summary --model dgcnet_paper_r101 --size 1024 2048 --no-forward",
    ),
    "plan": (
        "micro-batch and training time of presets on common GPUs (estimates)",
        "Estimate, for each preset and GPU, the micro-batch that fits in memory and the hours "
        "a whole run takes (a table in Markdown; nothing is run).",
        "dgcn plan --config cityscapes-official --gpu T4 'H100 SXM'",
    ),
    "train": (
        "train one run (also under torchrun)",
        "Train one run of a preset or YAML config into its run folder: checkpoints, "
        "metrics.jsonl, curves.png and summary.json; --resume continues a stopped run.",
        "dgcn train --config minicity-cpu --opt train.iterations=200",
    ),
    "evaluate": (
        "mIoU, per-class IoU, pixel accuracy of a model",
        "Evaluate a checkpoint on a split (mIoU, IoU per class, pixel accuracy) in the test "
        "mode of its config or of the options below; the results as JSON.",
        "dgcn evaluate --checkpoint runs/minicity-cpu/last.pt --mode slide --tile 128",
    ),
    "predict": (
        "colourised masks, overlays and grids as PNG",
        "Write each image's prediction as a colour PNG and an overlay, and a grid of image, "
        "truth, prediction and errors (the grid needs matplotlib).",
        "dgcn predict --checkpoint runs/minicity-cpu/last.pt --count 4 --out runs/predictions",
    ),
    "reproduce": (
        "the ablation table: baseline, coordinate, feature, both (make demo)",
        "Train the rows of the paper's ablation (and its controls) one after the other and "
        "write the table, its CSV and figures; a stopped table continues with the same --out.",
        "dgcn reproduce --seeds 0 1 2 --rows baseline both",
    ),
    "export": (
        "a run's weights and config without optimizer state, with its sha256",
        "Write a run's weights and config without the optimizer state, to share or commit; "
        "prints its size and sha256.",
        "dgcn export --checkpoint runs/minicity-cpu/last.pt --out minicity-cpu.pt",
    ),
    "make-minicity": (
        "generate MiniCity, a synthetic city in the Cityscapes layout",
        "Generate MiniCity, street scenes drawn in the Cityscapes layout (images, labelIds "
        "and colour labels); the same seed gives byte-identical files.",
        "dgcn make-minicity --out data/minicity --train 200 --val 50 --seed 0",
    ),
    "check-data": (
        "validate a Cityscapes-layout or PASCAL Context tree and print counts per split",
        "Decode every image and label of a dataset tree and print the images per split; the "
        "first problem found is named in one line with what to do.",
        "dgcn check-data --root data/cityscapes",
    ),
    "convert-pascal-context": (
        "write the PASCAL Context .mat labels once as 8-bit PNGs (values 0..59)",
        "Convert the PASCAL Context .mat labels once to 8-bit PNGs (values 0..59) where the "
        "loader finds them (needs scipy: pip install scipy).",
        "dgcn convert-pascal-context --root data/pascal-context/VOCdevkit/VOC2010",
    ),
}


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal, the example lines (indented) as written; each
    option's default after its help, unless the help already says it or there is none
    (``None``, a flag's ``False``)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            indent + line
            if line.startswith("  ")
            else textwrap.fill(
                line,
                width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
            )
            for line in text.splitlines()
        )

    def _split_lines(self, text: str, width: int) -> list[str]:
        # a name such as cityscapes-official stays on one line
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or not action.option_strings
            or default is None
            or default is False
            or default == argparse.SUPPRESS
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def _choices(field: str) -> tuple[str, ...]:
    """The choices of an :class:`EvalConfig` field, read from its type."""
    return typing.get_args(typing.get_type_hints(EvalConfig)[field])


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cuda", "cpu"],
        help="where to run (auto: the GPU when there is one)",
    )


def _add_inference_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="runs/<name>/last.pt or the authors' .pth")
    p.add_argument("--official", action="store_true", help="the file is the authors' checkpoint")
    p.add_argument(
        "--config",
        help="data/eval config for --official (default: cityscapes-official)",
    )
    p.add_argument("--data-root", help="dataset root (default: the config's data.root)")
    p.add_argument("--split", help="split (default: the config's val split)")
    the_config = "(default: the checkpoint's config, eval.{})"
    p.add_argument(
        "--mode", choices=_choices("mode"), help="test mode " + the_config.format("mode")
    )
    p.add_argument(
        "--tile",
        type=int,
        help="sliding-window tile (the authors: 832) " + the_config.format("tile"),
    )
    p.add_argument(
        "--overlap",
        type=float,
        help="sliding-window overlap (the authors: 1/3) " + the_config.format("overlap"),
    )
    p.add_argument(
        "--scales", type=float, nargs="+", help="multi-scale factors " + the_config.format("scales")
    )
    p.add_argument(
        "--scale-tile",
        type=int,
        help="--mode multiscale: slide this tile over every scale (default: each scale whole, "
        "as the authors)",
    )
    p.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also predict the mirror image " + the_config.format("flip"),
    )
    p.add_argument(
        "--average",
        choices=_choices("average"),
        help="what windows, scales and flips average (the authors: logits) "
        + the_config.format("average"),
    )
    p.add_argument(
        "--precision",
        choices=_choices("precision"),
        help="autocast (auto: bf16 on CUDA >= Ampere, fp16 before, fp32 on a CPU) "
        + the_config.format("precision"),
    )
    p.add_argument("--opt", nargs="*", metavar="KEY=VALUE", help="config overrides")
    _device(p)


def _quiet(p: argparse.ArgumentParser, what: str = "no progress bars") -> None:
    p.add_argument("--quiet", action="store_true", help=what)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per job (its name in ``args.command``)."""
    parser = OneLineParser(
        prog="dgcn",
        description="Dual Graph Convolutional Network: build, train, evaluate.",
        epilog="examples:\n  dgcn reproduce    # the ablation table on MiniCity, on a CPU\n"
        "  dgcn train --config minicity-cpu\n  dgcn COMMAND --help",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dgcn {dgcn.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str) -> argparse.ArgumentParser:
        line, purpose, example = COMMANDS[name]
        return sub.add_parser(
            name,
            help=line,
            description=purpose,
            epilog=f"example:\n  {example}",
            formatter_class=HelpFormatter,
        )

    summary = command("summary")
    summary.add_argument("--model", default="dgcnet_official_r101", help="a preset name")
    summary.add_argument(
        "--size",
        nargs=2,
        type=integer(32, SIDE_MAX),
        default=(1024, 2048),
        metavar=("H", "W"),
        help="input size",
    )
    summary.add_argument("--batch", type=integer(1, BATCH_MAX), default=1, help="images per batch")
    summary.add_argument(
        "--classes", type=integer(1), help="classes (default: the Cityscapes train ids)"
    )
    summary.add_argument(
        "--forward",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run one real forward pass on the CPU (random weights)",
    )

    plan = command("plan")
    plan.add_argument(
        "--config",
        nargs="+",
        default=["cityscapes-official", "cityscapes-paper"],
        help="presets or YAML paths, one column each",
    )
    plan.add_argument("--gpu", nargs="+", help="GPU names (default: all; e.g. T4 'H100 SXM')")
    plan.add_argument("--opt", nargs="*", metavar="KEY=VALUE", help="overrides for every config")

    train = command("train")
    train.add_argument("--config", required=True, help="preset name or YAML path")
    train.add_argument(
        "--opt", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.lr=0.02"
    )
    train.add_argument("--run-dir", help="output folder (default: runs/<config name>)")
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
    _device(train)
    _quiet(train)

    evaluate = command("evaluate")
    _add_inference_args(evaluate)
    evaluate.add_argument(
        "--export",
        help="write labelId PNGs here (Cityscapes eval script): a new or empty folder outside "
        "the dataset, or the export of this same evaluation",
    )
    evaluate.add_argument(
        "--output",
        help="results .json (default: next to the checkpoint, eval-<checkpoint>-<split>-<mode>-"
        "<hash of the settings>.json; in runs/evaluate/ for the committed models); an existing "
        "file is replaced only when it holds this same evaluation's results",
    )
    evaluate.add_argument(
        "--report-scaled",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also report mIoU x K/(K+1), labelled 'EncNet-style K+1' (PASCAL Context: the "
        "59-class mIoU x 59/60, the 60-class figure some papers print) (default: the config's "
        "eval.report_scaled)",
    )
    evaluate.add_argument(
        "--workers", type=integer(0, WORKERS_MAX), default=2, help="data loader processes"
    )
    _quiet(evaluate)

    predict = command("predict")
    _add_inference_args(predict)
    predict.add_argument(
        "--images",
        nargs="+",
        help="image files of distinct names: x.png gives x_pred.png (default: --count images "
        "of --split)",
    )
    predict.add_argument("--count", type=integer(1), default=8, help="images of the split to show")
    predict.add_argument("--out", default="runs/predictions", help="output folder")

    reproduce = command("reproduce")
    reproduce.add_argument(
        "--preset",
        default="minicity-ablation",
        help="config preset of the rows (default: minicity-ablation, the CPU ablation on a "
        "frozen MiniCity backbone)",
    )
    reproduce.add_argument(
        "--data-root", help="dataset root, Cityscapes for the GPU presets (default: the preset's)"
    )
    reproduce.add_argument(
        "--seeds", type=integer(0, SEED_MAX), nargs="+", default=[0], help="one table per seed"
    )
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
        help="output folder (default: runs/reproduce/<timestamp>); one that holds a table of the "
        "same settings is continued: finished rows kept, the current row resumed",
    )
    reproduce.add_argument(
        "--join",
        nargs="+",
        metavar="RUN_DIR",
        help="finished runs of `dgcn train` that stand for the table's row whose config they have",
    )
    reproduce.add_argument("--opt", nargs="*", metavar="KEY=VALUE", help="config overrides")
    _device(reproduce)
    _quiet(reproduce)

    export = command("export")
    export.add_argument("--checkpoint", required=True, help="runs/<name>/last.pt")
    export.add_argument("--out", required=True, help="the file to write")

    minicity = command("make-minicity")
    data = load_config(MINICITY_PRESET).data  # the defaults: the CPU preset's MiniCity
    minicity.add_argument("--out", default=data.root, help="output root")
    minicity.add_argument(
        "--train", type=integer(0), default=data.minicity_train, help="training images"
    )
    minicity.add_argument(
        "--val", type=integer(0), default=data.minicity_val, help="validation images"
    )
    minicity.add_argument("--test", type=integer(0), default=0, help="test images")
    minicity.add_argument(
        "--seed",
        type=integer(0, SEED_MAX),
        default=data.minicity_seed,
        help="the random seed of the scenes",
    )
    minicity.add_argument(
        "--size",
        nargs=2,
        type=integer(16, SIDE_MAX),
        default=tuple(data.minicity_size),
        metavar=("H", "W"),
        help="image size",
    )
    minicity.add_argument(
        "--generator-version",
        type=int,
        default=data.minicity_version,
        help="the generator's rules: 2 mixes trucks, buses and trains in one image; 1 rebuilds "
        "the first edition's data byte for byte",
    )
    minicity.add_argument("--overwrite", action="store_true", help="replace another MiniCity")
    minicity.add_argument("--preview", metavar="PNG", help="also save a grid of train images")

    check = command("check-data")
    check.add_argument(
        "--root",
        required=True,
        help="dataset root (Cityscapes: holds leftImg8bit/; PASCAL Context: VOCdevkit/VOC2010)",
    )
    check.add_argument(
        "--dataset",
        default="cityscapes",
        choices=["cityscapes", "minicity", "pascal-context", "pascal-context-60"],
        help="the layout to check (minicity is the Cityscapes layout)",
    )
    _quiet(check, "no progress bar")

    convert = command("convert-pascal-context")
    convert.add_argument(
        "--root", required=True, help="the VOC2010 folder (holds JPEGImages/ and trainval/)"
    )
    convert.add_argument(
        "--out",
        help="folder that receives SegmentationClassContext/ (default: VOCdevkit/VOC2010, where "
        "the loader finds it)",
    )
    convert.add_argument("--overwrite", action="store_true", help="replace existing PNGs")
    _quiet(convert, "no progress bar")
    return parser
