"""The benchmark helpers: memory accounting and the Markdown report of the results."""

import json
import shutil
import sys
from pathlib import Path

import torch
from torch import nn

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import modules  # noqa: E402
import report  # noqa: E402


class SquareOfConv(nn.Module):
    """conv(x) ** 2 via a product: autograd saves the conv output twice, x once, the weight."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 1, bias=False)

    def forward(self, x):
        y = self.conv(x)
        return y * y


def test_saved_memory_counts_each_storage_once_without_input_and_parameters():
    x = torch.randn(2, 4, 16, 16)
    result = modules.measure(SquareOfConv(), x, repeats=1)
    assert result["mib"] * 2**20 == 2 * 8 * 16 * 16 * 4  # only y, once


def test_official_block_is_leaner_than_the_authors_block():
    """Memory is deterministic: our official block keeps less for backward than the replica
    of the authors' block (the CPU memory target of the performance issue)."""
    x = torch.randn(1, 64, 24, 24)
    ours = modules.measure(modules.DualGCN(64, "official").train(), x, repeats=1)
    theirs = modules.measure(modules.AuthorsDualGCN(64).train(), x, repeats=1)
    assert ours["mib"] < 0.8 * theirs["mib"]


def test_report_renders_committed_results_and_names_missing_ones(tmp_path):
    for path in (BENCHMARKS / "results").glob("*_cpu.json"):
        shutil.copy(path, tmp_path)
    shutil.copy(BENCHMARKS / "results" / "data_loading.json", tmp_path)
    text = report.report(tmp_path)
    assert "Not measured (no `train_step_cuda.json`)" in text
    record = json.loads((tmp_path / "modules_cpu.json").read_text())
    first = next(iter(record["official_vs_authors"].values()))
    assert f"| {first['ours_ms']:.1f} | {first['authors_ms']:.1f} |" in text
    (tmp_path / "data_loading.json").unlink()
    assert "Not measured (no `data_loading.json`)" in report.report(tmp_path)
