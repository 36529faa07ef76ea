"""The Colab route on a CPU: notebook 06's GPU cell with Colab emulated (no GPU: one line on
how to switch; smoke mode: the CPU path), notebook 07's Cityscapes cell likewise (it skips
and says how to switch), the card lookup behind the plan, the GPU metadata of both."""

import json
import subprocess
from pathlib import Path

import pytest

import dgcn
from dgcn.errors import ConfigError
from dgcn.training import plan

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "06_training.py"


def gpu_cell() -> str:
    """The code cell of notebook 06 that asks for this machine's GPU, up to the preset it
    chooses (what follows applies the notebook's schedule constants)."""
    cells = NOTEBOOK.read_text().split("# %%")
    cell = next(c for c in cells if "plan.this_gpu(IN_COLAB, SMOKE)" in c).split("\n", 1)[1]
    end = "PRESET, OVERRIDES, REASON = choose_preset(GPU_NAME, GPU_GIB)\n"
    return cell[: cell.index(end) + len(end)]


def run_cell(in_colab, smoke):
    names = {"dgcn": dgcn, "subprocess": subprocess, "IN_COLAB": in_colab, "SMOKE": smoke}
    names["choose_preset"] = lambda name, gib: ("minicity-cpu", [], "stub")
    return names, gpu_cell()


@pytest.mark.parametrize("smoke", [False, True])
def test_notebook_06_on_a_colab_runtime_without_a_gpu(smoke, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    names, code = run_cell(True, smoke)
    if smoke:  # the smoke path goes on, on the CPU preset
        exec(code, names)
        assert names["GPU_NAME"] is None and names["PRESET"] == "minicity-cpu"
        assert capsys.readouterr().out == "no CUDA GPU\n"
    else:  # one line, no traceback: how to switch the runtime
        with pytest.raises(SystemExit) as stop:
            exec(code, names)
        assert str(stop.value) == f"stop: {plan.NO_GPU_ON_COLAB}"
        assert "Runtime > Change runtime type" in str(stop.value)
        assert "\n" not in str(stop.value)


def test_off_colab_no_gpu_is_the_cpu_path(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert plan.this_gpu(in_colab=False) == (None, 0.0)
    with pytest.raises(ConfigError, match="no GPU"):
        plan.this_gpu(in_colab=True)


def test_the_card_behind_a_cuda_device_name():
    names = {
        "Tesla T4": "T4",
        "NVIDIA L4": "L4",
        "NVIDIA A100-SXM4-40GB": "A100 40GB",
        "NVIDIA A100-SXM4-80GB": "A100 80GB",
        "NVIDIA H100 80GB HBM3": "H100 SXM",
    }
    for device, card in names.items():
        assert plan.card_for(device).name == card, device
    assert plan.card_for("NVIDIA GeForce RTX 3090") is None and plan.card_for(None) is None


@pytest.mark.parametrize("name", ["06_training", "07_evaluation"])
def test_the_gpu_notebooks_ask_colab_for_a_t4(name):
    metadata = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["metadata"]
    assert metadata["accelerator"] == "GPU" and metadata["colab"]["gpuType"] == "T4"
    header = (NOTEBOOKS / f"{name}.py").read_text().split("# ---")[1]
    assert "#   colab:\n#     gpuType: T4" in header  # the paired .py keeps it on a sync


@pytest.mark.parametrize("in_colab", [False, True])
def test_notebook_07_cityscapes_cell_without_a_gpu(in_colab, tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cells = (NOTEBOOKS / "07_evaluation.py").read_text().split("# %%")
    code = next(c for c in cells if "plan.this_gpu(IN_COLAB, SMOKE)" in c).split("\n", 1)[1]
    names = {"dgcn": dgcn, "subprocess": subprocess, "IN_COLAB": in_colab, "SMOKE": False}
    names.update(ZIPS=tmp_path / "zips", CITYSCAPES_ROOT=tmp_path / "cityscapes")
    names.update(CITYSCAPES_CHECKPOINTS=[], first_checkpoint=lambda paths, kind: None)
    exec(code, names)
    out = capsys.readouterr().out
    if in_colab:  # Colab without a GPU: how to switch, nothing evaluated
        assert out == f"skipped: {plan.NO_GPU_ON_COLAB}\n"
    else:  # elsewhere the CPU is allowed: it skips only for the missing data
        assert out.startswith("skipped: no Cityscapes at ")
