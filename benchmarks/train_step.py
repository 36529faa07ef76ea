"""One training iteration: s/iteration, images/s, memory, first-iteration time and utilisation.

On CUDA: ``dgcnet_official_r101`` at 832x832, batch 8 (micro-batches with accumulation when
8 does not fit), eager, in this order: **TF32 eager** (fp32 weights, convolutions and matrix
products in TF32, as the training loop sets them), bf16 (fp16 before Ampere) autocast, +
channels_last, then **fp32 eager with TF32 off** (true fp32); then a numerical check of the
presets' fast path (half precision + channels_last) against true fp32 (logits and one SGD
step). ``--compile`` runs the fast path under ``torch.compile`` instead, alone, into its own
JSON (``train_step_compile_<device>.json``), its compile seconds apart from the step time.
On a CPU: a small config (``dgcnet_paper_micro`` at 128x256, batch 8), fp32 vs bf16 autocast.

``--authors DIR`` runs the side-by-side with the authors' whole network instead (their
``DualSeg_res101`` and ``CriterionOhemDSN``, imported from a copy of their repository, see
``benchmarks/authors_network.py``): their network, ours holding the same weights through the
converter, the first-step losses compared in true fp32, then each eager variant timed on
both networks, ours/authors per variant (``authors_train_step_<device>.json``).

The JSON is rewritten after every variant (``complete`` false until the end), and
``--budget`` stops starting new variants after that many seconds. FLOPs per iteration come
from ``torch.utils.flop_counter`` (forward, x3 for forward+backward); utilisation (MFU) is
given against the datasheet's dense bf16 peak (``--peak-tflops``: 989 for an H100 SXM) and
against the bf16 matrix-product rate measured on this GPU (``common.matmul_tflops``; about 790
on an H100). Memory: peak allocated and peak reserved, free and total as the driver reports.

    python benchmarks/train_step.py [--iterations 10] [--batch 8] [--size 832] [--budget S]
    python benchmarks/train_step.py --compile
    python benchmarks/train_step.py --authors DIR [--depths 3 4 23 3]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import authors_network as authors  # noqa: E402
from common import (  # noqa: E402
    cuda_memory,
    die,
    matmul_tflops,
    tf32,
    tf32_state,
    write_result,
)

from dgcn.models import build_model  # noqa: E402
from dgcn.models.profile import count_flops  # noqa: E402
from dgcn.training.losses import SegmentationLoss  # noqa: E402
from dgcn.training.plan import card_for  # noqa: E402

#: the H100 SXM's dense bf16 peak, TFLOP/s, for a GPU that dgcn.training.plan does not list
DEFAULT_PEAK = 989.0


def variant(name, dtype=None, channels_last=False, compile=False, tf32_on=None) -> dict:
    """One way to run the step; ``tf32_on`` None leaves the TF32 settings alone (a CPU)."""
    return {
        "name": name,
        "dtype": dtype,
        "channels_last": channels_last,
        "compile": compile,
        "tf32": tf32_on,
    }


def variants(device: torch.device, compiled: bool = False) -> list[dict]:
    """The variants in the order they are measured: what matters most first."""
    if device.type == "cpu":
        eager = [variant("fp32 eager"), variant("bf16 autocast", torch.bfloat16)]
        return (
            [variant("bf16 autocast + compile", torch.bfloat16, compile=True)]
            if compiled
            else eager
        )
    major, _ = torch.cuda.get_device_capability(device)
    half = torch.bfloat16 if major >= 8 else torch.float16
    tag = "bf16" if half is torch.bfloat16 else "fp16"
    if compiled:
        return [variant(f"{tag} + channels_last + compile", half, True, True, True)]
    return [
        variant("TF32 eager", tf32_on=True),
        variant(f"{tag} autocast", half, tf32_on=True),
        variant(f"{tag} + channels_last", half, True, tf32_on=True),
        variant("fp32 eager, TF32 off", tf32_on=False),
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


def timed(step, device) -> float:
    """Seconds of one call of ``step``, the device synchronised before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def run_variant(
    args, device, variant, flops_per_image, make_model=None, criterion=None, on_first=None
):
    """Time ``variant``: warm-up steps (the first one timed on its own), then
    ``args.iterations`` timed steps (their median). ``make_model`` builds the network on the
    CPU (default: ``args.model`` from seed 0), ``criterion`` maps (outputs, masks) to
    (loss, parts) (default: the package's loss); ``on_first`` is called with the first
    iteration's seconds as soon as it has run (a compiled variant's compilation, kept even if
    a time limit stops the rest)."""
    torch.manual_seed(0)
    model = (make_model or (lambda: build_model(args.model, num_classes=19)))()
    model = model.to(device).train()
    if variant["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if variant["compile"] else model
    criterion = criterion or SegmentationLoss(
        args.loss, aux_weight=0.4, ohem_min_kept=args.min_kept
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=variant["dtype"] is torch.float16)
    settings = tf32(variant["tf32"]) if variant["tf32"] is not None else contextlib.nullcontext()
    micro = args.batch
    with settings:
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
                once = functools.partial(step, images, masks, accumulation)
                warmup = [timed(once, device)]
                if on_first is not None:
                    on_first(warmup[0])
                warmup += [timed(once, device) for _ in range(args.warmup - 1)]
                break
            except torch.OutOfMemoryError:
                if micro == 1:
                    raise
                micro //= 2
                torch.cuda.empty_cache()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = [timed(once, device) for _ in range(args.iterations)]
        state = tf32_state() if device.type == "cuda" else None
    seconds = statistics.median(times)
    achieved = 3 * flops_per_image * args.batch / seconds / 1e12 if flops_per_image else None
    result = {
        **{k: v for k, v in variant.items() if k not in ("dtype", "tf32")},
        "dtype": str(variant["dtype"]).replace("torch.", "") if variant["dtype"] else "fp32",
        "tf32": state,
        "micro_batch": micro,
        "accumulation": accumulation,
        "seconds_per_iter": seconds,
        "images_per_s": args.batch / seconds,
        "first_iteration_s": warmup[0] if warmup else None,
        "warmup_seconds": warmup,
        "tflops_achieved": achieved,
        **cuda_memory(device),
        "mfu": achieved / args.peak_tflops if achieved and device.type == "cuda" else None,
        "mfu_matmul": achieved / args.matmul_tflops if achieved and args.matmul_tflops else None,
    }
    if variant["compile"]:  # the warm-up's time beyond as many steady steps: compilation
        result["compile_seconds"] = max(0.0, sum(warmup) - len(warmup) * seconds)
    return result, model


def numerical_check(args, device, fast_variant):
    """Logits and one SGD step of the fast path vs true fp32 (TF32 off), from the same
    weights and batch."""
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
        with tf32(dtype is not None and bool(fast_variant["tf32"])):
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
        "reference": "fp32, TF32 off" if device.type == "cuda" else "fp32",
        "max_abs_logit_diff": logit_err,
        "max_abs_logit": scale,
        "loss_fp32": out["fp32"][1],
        "loss_fast": out["fast"][1],
        "max_abs_param_diff_after_step": param_err,
    }


