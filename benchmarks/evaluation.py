"""Evaluation throughput: images/s for whole-image, sliding-window and multi-scale + flip.

On CUDA: ``dgcnet_official_r101`` on 1024x2048 images, sliding window 832 with 1/3 overlap
(the authors' protocol), multi-scale (0.75-1.75) + flip, in bf16/fp16 autocast and fp32; the
time for the 500 Cityscapes val images is extrapolated from the measured rate. On a CPU:
``dgcnet_paper_micro`` on 256x512 images with a 192 tile, to exercise the same code paths.

    python benchmarks/evaluation.py [--images 8]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from dgcn.config import EvalConfig  # noqa: E402
from dgcn.evaluation import predict  # noqa: E402
from dgcn.models import build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="images timed per mode")
    parser.add_argument("--model", help="preset (CUDA dgcnet_official_r101, CPU paper_micro)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cpu = device.type == "cpu"
    name = args.model or ("dgcnet_paper_micro" if cpu else "dgcnet_official_r101")
    height, width = (256, 512) if cpu else (1024, 2048)
    tile = 192 if cpu else EvalConfig().tile  # the authors' tile on Cityscapes
    model = build_model(name, num_classes=19).to(device).eval()
    if not cpu:
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    precisions = [None] if cpu else [None, torch.bfloat16]
    modes = [  # the authors' overlap (1/3) and scales: the defaults of EvalConfig
        ("whole", EvalConfig(mode="whole")),
        ("slide", EvalConfig(mode="slide", tile=tile)),
        ("multiscale+flip", EvalConfig(mode="multiscale", tile=tile, flip=True)),
    ]
    image = torch.randn(1, 3, height, width, device=device)
    rows = []
    for dtype in precisions:
        for label, options in modes:
            ctx = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
            with ctx:
                predict(model, image, options)  # warm-up (cuDNN autotuning)
                if not cpu:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(args.images):
                    predict(model, image, options).argmax(1)
                if not cpu:
                    torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / args.images
            row = {
                "mode": label,
                "precision": str(dtype).replace("torch.", "") if dtype else "fp32",
                "seconds_per_image": seconds,
                "images_per_s": 1 / seconds,
                "seconds_for_500": 500 * seconds,
            }
            rows.append(row)
            print(
                f"{label:<18}{row['precision']:<10}{row['images_per_s']:>8.2f} img/s"
                f"{row['seconds_for_500']:>10.1f} s for 500 images"
            )
    path = write_result(
        f"evaluation_{device.type}",
        {
            "model": name,
            "size": [height, width],
            "tile": tile,
            "rows": rows,
            "targets": {"cuda_slide_seconds_for_500": 30},
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
