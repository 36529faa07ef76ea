"""The fast paths on a device: half-precision autocast and channels_last against fp32, CUDA
against the CPU, the official block's peak memory on a GPU, a train + evaluate run, the T4's
training path (fp16 + GradScaler + accumulation + OHEM) and a bf16 run resumed in fp16.

Tests parametrised with ``DEVICES`` run on the CPU everywhere (so their logic is checked on
every machine) and again on CUDA where a GPU is present; ``cuda``-marked tests are skipped
without one (conftest.py).
"""

import contextlib
import copy
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_opts, train_argv

import dgcn
from dgcn.cli import main
from dgcn.models import DualGCN, build_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import modules as bench_modules  # noqa: E402
from authors_block import AuthorsDualGCN  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@contextlib.contextmanager
def no_tf32():
    """Full fp32 matmuls and convolutions on CUDA (TF32 would loosen every comparison)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def forward_backward(block, x, target, dtype=None, channels_last=False):
    """Output (fp32) and input gradient of ``(block(x) * target).mean()``."""
    x = x.detach().clone()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    ctx = torch.autocast(x.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    with ctx:
        out = block(x)
    (out.float() * target).mean().backward()
    return out.float().detach(), x.grad.float()


def relative_error(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("device", DEVICES)
def test_official_block_bf16_and_channels_last_track_fp32(device):
    """The fast path of the CUDA presets (bf16 autocast + channels_last) on the official block
    stays within 2 % (output) and 6 % (input gradient) of fp32, relative L2 (measured on a CPU:
    0.6 % and 2.8 %; bf16 keeps 8 significant bits)."""
    torch.manual_seed(0)
    block = DualGCN(64, "official").to(device).train()
    x = torch.randn(2, 64, 33, 41, device=device)
    target = torch.randn_like(x)
    with no_tf32():
        reference = forward_backward(copy.deepcopy(block), x, target)
    fast_block = copy.deepcopy(block).to(memory_format=torch.channels_last)
    fast = forward_backward(fast_block, x, target, torch.bfloat16, channels_last=True)
    for got, want, bound in zip(fast, reference, (0.02, 0.06), strict=True):
        assert torch.isfinite(got).all()
        assert relative_error(got, want) < bound


@pytest.mark.cuda
def test_official_block_on_cuda_equals_the_cpu():
    torch.manual_seed(0)
    block = DualGCN(64, "official").train()
    x = torch.randn(2, 64, 33, 41)
    target = torch.randn_like(x)
    cpu = forward_backward(copy.deepcopy(block), x, target)
    with no_tf32():
        gpu = forward_backward(copy.deepcopy(block).cuda(), x.cuda(), target.cuda())
    for got, want in zip(gpu, cpu, strict=True):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
def test_official_block_peak_memory_on_cuda_is_below_the_authors():
    """The issue's first shape, (2, 512, 97, 97): peak CUDA allocation of forward+backward."""
    x = torch.randn(2, 512, 97, 97, device="cuda")
    ours = bench_modules.measure(DualGCN(512, "official").cuda().train(), x, repeats=1)
    theirs = bench_modules.measure(AuthorsDualGCN(512).cuda().train(), x, repeats=1)
    assert ours["mib"] < theirs["mib"]