def speedup(rows: list[dict], fastest: dict | None, baseline: str) -> float | None:
    """How many times faster ``fastest`` is than the row named ``baseline`` (None if absent)."""
    base = next((r for r in rows if r["name"] == baseline), None)
    if base is None or fastest is None:
        return None
    return base["seconds_per_iter"] / fastest["seconds_per_iter"]


def result_payload(args, flops: float, rows: list[dict], check: dict | None) -> dict:
    """The JSON of the variants measured so far. Speed-ups name their baseline: true fp32
    (``fp32 eager`` on a CPU, ``fp32 eager, TF32 off`` on CUDA) and TF32 eager (CUDA)."""
    fastest = min(rows, key=lambda r: r["seconds_per_iter"]) if rows else None
    cuda = args.device.type == "cuda"
    return {
        "model": args.model,
        "size": [args.height, args.width],
        "batch": args.batch,
        "forward_gflops_per_image": flops / 1e9,
        "peak_tflops": args.peak_tflops if cuda else None,
        "peak_source": args.peak_source if cuda else None,
        "matmul_tflops_measured": args.matmul_tflops,
        "variants": rows,
        "fastest": fastest["name"] if fastest else None,
        "speedup_fastest_vs_fp32": speedup(
            rows, fastest, "fp32 eager, TF32 off" if cuda else "fp32 eager"
        ),
        "speedup_fastest_vs_tf32": speedup(rows, fastest, "TF32 eager") if cuda else None,
        "numerical_check": check,
        "targets": {"cuda_seconds_per_iter": 0.25, "cuda_speedup_vs_fp32": 3.0},
    }


