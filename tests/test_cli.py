"""The command line's defaults come from the package, and its parser stays light."""

import subprocess
import sys

from dgcn.cli import main
from dgcn.cli_parser import MINICITY_PRESET, build_parser
from dgcn.config import load_config
from dgcn.datasets.labels import NUM_CLASSES


def test_make_minicity_defaults_are_the_presets_data():
    args = build_parser().parse_args(["make-minicity"])
    data = load_config(MINICITY_PRESET).data
    assert args.out == data.root
    assert (args.train, args.val, args.seed) == (
        data.minicity_train,
        data.minicity_val,
        data.minicity_seed,
    )
    assert list(args.size) == data.minicity_size


def test_summary_classes_default_to_the_label_table(capsys):
    argv = ["summary", "--model", "fcn_r18", "--size", "64", "64", "--no-forward"]
    assert main(argv) == 0
    assert f"{NUM_CLASSES} classes" in capsys.readouterr().out


def test_the_parser_does_not_import_torch():
    code = "import sys, dgcn.cli; dgcn.cli.build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
