"""Planning a GPU run without a GPU: the activation-memory counter against hand counts, the
memory rule's micro-batch and the time estimate's arithmetic (dgcn.training.plan)."""

from pathlib import Path

import pytest
import torch
from torch import nn

import dgcn
from dgcn.cli import main
from dgcn.models.profile import activation_memory, count_flops
from dgcn.training import plan

CONV_RELU_INPUT = (2, 3, 8, 8)


def conv_relu():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU())


def test_activation_memory_fp32_is_the_conv_input_and_the_relu_output():
    # conv saves its input (2x3x8x8 fp32) and its weight (a parameter: not counted); ReLU
    # saves its output (2x4x8x8 fp32)
    expected = 2 * 3 * 8 * 8 * 4 + 2 * 4 * 8 * 8 * 4
    assert activation_memory(conv_relu(), CONV_RELU_INPUT, "fp32", loss=False) == expected


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_activation_memory_under_autocast_counts_half_copies(precision):
    # autocast casts the input and the weight to 16 bits and the conv saves both copies; the
    # ReLU's output is 16 bits too
    expected = 2 * 3 * 8 * 8 * 2 + 4 * 3 * 3 * 3 * 2 + 2 * 4 * 8 * 8 * 2
    assert activation_memory(conv_relu(), CONV_RELU_INPUT, precision, loss=False) == expected


def test_activation_memory_adds_the_cross_entropy():
    # log_softmax keeps its fp32 output (2x4x8x8), nll_loss the int64 target (2x8x8) and its
    # total weight (one fp32 scalar)
    loss = 2 * 4 * 8 * 8 * 4 + 2 * 8 * 8 * 8 + 4
    without = activation_memory(conv_relu(), CONV_RELU_INPUT, "fp16", loss=False)
    assert activation_memory(conv_relu(), CONV_RELU_INPUT, "fp16") == without + loss


class TwoViews(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 4, 1, 1))

    def forward(self, x):
        s = torch.sigmoid(x + self.bias)  # the sum saves nothing, the sigmoid saves s
        return s[:, :2] * s[:, 2:]  # saves two views of s: the same storage


def test_activation_memory_counts_a_storage_once():
    assert activation_memory(TwoViews(), (2, 4, 8, 8), loss=False) == 2 * 4 * 8 * 8 * 4


def test_activation_memory_leaves_the_model_alone():
    model = conv_relu().eval()
    before = model[0].weight.detach().clone()
    activation_memory(model, CONV_RELU_INPUT, "fp16")
    assert model[0].weight.device.type == "cpu" and not model.training
    assert torch.equal(model[0].weight, before)
    with pytest.raises(ValueError, match="precision"):
        activation_memory(model, CONV_RELU_INPUT, "fp8")


def test_memory_plan_takes_the_largest_divisor_that_fits():
    cfg = dgcn.load_config("minicity-cpu", ["train.batch_size=8", "train.precision=auto"])
    counts = plan.model_counts(cfg, "bf16")
    per_image = counts["per_image_bytes"] / 2**30
    assert per_image > 0
    roomy = plan.memory_plan(cfg, 1000.0)
    assert (roomy["micro_batch"], roomy["accumulation"], roomy["precision"]) == (8, 1, "bf16")
    fixed = roomy["fixed_gib"]
    expected = (
        counts["parameters"] * plan.STATE_BYTES_PER_PARAMETER + counts["constant_bytes"]
    ) / 2**30 + plan.RESERVE_GIB
    assert fixed == pytest.approx(expected)
    # room for 7 images: 4 is the largest divisor of 8 that fits
    seven = fixed + 7 * per_image * (1 + plan.ACTIVATION_MARGIN)
    tight = plan.memory_plan(cfg, seven, bf16=False)
    assert (tight["micro_batch"], tight["accumulation"], tight["precision"]) == (4, 2, "fp16")
    assert tight["fits"] and tight["planned_gib"] <= seven
    none = plan.memory_plan(cfg, fixed)
    assert none["micro_batch"] == 1 and not none["fits"]
    two_gpus = plan.memory_plan(cfg, 1000.0, world_size=2)
    assert (two_gpus["micro_batch"], two_gpus["accumulation"]) == (4, 1)


def test_estimate_hours_is_the_flop_count_over_the_peak():
    cfg = dgcn.load_config("minicity-cpu", ["train.iterations=1000", "train.batch_size=4"])
    with torch.device("meta"):
        model = dgcn.build_model(cfg.model.name, **cfg.model.overrides)
    forward = count_flops(model, (1, 3, *cfg.data.crop_size), train=True)["Global"]
    assert plan.training_flops(cfg) == 3 * forward * 4 * 1000
    gpu = plan.GpuSpec("test", 10.0, peak_tflops=100.0, count=2)
    fewest, most = plan.estimate_hours(cfg, gpu, utilisation=(0.25, 0.5))
    assert fewest == pytest.approx(3 * forward * 4000 / (2 * 100e12 * 0.5) / 3600)
    assert most == pytest.approx(2 * fewest)


def test_plan_markdown_and_the_cli(capsys):
    cfg = dgcn.load_config("minicity-cpu", ["train.precision=auto"])
    text = plan.plan_markdown({"micro": cfg}, [plan.GPUS["T4"], plan.GPUS["8 x H100 SXM"]])
    lines = text.splitlines()
    assert lines[0] == "| GPU | peak TFLOP/s | micro |"
    assert lines[2].startswith("| T4 (14.7 GiB) | 65 | fp16, 8 x 1, ")
    assert "1 x 1 per GPU" in lines[3] and "Estimates, not measurements" in text
    assert main(["plan", "--config", "minicity-cpu", "--gpu", "L4"]) == 0
    out = capsys.readouterr().out
    assert "| L4 (22 GiB) | 121 | fp32, 8 x 1, " in out and "not estimated (fp32)" in out
    assert main(["plan", "--gpu", "V100"]) == 2
    assert "unknown GPU 'V100'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_official_recipe_fits_eight_images_on_an_a100_40gb():
    """The ResNet-101 DGCNet at 832 x 832 in mixed precision: about 2.7 GiB of activations per
    image, so 2 images per pass on a T4 and all 8 on an A100 40GB."""
    cfg = dgcn.load_config("cityscapes-official")
    t4 = plan.memory_plan(cfg, plan.GPUS["T4"].memory_gib, bf16=False)
    a100 = plan.memory_plan(cfg, plan.GPUS["A100 40GB"].memory_gib)
    assert 2.5 < t4["per_image_gib"] < 3.0
    assert (t4["precision"], t4["micro_batch"], t4["accumulation"]) == ("fp16", 2, 4)
    assert (a100["precision"], a100["micro_batch"], a100["accumulation"]) == ("bf16", 8, 1)


@pytest.mark.slow
def test_the_readme_shows_what_dgcn_plan_prints():
    """The README's plan table and per-image figures are the output of `dgcn plan` and of the
    activation-memory count, not numbers typed by hand."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    configs = {name: dgcn.load_config(name) for name in ("cityscapes-official", "cityscapes-paper")}
    for line in plan.plan_markdown(configs).splitlines():
        if line.startswith("|"):
            assert line in readme.splitlines(), line
    official = configs["cityscapes-official"]
    for precision in ("bf16", "fp32"):
        per_image = plan.model_counts(official, precision)["per_image_bytes"] / 2**30
        assert f"{per_image:.2f} GiB" in readme, (precision, per_image)
    assert f"{plan.training_flops(official) / 1e18:.2f} x 10^18 FLOPs" in readme
