"""Planning a GPU run before it starts: the micro-batch that fits a GPU's memory and the time a
preset's schedule takes, both derived from counts made without a GPU.

- Memory: :func:`dgcn.models.profile.activation_memory` counts the bytes autograd keeps for
  backward per image (on fake CUDA tensors, under the run's autocast precision); the
  parameters' training state, a margin for the rest of a step and a fixed reserve are added by
  stated rules (:data:`STATE_BYTES_PER_PARAMETER`, :data:`ACTIVATION_MARGIN`,
  :data:`RESERVE_GIB`). :func:`memory_plan` takes the largest micro-batch that divides the
  batch and fits.
- Time: the FLOPs of the training forward pass (:func:`dgcn.models.profile.count_flops`), x3
  for forward + backward, over the whole schedule, divided by a GPU's dense fp16/bf16 peak
  (:data:`GPUS`) times an assumed model-FLOP utilisation (:data:`UTILISATION`).

Both are estimates until a GPU run replaces them: ``benchmarks/train_step.py`` measures the
peak memory, seconds per iteration and utilisation on a real card, ``benchmarks/end_to_end.py``
the utilisation of ``dgcn train`` itself (loader, OHEM, logging included), and a run's
``metrics.jsonl`` records ``gpu_mem_gib`` and seconds per iteration. Once those results are in
a source checkout's ``benchmarks/results/`` (``train_step_cuda.json``,
``end_to_end_cuda.json``), :func:`planned_utilisation` takes the measured utilisation in
place of the assumed one, and the plan says which it used. The hours are those of the
training iterations only: evaluation, during training or after it, is not included.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from dgcn.config import Config, model_overrides
from dgcn.errors import ConfigError
from dgcn.markdown import markdown_table
from dgcn.models.build import build_model
from dgcn.models.profile import activation_memory, count_flops


@dataclass(frozen=True)
class GpuSpec:
    """One GPU model as the plan sees it.

    Attributes:
        name: a short name (``"A100 40GB"``).
        memory_gib: the memory ``torch.cuda.get_device_properties(0).total_memory`` reports,
            in GiB (a little less than the datasheet's GB).
        peak_tflops: dense fp16/bf16 tensor-core peak of one GPU, TFLOP/s (without the 2:4
            sparsity that datasheets quote as twice this).
        bf16: whether the GPU has bf16 (``precision: auto`` picks bf16, else fp16).
        count: GPUs in the machine (one process each under ``torchrun``).
    """

    name: str
    memory_gib: float
    peak_tflops: float
    bf16: bool = True
    count: int = 1


#: the GPUs of the plan's table; peaks from NVIDIA's datasheets (T4: 65 TFLOP/s fp16 mixed
#: precision; L4: 242 fp16/bf16 with sparsity; A100: 312 bf16; H100 SXM: 1,979 bf16 with
#: sparsity), memory as torch reports it
GPUS = {
    gpu.name: gpu
    for gpu in (
        GpuSpec("T4", 14.7, 65.0, bf16=False),
        GpuSpec("L4", 22.0, 121.0),
        GpuSpec("A100 40GB", 39.4, 312.0),
        GpuSpec("A100 80GB", 79.1, 312.0),
        GpuSpec("H100 SXM", 79.1, 989.0),
        GpuSpec("8 x H100 SXM", 79.1, 989.0, count=8),
    )
}

#: assumed model-FLOP utilisation (achieved / peak FLOP/s), low and high: convolutions run on
#: the tensor cores, BatchNorm, ReLU, upsampling and the loss are memory-bound, and the input
#: pipeline and (with several GPUs) gradient exchange add waits; an assumption until
#: ``benchmarks/train_step.py`` measures it (its ``mfu`` column)
UTILISATION = (0.2, 0.4)
#: where a source checkout keeps the benchmarks' results (absent from an installed package)
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@dataclass(frozen=True)
class Utilisation:
    """The utilisation the hours are computed with.

    Attributes:
        low, high: model-FLOP utilisation (achieved / peak), the lower gives the most hours.
        source: ``"assumed"``, or where the measurement comes from (GPU and files).
    """

    low: float
    high: float
    source: str = "assumed"


def measured_utilisation(results: Path = RESULTS) -> Utilisation | None:
    """The utilisation measured on a GPU, from the benchmarks' JSON in ``results``; None
    when there is none.

    ``train_step_cuda.json``: the ``mfu`` of the presets' fast path (the half-precision
    channels_last eager variant: the step alone); ``end_to_end_cuda.json``: the ``mfu`` of
    ``dgcn train`` with the official preset (loader, OHEM, logging included). With both the
    range runs from the lower to the higher, with one it is that value.
    """
    found: list[tuple[float, str]] = []
    gpu = None
    for name in ("end_to_end_cuda.json", "train_step_cuda.json"):
        try:
            record = json.loads((results / name).read_text())
        except (OSError, ValueError):
            continue
        if "variants" in record:
            fast = [
                v
                for v in record["variants"]
                if v.get("channels_last") and not v.get("compile") and v.get("dtype") != "fp32"
            ]
            value = fast[0].get("mfu") if fast else None
        else:
            value = record.get("mfu") if record.get("complete") else None
        if value:
            found.append((float(value), name))
            gpu = gpu or record.get("machine", {}).get("gpu")
    if not found:
        return None
    values = [v for v, _ in found]
    files = " and ".join(f"benchmarks/results/{name}" for _, name in found)
    return Utilisation(min(values), max(values), f"measured on {gpu or 'a GPU'} ({files})")


def planned_utilisation(results: Path = RESULTS) -> Utilisation:
    """The measured utilisation (:func:`measured_utilisation`) when a GPU run left one, else
    the assumed :data:`UTILISATION`."""
    return measured_utilisation(results) or Utilisation(*UTILISATION)


#: fp32 weights, fp32 gradients and SGD's momentum buffer, per parameter
STATE_BYTES_PER_PARAMETER = 12
#: on top of the activations kept for backward: the gradients flowing through backward, OHEM's
#: softmax (computed without gradient) and the allocator's rounding, as a fraction
ACTIVATION_MARGIN = 0.2
#: the CUDA context, cuDNN workspaces and the allocator's cache, GiB
RESERVE_GIB = 1.0

_GIB = 2**30


def run_precision(cfg: Config, bf16: bool) -> str:
    """The precision a run of ``cfg`` uses on a GPU with (``bf16``) or without bf16."""
    if cfg.train.precision == "auto":
        return "bf16" if bf16 else "fp16"
    return cfg.train.precision


def _model(name: str, overrides: tuple, classes: int) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(name, classes, **dict(overrides))


@functools.lru_cache(maxsize=16)
def _flops(name: str, overrides: tuple, classes: int, crop: tuple) -> tuple[int, int]:
    """(parameters, training-forward FLOPs of one image)."""
    model = _model(name, overrides, classes)
    flops = count_flops(model, (1, 3, *crop), train=True)["Global"]
    return sum(p.numel() for p in model.parameters()), flops


@functools.lru_cache(maxsize=16)
def _saved(name: str, overrides: tuple, classes: int, crop: tuple, precision: str) -> tuple:
    """Bytes saved for backward at batch 1 and at batch 2."""
    model = _model(name, overrides, classes)
    one = activation_memory(model, (1, 3, *crop), precision)
    return one, activation_memory(model, (2, 3, *crop), precision)


def model_counts(cfg: Config, precision: str) -> dict[str, float]:
    """Parameters, FLOPs and activation memory of ``cfg``'s model at its training crop.

    Counted on the meta device and on fake CUDA tensors (no weights are loaded, no memory is
    allocated) and cached per model and crop; bf16 is counted as fp16 (the same bytes, the
    same autocast rules on CUDA).

    Returns:
        ``{"parameters", "forward_flops" (training forward of one image, aux head included),
        "per_image_bytes" (saved for backward, one more image), "constant_bytes" (saved
        whatever the batch: autocast's weight copies)}``
    """
    key = (
        cfg.model.name,
        tuple(sorted(model_overrides(cfg, pretrained=False).items())),
        cfg.num_classes,
        tuple(cfg.data.crop_size),
    )
    parameters, flops = _flops(*key)
    one, two = _saved(*key, "fp32" if precision == "fp32" else "fp16")
    return {
        "parameters": parameters,
        "forward_flops": flops,
        "per_image_bytes": two - one,
        "constant_bytes": 2 * one - two,
    }


def memory_plan(cfg: Config, memory_gib: float, bf16: bool = True, world_size: int = 1) -> dict:
    """The largest micro-batch of ``cfg`` that fits a GPU of ``memory_gib``, by the stated rule.

    A micro-batch ``m`` fits when ``fixed + m * per_image * (1 + ACTIVATION_MARGIN) <=
    memory_gib``, with ``fixed`` = the parameters' training state
    (``STATE_BYTES_PER_PARAMETER`` each) + the activations saved whatever the batch +
    ``RESERVE_GIB``; ``m`` divides the batch per process. When not even one image fits the
    plan says so (``fits`` False) and keeps micro-batch 1.

    Args:
        cfg: the run's config (model, crop, batch, precision).
        memory_gib: the GPU's memory as torch reports it.
        bf16: whether the GPU has bf16 (for ``precision: auto``).
        world_size: processes (GPUs) the batch is split over.

    Returns:
        ``{"precision", "per_image_gib", "fixed_gib", "micro_batch", "accumulation",
        "planned_gib", "fits"}``
    """
    precision = run_precision(cfg, bf16)
    counts = model_counts(cfg, precision)
    per_image = counts["per_image_bytes"] / _GIB
    fixed = (
        counts["parameters"] * STATE_BYTES_PER_PARAMETER + counts["constant_bytes"]
    ) / _GIB + RESERVE_GIB
    per_process = max(1, cfg.train.batch_size // world_size)
    divisors = [m for m in range(per_process, 0, -1) if per_process % m == 0]

    def need(micro: int) -> float:
        return fixed + micro * per_image * (1 + ACTIVATION_MARGIN)

    micro = next((m for m in divisors if need(m) <= memory_gib), 1)
    return {
        "precision": precision,
        "per_image_gib": per_image,
        "fixed_gib": fixed,
        "micro_batch": micro,
        "accumulation": per_process // micro,
        "planned_gib": need(micro),
        "fits": need(micro) <= memory_gib,
    }


def training_flops(cfg: Config) -> float:
    """FLOPs of ``cfg``'s whole schedule: 3 x the training forward (forward + backward, the
    backward pass costing about twice the forward) x batch x iterations."""
    key = (cfg.model.name, tuple(sorted(model_overrides(cfg, pretrained=False).items())))
    _, flops = _flops(*key, cfg.num_classes, tuple(cfg.data.crop_size))
    return 3 * flops * cfg.train.batch_size * cfg.train.iterations


def estimate_hours(
    cfg: Config, gpu: GpuSpec, utilisation: tuple[float, float] = UTILISATION
) -> tuple[float, float]:
    """(fewest, most) hours of training for ``cfg`` on ``gpu``: :func:`training_flops` over
    ``gpu.count * gpu.peak_tflops`` times the high and the low ``utilisation``. Training only:
    the evaluations and the time to start are not included."""
    low, high = utilisation
    rate = gpu.count * gpu.peak_tflops * 1e12
    flops = training_flops(cfg)
    return flops / (rate * high) / 3600, flops / (rate * low) / 3600


def plan_table(
    configs: dict[str, Config], gpus=None, utilisation: Utilisation | None = None
) -> list[dict]:
    """One row per config and GPU: the micro-batch the memory rule picks and the hours.

    Args:
        configs: ``{label: config}``, e.g. ``{"cityscapes-official": load_config(...)}``.
        gpus: :class:`GpuSpec` objects (default: every one of :data:`GPUS`).
        utilisation: for the hours (default: :func:`planned_utilisation`).

    Returns:
        rows ``{"config", "gpu", "precision", "micro_batch", "accumulation", "planned_gib",
        "fits", "hours_low", "hours_high"}``; the hours are None for an fp32 run (the peaks
        are those of fp16/bf16)
    """
    rate = utilisation or planned_utilisation()
    rows = []
    for label, cfg in configs.items():
        for gpu in gpus or GPUS.values():
            plan = memory_plan(cfg, gpu.memory_gib, gpu.bf16, gpu.count)
            # the peaks are those of fp16/bf16: an fp32 run gets no time
            fewest, most = (
                (None, None)
                if plan["precision"] == "fp32"
                else estimate_hours(cfg, gpu, (rate.low, rate.high))
            )
            rows.append(
                {
                    "config": label,
                    "gpu": gpu.name,
                    **{k: plan[k] for k in ("precision", "micro_batch", "accumulation")},
                    "planned_gib": plan["planned_gib"],
                    "fits": plan["fits"],
                    "hours_low": fewest,
                    "hours_high": most,
                }
            )
    return rows


def plan_markdown(
    configs: dict[str, Config], gpus=None, utilisation: Utilisation | None = None
) -> str:
    """:func:`plan_table` as a Markdown table, one row per GPU and one column per config
    (``micro-batch x accumulation, planned GiB, hours``), followed by the assumptions: the
    hours exclude evaluation, and the utilisation is named as assumed or measured (default:
    :func:`planned_utilisation`)."""
    gpus = list(gpus or GPUS.values())
    rate = utilisation or planned_utilisation()
    rows = plan_table(configs, gpus, rate)
    cells = {(r["config"], r["gpu"]): r for r in rows}
    body = []
    for gpu in gpus:
        per = " per GPU" if gpu.count > 1 else ""
        line = [f"{gpu.name} ({gpu.memory_gib:g} GiB)", f"{gpu.count * gpu.peak_tflops:,.0f}"]
        for label in configs:
            r = cells[(label, gpu.name)]
            memory = f"{r['planned_gib']:.1f} GiB" + ("" if r["fits"] else " (does not fit)")
            line.append(
                f"{r['precision']}, {r['micro_batch']} x {r['accumulation']}{per}, {memory}, "
                + _duration(r["hours_low"], r["hours_high"])
            )
        body.append(line)
    if rate.source == "assumed":
        at = f"an assumed {100 * rate.high:.0f} % (fewer hours) to {100 * rate.low:.0f} % (more)"
    elif rate.low == rate.high:
        at = f"{100 * rate.high:.0f} %, the utilisation {rate.source},"
    else:
        at = (
            f"{100 * rate.high:.0f} % (fewer hours) to {100 * rate.low:.0f} % (more), the "
            f"utilisation {rate.source},"
        )
    notes = [
        "Hours of training only: evaluation (during training and the final one) is not "
        "included. Estimates, not measurements: micro-batch x accumulation steps by the memory "
        f"rule of dgcn.training.plan (activations counted per image x "
        f"{1 + ACTIVATION_MARGIN:g} + {STATE_BYTES_PER_PARAMETER} bytes per parameter + "
        f"{RESERVE_GIB:g} GiB); hours = 3 x training-forward FLOPs x batch x iterations / "
        f"(peak x utilisation), at {at} of the dense fp16/bf16 peak.",
    ]
    header = ["GPU", "peak TFLOP/s", *configs]
    return markdown_table(header, body) + "\n\n" + "\n".join(notes)


def _duration(fewest: float | None, most: float | None) -> str:
    """``"25-50 h"``, ``"1.7-3.3 h"`` or, under an hour, ``"12-25 min"``."""
    if fewest is None or most is None:
        return "time not estimated (fp32)"
    if most < 1 / 60:
        return "under a minute"
    if most < 1:
        return f"{60 * fewest:.0f}-{60 * most:.0f} min"
    digits = 1 if fewest < 10 else 0
    return f"{fewest:.{digits}f}-{most:.{digits}f} h"


#: what a notebook says on a Colab runtime without a GPU
NO_GPU_ON_COLAB = (
    "this Colab runtime has no GPU: choose Runtime > Change runtime type > T4 GPU (or a larger "
    "one), save, and run the notebook again from the top"
)


def this_gpu(in_colab: bool = False, smoke: bool = False) -> tuple[str | None, float]:
    """(name, memory in GiB) of this machine's first CUDA GPU; (None, 0.0) without one.

    Raises:
        ConfigError: no GPU on a Colab runtime outside smoke mode (one line: how to switch),
            where training the CPU preset instead would waste the session.
    """
    if not torch.cuda.is_available():
        if in_colab and not smoke:
            raise ConfigError(NO_GPU_ON_COLAB)
        return None, 0.0
    return (
        torch.cuda.get_device_name(0),
        torch.cuda.get_device_properties(0).total_memory / 2**30,
    )


def card_for(name: str | None) -> GpuSpec | None:
    """The entry of :data:`GPUS` for a CUDA device name (``Tesla T4``, ``NVIDIA L4``,
    ``NVIDIA A100-SXM4-40GB``, ``NVIDIA H100 80GB HBM3``); None for another card. An H100
    PCIe is taken for the SXM card, whose peak is higher: its estimates are too short."""
    if name is None:
        return None
    upper = name.upper()
    for key, spec in GPUS.items():
        words = key.upper().replace(" SXM", "").split()
        if spec.count == 1 and all(word.replace("GB", "") in upper for word in words):
            return spec
    return None