@pytest.mark.parametrize("device", DEVICES)
def test_train_and_evaluate_on_device(device, minicity, tmp_path, capsys):
    """Two iterations with the preset's precision chosen by the device (bf16 or fp16 on CUDA,
    fp32 on a CPU), then a whole-image evaluation of the checkpoint on the same device."""
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.iterations": 2, "train.precision": "auto"})
    assert main(train_argv(run, opts, "--device", device)) == 0
    summary = json.loads((run / "summary.json").read_text())
    expected = "fp32" if device == "cpu" else ("bf16", "fp16")
    assert summary["precision"] in expected
    output = tmp_path / "eval.json"
    checkpoint = str(run / "last.pt")
    evaluate = ["evaluate", "--checkpoint", checkpoint, "--workers", "0", "--mode", "whole"]
    assert main([*evaluate, "--device", device, "--quiet", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert sum(map(sum, result["confusion"])) > 0
    if device == "cuda":  # the same pixels counted, nearly the same predictions as the CPU
        on_cpu = tmp_path / "eval_cpu.json"
        assert main([*evaluate, "--device", "cpu", "--quiet", "--output", str(on_cpu)]) == 0
        reference = json.loads(on_cpu.read_text())
        assert sum(map(sum, result["confusion"])) == sum(map(sum, reference["confusion"]))
        assert abs(result["miou"] - reference["miou"]) < 0.01
    capsys.readouterr()


@pytest.mark.parametrize("device", DEVICES)
def test_whole_model_under_autocast_tracks_fp32(device):
    """The micro DGCNet (paper and official heads) in eval mode: bf16 + channels_last logits
    within 3 % of fp32, relative L2 (measured on a CPU: 0.3 %)."""
    for name in ("dgcnet_paper_micro", "dgcnet_official_micro"):
        model = build_model(name).to(device).eval()
        images = torch.randn(2, 3, 128, 256, device=device)
        with torch.no_grad(), no_tf32():
            reference = model(images)["out"]
        fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
        with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
            logits = fast(images.contiguous(memory_format=torch.channels_last))["out"]
        assert relative_error(logits.float(), reference) < 0.03, name


def _parameters_that_changed(before: dict, after: dict) -> list[str]:
    """The floating-point entries of two model state dicts that differ (BatchNorm's running
    statistics aside: they move in every forward pass, even in a skipped step)."""
    return [
        key
        for key, value in after.items()
        if value.is_floating_point()
        and "running_" not in key
        and not torch.equal(value, before[key])
    ]


@pytest.mark.cuda
def test_the_t4_path_fp16_scaler_accumulation_and_ohem(minicity, tmp_path, capsys):
    """The T4 preset's way of training on any CUDA GPU: fp16 autocast with a GradScaler, two
    micro-batches of 2 per step (batch 4) and OHEM (min_kept below the pixels of an image, so
    that the k-th value threshold is used). Six steps, then six more resumed from the fp16
    checkpoint (its scaler state loaded): finite losses, an enabled scaler, weights that move."""
    run = tmp_path / "run"
    t4 = {
        "train.precision": "fp16",
        "train.micro_batch": 2,
        "train.loss": "ohem",
        "train.ohem_min_kept": 1000,
    }
    opts = tiny_opts(minicity, **t4, **{"train.iterations": 6, "train.checkpoint_every": 3})
    assert main(train_argv(run, opts, "--device", "cuda")) == 0
    first = dgcn.load_checkpoint(run / "last.pt")
    assert first["iteration"] == 6
    assert math.isfinite(first["scaler"]["scale"]) and 0 < first["scaler"]["scale"] <= 2**16
    opts = tiny_opts(minicity, **t4, **{"train.iterations": 12, "train.checkpoint_every": 3})
    assert main(train_argv(run, opts, "--device", "cuda", "--resume")) == 0
    last = dgcn.load_checkpoint(run / "last.pt")
    assert last["iteration"] == 12 and "scale" in last["scaler"]
    assert _parameters_that_changed(first["model"], last["model"])
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["precision"], summary["micro_batch"], summary["accumulation"]) == (
        "fp16",
        2,
        2,
    )
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 12 and all(math.isfinite(loss) for loss in losses)
    assert all(r["gpu_mem_gib"] > 0 for r in records if "loss" in r)
    capsys.readouterr()


@pytest.mark.cuda
def test_a_bf16_run_resumed_in_fp16_reports_it_and_starts_a_fresh_scaler(
    minicity, tmp_path, capsys
):
    """A run keeps its own precision unless the resume overrides it (dgcn.training.resume): a
    bf16 run (on an Ampere or newer GPU) resumed with ``train.precision=fp16``, as on a T4,
    goes on in fp16, says so, records it in config-history.jsonl, and loads no GradScaler
    state from the bf16 checkpoint (a disabled scaler saves none) but starts a fresh one."""
    if torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("bf16 needs compute capability >= 8")
    run = tmp_path / "run"
    opts = tiny_opts(minicity, **{"train.precision": "bf16", "train.iterations": 2})
    assert main(train_argv(run, opts, "--device", "cuda")) == 0
    bf16 = dgcn.load_checkpoint(run / "last.pt")
    assert json.loads((run / "summary.json").read_text())["precision"] == "bf16"
    assert not bf16["scaler"]  # a disabled GradScaler's state is empty
    capsys.readouterr()
    opts = tiny_opts(minicity, **{"train.precision": "fp16", "train.iterations": 4})
    assert main(train_argv(run, opts, "--device", "cuda", "--resume")) == 0
    out = capsys.readouterr().out
    assert "bf16" in out and "fp16" in out, out  # the change is reported
    assert json.loads((run / "summary.json").read_text())["precision"] == "fp16"
    history = [json.loads(line) for line in (run / "config-history.jsonl").read_text().splitlines()]
    assert history[-1]["config"]["train"]["precision"] == "fp16"
    fp16 = dgcn.load_checkpoint(run / "last.pt")
    assert fp16["iteration"] == 4
    assert 0 < fp16["scaler"]["scale"] <= 2**16  # a fresh scaler (init 2**16), now enabled
    assert _parameters_that_changed(bf16["model"], fp16["model"])
