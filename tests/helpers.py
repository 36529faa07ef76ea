"""Small helpers shared by several test files."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import torch


def randomize_bn(bn: torch.nn.BatchNorm2d) -> None:
    """Random running statistics and affine parameters, so the eval-mode BN is a real test."""
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.normal_()
    bn.bias.data.normal_()


def bn_rows(bn: torch.nn.BatchNorm2d, rows: torch.Tensor) -> torch.Tensor:
    """Eval-mode BatchNorm on [N, D] rows, written out."""
    return (rows - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


# command-line overrides for a tiny MiniCity run (the `minicity` fixture of conftest.py)
TINY = [
    "data.root={root}",
    "data.minicity_train=8",
    "data.minicity_val=3",
    "data.minicity_size=[64,128]",
    "data.crop_size=[64,128]",
    "train.batch_size=4",
    "train.log_every=1",
    "train.threads=1",
]


def tiny_opts(root, **extra) -> list[str]:
    """The TINY overrides on the MiniCity at ``root``, plus ``extra`` as ``key=value``."""
    opts = [o.format(root=root) for o in TINY]
    return opts + [f"{k}={v}" for k, v in extra.items()]


def train_argv(run, opts, *flags: str) -> list[str]:
    """``dgcn train`` on the ``minicity-cpu`` preset into ``run``, quiet, with ``flags`` (e.g.
    ``--resume``) and the ``--opt`` overrides ``opts``."""
    return [
        "train",
        "--config",
        "minicity-cpu",
        "--quiet",
        "--run-dir",
        str(run),
        *flags,
        "--opt",
        *opts,
    ]


def flood_components(labels, classes) -> list[list[tuple[int, int, int]]]:
    """The 4-connected same-label components of the pixels of ``classes`` in a [B, H, W] label
    array, by a plain breadth-first flood fill: a list of pixel lists (b, i, j), in the order
    of each component's first pixel in a scan of the images row by row."""
    from collections import deque

    labels = labels.tolist()
    seen = set()
    found = []
    for b, image in enumerate(labels):
        height, width = len(image), len(image[0])
        for i in range(height):
            for j in range(width):
                if image[i][j] not in classes or (b, i, j) in seen:
                    continue
                seen.add((b, i, j))
                queue, pixels = deque([(i, j)]), []
                while queue:
                    y, x = queue.popleft()
                    pixels.append((b, y, x))
                    for v, u in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                        if (
                            0 <= v < height
                            and 0 <= u < width
                            and (b, v, u) not in seen
                            and image[v][u] == image[i][j]
                        ):
                            seen.add((b, v, u))
                            queue.append((v, u))
                found.append(pixels)
    return found


def plain_object_counts(preds, masks, classes, min_pixels) -> dict[int, list[int]]:
    """{class id: [right, total]} of the objects of ``masks`` (flood-filled components of at
    least ``min_pixels`` pixels), an object right when its class is predicted for more of its
    pixels than any other class."""
    from collections import Counter

    preds = preds.tolist()
    counts = {c: [0, 0] for c in classes}
    for pixels in flood_components(masks, classes):
        if len(pixels) < min_pixels:
            continue
        b, i, j = pixels[0]
        own = int(masks[b, i, j])
        votes = Counter(preds[b][y][x] for b, y, x in pixels)
        others = max([n for c, n in votes.items() if c != own], default=0)
        counts[own][1] += 1
        counts[own][0] += votes[own] > others
    return counts


def dgcn(*args, **kwargs):
    """``python -m dgcn ARGS`` in a new process, its output captured as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dgcn", *args], capture_output=True, text=True, env=env, **kwargs
    )


def hashes(folder: Path) -> dict[str, str]:
    """The sha256 of every file under ``folder``, by path."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def checkpoints_equal(a, b):
    """Model, momentum buffers, schedule and random states of two checkpoints are equal."""
    assert a["iteration"] == b["iteration"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for buffer_a, buffer_b in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(buffer_a["momentum_buffer"], buffer_b["momentum_buffer"])
    assert a["scheduler"] == b["scheduler"]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def losses(run):
    """(iteration, loss) and (iteration, mIoU) of a run's metrics log."""
    records = map(json.loads, open(run / "metrics.jsonl"))
    return [(r["iteration"], r.get("loss"), r.get("miou")) for r in records]


def torchrun(*args, **kwargs):
    """``torchrun --standalone --nproc_per_node=2 -m dgcn ARGS`` on the CPU (gloo)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        [*command, "-m", "dgcn", *args], capture_output=True, text=True, env=env, **kwargs
    )
