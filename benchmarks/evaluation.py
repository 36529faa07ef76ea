"""Evaluation throughput of what ``dgcn evaluate`` runs: sliding window, whole image, and
multi-scale + flip.

Every case times :func:`dgcn.evaluation.evaluate`, the loop ``dgcn evaluate`` runs, after the
same preparation as ``evaluate_run`` (the model on the device, :func:`cuda_settings`) and in
the precision it uses: ``eval.precision=auto`` (bf16 autocast from Ampere on, fp16 before,
fp32 on a CPU) with channels_last on CUDA; argmax and the confusion matrix included. The
images are random tensors in memory, so the loader's PNG decoding is not timed
(``benchmarks/data_loading.py`` measures it). On CUDA: ``dgcnet_official_r101`` on 1024x2048
images with the authors' protocol (tile 832, 1/3 overlap, logits averaged) and multi-scale
0.75-1.75 + flip with every scale slid by the same tile (``eval.scale_tile``, which bounds the
memory of a pass; the authors, and ``dgcn evaluate --mode multiscale`` without
``--scale-tile``, predict every scale whole), then the sliding window and the whole image again
in fp32 for comparison; the time for the 500 Cityscapes val images is extrapolated from the
measured rate. On a CPU: ``dgcnet_paper_micro`` on 256x512 images with a 192 tile, to exercise
the same code paths. The JSON is written after every case, so a run cut short keeps what it
measured. Memory on CUDA: peak allocated and reserved, free and total as the driver reports
(``common.cuda_memory``).

``--authors DIR`` times the authors' ``predict_sliding`` (their eval.py) on their network
against ours on our network holding the same weights instead (``benchmarks/authors_eval.py``).

    python benchmarks/evaluation.py [--images 8] [--size H W] [--tile T]
    python benchmarks/evaluation.py --authors DIR [--depths 3 4 23 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cuda_memory, die, write_result  # noqa: E402

from dgcn.config import EvalConfig  # noqa: E402
from dgcn.evaluation import evaluate  # noqa: E402
from dgcn.evaluation.loop import cuda_settings  # noqa: E402
from dgcn.models import build_model  # noqa: E402
from dgcn.precision import autocast_dtype, precision_name  # noqa: E402


def cases(cpu: bool, tile: int) -> list[tuple[str, EvalConfig]]:
    """(label, test mode) in the order they are measured: what users run first."""
    protocol = EvalConfig(tile=tile)  # the authors' overlap, scales and logit average
    rows = [
        ("slide", dataclasses.replace(protocol, mode="slide")),
        ("whole", dataclasses.replace(protocol, mode="whole")),
        (
            "multiscale+flip",
            dataclasses.replace(protocol, mode="multiscale", flip=True, scale_tile=tile),
        ),
    ]
    if not cpu:  # auto is fp32 on a CPU: nothing to compare there
        rows += [
            (label, dataclasses.replace(config, precision="fp32")) for label, config in rows[:2]
        ]
    return rows


def time_case(model, images, masks, config, device, count: int) -> float:
    """Seconds per image of :func:`evaluate` over ``count`` images, after one warm-up image
    (cuDNN autotuning, the first autocast)."""
    batches = [(images, masks)]
    evaluate(model, batches, config, num_classes=19, device=device, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    matrix = evaluate(model, batches * count, config, num_classes=19, device=device, progress=False)
    matrix.miou()  # reads the matrix back: every kernel has run
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="images timed per case")
    parser.add_argument("--model", help="preset (CUDA dgcnet_official_r101, CPU paper_micro)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="image size")
    parser.add_argument("--tile", type=int, help="sliding-window tile (CUDA 832, CPU 192)")
    parser.add_argument("--authors", help="the authors' repository: their predict_sliding")
    parser.add_argument("--depths", type=int, nargs=4, help="--authors: blocks per stage")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cpu = device.type == "cpu"
    height, width = args.size or ((256, 512) if cpu else (1024, 2048))
    tile = args.tile or (192 if cpu else EvalConfig().tile)  # the authors' tile on Cityscapes
    if args.images < 1 or tile < 32 or min(height, width) < tile:
        die(f"--images must be >= 1 and --tile at least 32 and within --size (got {tile})")
    if args.authors:
        if args.model:
            die("--model does not apply to --authors (the network is theirs; --depths sizes it)")
        import authors_eval  # lazy: the authors' code

        authors_eval.run(args, device, height, width, tile)
        return
    if args.depths:
        die("--depths sizes the authors' network: give --authors DIR too")
    name = args.model or ("dgcnet_paper_micro" if cpu else "dgcnet_official_r101")
    model = build_model(name, num_classes=19).eval().to(device)
    cuda_settings(device)  # as evaluate_run
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(1, 3, height, width, generator=generator)  # on the CPU, as a loader's
    masks = torch.randint(0, 19, (1, height, width), generator=generator)
    payload = {"model": name, "size": [height, width], "tile": tile, "images": args.images}
    payload["rows"], payload["complete"] = [], False
    payload["targets"] = {"cuda_slide_seconds_for_500": 30}
    for label, config in cases(cpu, tile):
        seconds = time_case(model, images, masks, config, device, args.images)
        row = {
            "mode": label,
            "precision": precision_name(autocast_dtype(config.precision, device)),
            "average": config.average,
            "seconds_per_image": seconds,
            "images_per_s": 1 / seconds,
            "seconds_for_500": 500 * seconds,
        }
        row.update(cuda_memory(device))  # None on a CPU
        payload["rows"].append(row)
        write_result(f"evaluation_{device.type}", payload, complete=False)  # after every case
        print(
            f"{label:<18}{row['precision']:<8}{row['images_per_s']:>8.2f} img/s"
            f"{row['seconds_for_500']:>10.1f} s for 500 images",
            flush=True,
        )
    payload["complete"] = True
    print(f"wrote {write_result(f'evaluation_{device.type}', payload)}")


if __name__ == "__main__":
    main()