def print_row(result: dict, label: str | None = None) -> None:
    memory = ""
    if result["peak_gib"] is not None:
        memory = f"{result['peak_gib']:>7.1f} GiB ({result['peak_reserved_gib']:.1f} reserved)"
    mfu = f"  MFU {100 * result['mfu']:.0f}%" if result["mfu"] else ""
    print(
        f"{label or result['name']:<36}{result['seconds_per_iter']:>8.3f} s/it"
        f"{result['images_per_s']:>8.1f} img/s  first {result['first_iteration_s']:.2f} s"
        f"{memory}{mfu}",
        flush=True,
    )


def run_ours(args, flops: float) -> None:
    """The package's network, eager variants and the numerical check, or ``--compile``."""
    device = args.device
    name = f"train_step_compile_{device.type}" if args.compile else f"train_step_{device.type}"
    planned = variants(device, args.compile)
    rows, ran, check = [], [], None
    for v in planned:
        if rows and args.budget and time.perf_counter() - args.started > args.budget:
            print(f"{v['name']}: skipped, the --budget of {args.budget:.0f} s is spent")
            continue

        def first(seconds: float, v=v) -> None:
            print(f"{v['name']}: first iteration {seconds:.1f} s", flush=True)
            payload = result_payload(args, flops, rows, check)
            payload["first_iteration_s"] = {v["name"]: seconds}  # before the variant's row
            write_result(name, payload, complete=False)

        result, _ = run_variant(args, device, v, flops, on_first=first if v["compile"] else None)
        rows.append(result)
        ran.append(v)
        print_row(result)
        write_result(name, result_payload(args, flops, rows, check), complete=False)
    fast = [v for v in ran if v["dtype"] and not v["compile"]]
    if fast:  # the presets' fast path: the last half-precision eager variant
        check = report_check(numerical_check(args, device, fast[-1]))
    payload = result_payload(args, flops, rows, check)
    if payload["speedup_fastest_vs_fp32"]:
        print(f"fastest: {payload['fastest']}, {payload['speedup_fastest_vs_fp32']:.2f}x fp32")
    path = write_result(name, payload, complete=len(rows) == len(planned))
    print(f"wrote {path}")


