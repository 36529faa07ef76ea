"""Input pipeline throughput: samples/s per loader worker for the training preset.

Compares, on full-resolution 2048x1024 PNGs (MiniCity written at Cityscapes size), in one run:

* ours: ``dgcn.datasets.Cityscapes`` with the training transforms of the
  ``cityscapes-official`` config (scale 0.7-2.1, crop 832, flip, normalise, pad), which crops
  before it resizes;
* plain: PIL decode, resize the whole frame by the random scale (bilinear / nearest), pad,
  random crop, flip, to tensor, normalise: the usual resize-then-crop pipeline.

Each runs in this process with one torch thread, as one DataLoader worker does. The JSON is
rewritten after every round (``complete`` false until the end).

    python benchmarks/data_loading.py [--images 16] [--samples 64]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from dgcn.config import load_config  # noqa: E402
from dgcn.datasets import Cityscapes, make_minicity  # noqa: E402
from dgcn.datasets.build import data_transforms  # noqa: E402
from dgcn.datasets.labels import id_to_train_id_lut  # noqa: E402
from dgcn.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

RECIPE = load_config("cityscapes-official").data  # the authors' crop and random scales
CROP = RECIPE.crop_size[0]


class PlainPipeline(torch.utils.data.Dataset):
    """Resize-then-crop with PIL, the way many segmentation codebases do it."""

    def __init__(self, samples):
        self.samples = samples
        self.lut = id_to_train_id_lut()
        self.mean = np.array(IMAGENET_MEAN, np.float32)
        self.std = np.array(IMAGENET_STD, np.float32)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        image = Image.open(self.samples[index][0]).convert("RGB")
        label = Image.open(self.samples[index][1])
        scale = RECIPE.scales[int(torch.randint(len(RECIPE.scales), ()))]
        size = (round(image.width * scale), round(image.height * scale))
        image = np.asarray(image.resize(size, Image.BILINEAR), np.float32) / 255.0
        label = np.asarray(label.resize(size, Image.NEAREST))
        image = (image - self.mean) / self.std
        pad_h, pad_w = max(0, CROP - image.shape[0]), max(0, CROP - image.shape[1])
        if pad_h or pad_w:
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
            label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=255)
        top = int(torch.randint(image.shape[0] - CROP + 1, ()))
        left = int(torch.randint(image.shape[1] - CROP + 1, ()))
        image = image[top : top + CROP, left : left + CROP]
        label = label[top : top + CROP, left : left + CROP]
        if float(torch.rand(())) < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return image, torch.from_numpy(self.lut[np.ascontiguousarray(label)]).long()


def rate(dataset, samples: int) -> float:
    """Samples per second over ``samples`` items (cycling), after one warm-up item."""
    dataset[0]
    start = time.perf_counter()
    for i in range(samples):
        image, mask = dataset[i % len(dataset)]
        assert image.shape == (3, CROP, CROP) and mask.shape == (CROP, CROP)
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/minicity-2048", help="full-size MiniCity root")
    parser.add_argument("--images", type=int, default=16, help="distinct images to generate")
    parser.add_argument("--samples", type=int, default=64, help="samples timed per pipeline")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timed rounds")
    args = parser.parse_args()

    torch.set_num_threads(1)  # one DataLoader worker
    make_minicity(args.root, train=args.images, val=0, height=1024, width=2048)
    recipe = load_config("cityscapes-official").data
    ours = Cityscapes(args.root, "train", data_transforms(recipe, train=True))
    plain = PlainPipeline(ours.samples)
    results = {"ours": [], "plain": []}

    def save(complete: bool = False):
        """(Re)write the JSON with the rounds measured so far."""
        best = {k: max(v) for k, v in results.items() if v}
        return write_result(
            "data_loading",
            {
                "input": "MiniCity PNG 2048x1024, cityscapes-official (scale 0.7-2.1, crop 832, "
                "flip)",
                "torch_threads": 1,
                "samples_per_round": args.samples,
                "samples_per_s": results,
                "best_samples_per_s": best,
                "speedup": best["ours"] / best["plain"] if len(best) == 2 else None,
                "targets": {"samples_per_s_per_worker": 20, "speedup": 1.5},
            },
            complete=complete,
        )

    for _ in range(args.repeats):  # alternate so drift in machine load hits both alike
        torch.manual_seed(0)
        results["ours"].append(rate(ours, args.samples))
        save()
        torch.manual_seed(0)
        results["plain"].append(rate(plain, args.samples))
        save()
    best = {k: max(v) for k, v in results.items()}
    speedup = best["ours"] / best["plain"]
    print(f"{'pipeline':<8}{'samples/s per worker (best of ' + str(args.repeats) + ')':>40}")
    for name in ("ours", "plain"):
        print(f"{name:<8}{best[name]:>40.1f}")
    print(f"speed-up of crop-first over resize-then-crop: {speedup:.2f}x")
    print("targets: >= 20 samples/s per worker, >= 1.5x the plain pipeline")
    path = save(complete=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
