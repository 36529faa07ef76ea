"""One training iteration: s/iteration, images/s, peak memory and model-FLOP utilisation.

On CUDA: ``dgcnet_official_r101`` at 832x832, batch 8 (micro-batches with accumulation when
8 does not fit), in fp32 eager, bf16/fp16 autocast, + channels_last, + torch.compile, in one
run, plus a numerical check of the presets' fast path (half precision + channels_last) against
fp32 (logits and one SGD step). On a CPU: a small config (``dgcnet_paper_micro`` at 128x256,
batch 8), fp32 vs bf16 autocast. The JSON is rewritten after every variant (``complete``
false until the end), and ``--budget`` stops starting new variants after that many seconds.

FLOPs per iteration come from ``torch.utils.flop_counter`` (forward, x3 for forward+backward);
MFU divides the achieved FLOP/s by the GPU's dense bf16/fp16 peak given with ``--peak-tflops``
(default: 989 for an H100 SXM, an assumption to check against your card's datasheet).

    python benchmarks/train_step.py [--iterations 10] [--batch 8] [--size 832] [--budget S]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from dgcn.models import build_model  # noqa: E402
from dgcn.models.profile import count_flops  # noqa: E402
from dgcn.training.losses import SegmentationLoss  # noqa: E402


def variants(device: torch.device) -> list[dict]:
    if device.type == "cpu":
        return [
            {"name": "fp32 eager", "dtype": None, "channels_last": False, "compile": False},
            {
                "name": "bf16 autocast",
                "dtype": torch.bfloat16,
                "channels_last": False,
                "compile": False,
            },
        ]
    major, _ = torch.cuda.get_device_capability(device)
    half = torch.bfloat16 if major >= 8 else torch.float16
    tag = "bf16" if half is torch.bfloat16 else "fp16"
    return [
        {"name": "fp32 eager", "dtype": None, "channels_last": False, "compile": False},
        {"name": f"{tag} autocast", "dtype": half, "channels_last": False, "compile": False},
        {"name": f"{tag} + channels_last", "dtype": half, "channels_last": True, "compile": False},
        {
            "name": f"{tag} + channels_last + compile",
            "dtype": half,
            "channels_last": True,
            "compile": True,
        },
    ]


def step_fn(model, criterion, optimizer, variant, scaler):
    def step(images, masks, accumulation):
        optimizer.zero_grad(set_to_none=True)
        for i in range(accumulation):
            x, y = images[i], masks[i]
            ctx = (
                torch.autocast(x.device.type, dtype=variant["dtype"])
                if variant["dtype"]
                else contextlib.nullcontext()
            )
            with ctx:
                loss, _ = criterion(model(x), y)
            scaler.scale(loss / accumulation).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def run_variant(args, device, variant, flops_per_image):
    torch.manual_seed(0)
    model = build_model(args.model, num_classes=19).to(device).train()
    if variant["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if variant["compile"] else model
    criterion = SegmentationLoss(args.loss, aux_weight=0.4, ohem_min_kept=args.min_kept)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=variant["dtype"] is torch.float16)
    micro = args.batch
    while True:  # the largest micro-batch that fits, with accumulation to the batch
        try:
            accumulation = args.batch // micro
            images = [
                torch.randn(micro, 3, args.height, args.width, device=device)
                for _ in range(accumulation)
            ]
            if variant["channels_last"]:
                images = [x.contiguous(memory_format=torch.channels_last) for x in images]
            masks = [
                torch.randint(0, 19, (micro, args.height, args.width), device=device)
                for _ in range(accumulation)
            ]
            step = step_fn(runner, criterion, optimizer, variant, scaler)
            for _ in range(args.warmup):
                step(images, masks, accumulation)
            break
        except torch.OutOfMemoryError:
            if micro == 1:
                raise
            micro //= 2
            torch.cuda.empty_cache()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.iterations):
        start = time.perf_counter()
        step(images, masks, accumulation)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    result = {
        **{k: v for k, v in variant.items() if k != "dtype"},
        "dtype": str(variant["dtype"]).replace("torch.", "") if variant["dtype"] else "fp32",
        "micro_batch": micro,
        "accumulation": accumulation,
        "seconds_per_iter": seconds,
        "images_per_s": args.batch / seconds,
        "tflops_achieved": 3 * flops_per_image * args.batch / seconds / 1e12,
    }
    if device.type == "cuda":
        result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        result["mfu"] = result["tflops_achieved"] / args.peak_tflops
    return result, model


def numerical_check(args, device, fast_variant):
    """Logits and one SGD step of the fast path vs fp32, from the same weights and batch."""
    torch.manual_seed(0)
    reference = build_model(args.model, num_classes=19).to(device).train()
    fast = build_model(args.model, num_classes=19).to(device).train()
    fast.load_state_dict(reference.state_dict())
    if fast_variant["channels_last"]:
        fast = fast.to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, args.height, args.width, device=device)
    y = torch.randint(0, 19, (2, args.height, args.width), device=device)
    out = {}
    for name, model, dtype in (("fp32", reference, None), ("fast", fast, fast_variant["dtype"])):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        ctx = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        torch.manual_seed(1)  # the same dropout masks in both models
        with ctx:
            logits = model(x)
            loss, _ = SegmentationLoss("ce")(logits, y)
        loss.backward()
        optimizer.step()
        out[name] = (
            logits["out"].float().detach(),
            loss.item(),
            torch.cat([p.detach().flatten() for p in model.parameters()]),
        )
    logit_err = (out["fast"][0] - out["fp32"][0]).abs().max().item()
    scale = out["fp32"][0].abs().max().item()
    param_err = (out["fast"][2] - out["fp32"][2]).abs().max().item()
    return {
        "max_abs_logit_diff": logit_err,
        "max_abs_logit": scale,
        "loss_fp32": out["fp32"][1],
        "loss_fast": out["fast"][1],
        "max_abs_param_diff_after_step": param_err,
    }


def result_payload(args, flops: float, rows: list[dict], check: dict | None) -> dict:
    """The JSON of the variants measured so far (fp32 eager first)."""
    fastest = min(rows, key=lambda r: r["seconds_per_iter"]) if rows else None
    return {
        "model": args.model,
        "size": [args.height, args.width],
        "batch": args.batch,
        "forward_gflops_per_image": flops / 1e9,
        "variants": rows,
        "fastest": fastest["name"] if fastest else None,
        "speedup_fastest_vs_fp32": (
            rows[0]["seconds_per_iter"] / fastest["seconds_per_iter"] if fastest else None
        ),
        "numerical_check": check,
        "targets": {"cuda_seconds_per_iter": 0.25, "cuda_speedup_vs_fp32": 3.0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, nargs="+", help="H [W] (CUDA 832, CPU 128 256)")
    parser.add_argument("--model", help="preset (CUDA dgcnet_official_r101, CPU paper_micro)")
    parser.add_argument("--loss", default="ohem", choices=["ohem", "ce"])
    parser.add_argument("--min-kept", type=int, default=100_000)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument(
        "--budget", type=float, help="seconds; after fp32, no variant starts after this much time"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cpu = device.type == "cpu"
    args.model = args.model or ("dgcnet_paper_micro" if cpu else "dgcnet_official_r101")
    size = args.size or ([128, 256] if cpu else [832])
    args.height, args.width = size[0], size[-1]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    with torch.device("meta"):
        meta = build_model(args.model, num_classes=19)
    flops = count_flops(meta, (1, 3, args.height, args.width), train=True)["Global"]
    name = f"train_step_{device.type}"
    rows, ran, check = [], [], None

    def check_fast_path() -> dict | None:
        fast = ran[-1] if ran and ran[-1]["dtype"] else None
        return report_check(numerical_check(args, device, fast)) if fast else None

    # fp32 and the eager fast paths first, then the numerical check of the presets' fast path
    # (half precision + channels_last on CUDA, bf16 on a CPU), torch.compile last: the JSON is
    # rewritten after each, so a run stopped at its time limit keeps what it measured
    for variant in variants(device):
        if rows and args.budget and time.perf_counter() - started > args.budget:
            print(f"{variant['name']}: skipped, the --budget of {args.budget:.0f} s is spent")
            continue
        if variant["compile"] and check is None:
            check = check_fast_path()
            write_result(name, result_payload(args, flops, rows, check), complete=False)
        result, _ = run_variant(args, device, variant, flops)
        rows.append(result)
        ran.append(variant)
        print(
            f"{result['name']:<36}{result['seconds_per_iter']:>8.3f} s/it"
            f"{result['images_per_s']:>8.1f} img/s"
            + (
                f"{result['peak_gib']:>8.1f} GiB  MFU {100 * result['mfu']:.0f}%"
                if "mfu" in result
                else ""
            )
        )
        write_result(name, result_payload(args, flops, rows, check), complete=False)
    if check is None:  # no compile variant (a CPU), or it was skipped
        check = check_fast_path()
    payload = result_payload(args, flops, rows, check)
    if rows:
        print(f"fastest: {payload['fastest']}, {payload['speedup_fastest_vs_fp32']:.2f}x fp32")
    path = write_result(name, payload, complete=len(rows) == len(variants(device)))
    print(f"wrote {path}")


def report_check(check: dict) -> dict:
    """Print the numerical check of the fast path against fp32; returns it."""
    print(
        f"fast path vs fp32: max |logit diff| {check['max_abs_logit_diff']:.3g} "
        f"(max |logit| {check['max_abs_logit']:.3g}), loss {check['loss_fast']:.4f} vs "
        f"{check['loss_fp32']:.4f}"
    )
    return check


if __name__ == "__main__":
    main()