def run_authors(args) -> None:
    """Side by side with the authors' network: equal first-step losses, then each eager
    variant (true fp32 left out) on both networks, ours/authors."""
    device = args.device
    try:
        code = authors.load_authors(args.authors)
        depths = tuple(args.depths or authors.FULL_DEPTHS)
        torch.manual_seed(0)
        theirs = authors.authors_network(code, depths)
        ours = authors.converted_copy(theirs, depths)
    except authors.AuthorsError as error:
        die(str(error))
    min_kept = args.min_kept
    their_loss = authors.authors_criterion(code, min_kept=min_kept)
    our_loss = authors.our_criterion(min_kept=min_kept)
    generator = torch.Generator().manual_seed(0)
    batch = min(args.batch, 2)
    x = torch.randn(batch, 3, args.height, args.width, generator=generator)
    y = torch.randint(0, 19, (batch, args.height, args.width), generator=generator)
    check = authors.first_step_losses(
        ours.to(device), theirs.to(device), our_loss, their_loss, x.to(device), y.to(device)
    )
    ours, theirs = ours.cpu(), theirs.cpu()
    print(
        f"first-step loss, fp32 with TF32 off, batch {batch}: ours {check['ours']:.6f}, "
        f"authors {check['authors']:.6f} (relative difference {check['relative_difference']:.1e})"
    )
    flops = count_flops(
        authors.our_network(depths, materialize=False), (1, 3, args.height, args.width), True
    )["Global"]
    payload = {
        "model": "DualSeg_res101" if depths == authors.FULL_DEPTHS else f"ResNet{list(depths)}",
        "depths": list(depths),
        "size": [args.height, args.width],
        "batch": args.batch,
        "authors_folder": code.folder.name,
        "criterion": f"their CriterionOhemDSN per image, min_kept {min_kept}, averaged",
        "first_step_losses": check,
        "rows": [],
    }
    name = f"authors_train_step_{device.type}"
    write_result(name, payload, complete=False)
    planned = [v for v in variants(device) if v["tf32"] is not False]
    for v in planned:
        if payload["rows"] and args.budget and time.perf_counter() - args.started > args.budget:
            print(f"{v['name']}: skipped, the --budget of {args.budget:.0f} s is spent")
            continue
        row = {"name": v["name"]}
        for side, model, criterion in (("ours", ours, our_loss), ("authors", theirs, their_loss)):
            result, trained = run_variant(
                args, device, v, flops, lambda m=model: copy.deepcopy(m), criterion
            )
            del trained
            if device.type == "cuda":
                torch.cuda.empty_cache()
            row[side] = result
            print_row(result, f"{v['name']} ({side})")
        row["ours_over_authors"] = (
            row["ours"]["seconds_per_iter"] / row["authors"]["seconds_per_iter"]
        )
        print(f"{v['name']}: ours/authors {row['ours_over_authors']:.3f}", flush=True)
        payload["rows"].append(row)
        write_result(name, payload, complete=False)
    print(f"wrote {write_result(name, payload, complete=len(payload['rows']) == len(planned))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, nargs="+", help="H [W] (CUDA 832, CPU 128 256)")
    parser.add_argument("--model", help="preset (CUDA dgcnet_official_r101, CPU paper_micro)")
    parser.add_argument("--loss", default="ohem", choices=["ohem", "ce"])
    parser.add_argument("--min-kept", type=int, default=100_000)
    parser.add_argument("--peak-tflops", type=float, help="default: the card's datasheet bf16")
    parser.add_argument(
        "--budget", type=float, help="seconds; after the first, no variant starts after this"
    )
    parser.add_argument("--compile", action="store_true", help="the fast path compiled, alone")
    parser.add_argument("--authors", help="the authors' repository: side by side with theirs")
    parser.add_argument(
        "--depths", type=int, nargs=4, help="--authors: blocks per stage (3 4 23 3)"
    )
    args = parser.parse_args()
    if args.authors and args.compile:
        die("--authors and --compile are separate runs: give one of them")
    if args.authors and args.model:
        die("--model does not apply to --authors (the network is theirs; --depths sizes it)")
    if args.depths and not args.authors:
        die("--depths sizes the authors' network: give --authors DIR too")
    if min(args.iterations, args.batch) < 1 or args.warmup < 1:
        die("--iterations, --warmup and --batch must be at least 1")
    args.started = time.perf_counter()
    args.device = device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cpu = device.type == "cpu"
    args.model = args.model or ("dgcnet_paper_micro" if cpu else "dgcnet_official_r101")
    size = args.size or ([128, 256] if cpu else [832])
    args.height, args.width = size[0], size[-1]
    card = card_for(torch.cuda.get_device_name(device)) if not cpu else None
    args.peak_source = "--peak-tflops" if args.peak_tflops else "datasheet"
    if not args.peak_tflops:
        args.peak_tflops = card.peak_tflops if card else DEFAULT_PEAK
        if not cpu and card is None:
            args.peak_source = f"assumed ({DEFAULT_PEAK:g}, an H100 SXM's)"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    args.matmul_tflops = matmul_tflops(device)
    if args.matmul_tflops:
        print(f"bf16 matrix products: {args.matmul_tflops:.0f} TFLOP/s measured", flush=True)
    if args.authors:
        run_authors(args)
        return
    with torch.device("meta"):
        meta = build_model(args.model, num_classes=19)
    flops = count_flops(meta, (1, 3, args.height, args.width), train=True)["Global"]
    run_ours(args, flops)


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
