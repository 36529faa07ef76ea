"""Parameters and FLOPs per block, counted on the meta device (no memory is allocated)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dgcn.models.build import build_model


def count_flops(
    model: nn.Module, input_size: tuple[int, ...], train: bool = False
) -> dict[str, int]:
    """FLOPs of one forward pass per module (``"Global"`` = the whole model).

    Counted by ``torch.utils.flop_counter`` (a multiply-add counts as 2 FLOPs; convolutions and
    matrix products only, the rest is negligible). Runs on the model's device; use the meta
    device to count full-size inputs for free.

    Args:
        model: any module taking one image tensor.
        input_size: e.g. ``(1, 3, 1024, 2048)``.
        train: count in training mode (includes the auxiliary head).

    Returns:
        {module path (``"Global"``, ``"backbone"``, ``"head.graph"``, ...): FLOPs}
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.train(train)
    try:
        with FlopCounterMode(display=False) as mode, torch.no_grad():
            model(torch.empty(input_size, device=device))
    finally:
        model.train(was_training)
    root = type(model).__name__ + "."
    counts = {}
    for name, ops in mode.get_flop_counts().items():
        key = name[len(root) :] if name.startswith(root) else name
        counts[key] = int(sum(ops.values()))
    return counts


def default_blocks(model: nn.Module) -> list[str]:
    """The blocks worth a row: backbone stages, the head's parts, the graph branches, aux."""
    wanted = []
    for name, _ in model.named_modules():
        parts = name.split(".")
        top_level = len(parts) == 2 and parts[0] in ("backbone", "head")
        graph_branch = len(parts) == 3 and parts[:2] == ["head", "graph"]
        if top_level or graph_branch or name == "aux_head":
            wanted.append(name)
    return wanted


def block_table(
    build: Callable[[], nn.Module], input_size: tuple[int, ...], train: bool = True
) -> list[dict]:
    """One row per block: parameters and GFLOPs, built and counted on the meta device.

    Args:
        build: a function returning the model (called under ``torch.device("meta")``).
        input_size: the image batch size, e.g. ``(1, 3, 1024, 2048)``.
        train: count the training forward (auxiliary head included).

    Returns:
        rows ``{"block", "params", "gflops"}``; the last row is the whole model.
    """
    with torch.device("meta"):
        model = build()
    flops = count_flops(model, input_size, train=train)
    modules = dict(model.named_modules())
    rows = []
    for name in default_blocks(model):
        params = sum(p.numel() for p in modules[name].parameters())
        rows.append({"block": name, "params": params, "gflops": flops.get(name, 0) / 1e9})
    total = sum(p.numel() for p in model.parameters())
    rows.append({"block": "total", "params": total, "gflops": flops["Global"] / 1e9})
    return rows


def model_summary(name: str, num_classes: int, size: tuple[int, int, int, int], forward: bool):
    """The lines ``dgcn summary`` prints: the :func:`block_table` of preset ``name`` at the
    batch ``size`` and, with ``forward``, one timed CPU forward pass with random weights."""
    rows = block_table(lambda: build_model(name, num_classes=num_classes), size)
    lines = [
        f"{name}: {num_classes} classes, input {list(size)}, training forward (aux head)",
        f"{'block':<28}{'params':>14}{'GFLOPs':>12}",
        *(f"{r['block']:<28}{r['params']:>14,}{r['gflops']:>12.2f}" for r in rows),
    ]
    if forward:
        torch.manual_seed(0)
        model = build_model(name, num_classes=num_classes).eval()
        start = time.perf_counter()
        with torch.no_grad():
            logits = model(torch.randn(size))["out"]
        seconds = time.perf_counter() - start
        lines.append(
            f"forward pass on a random {size[2]}x{size[3]} image (random weights, CPU): logits "
            f"{list(logits.shape)}, {seconds:.2f} s, {logits.argmax(1).unique().numel()} "
            "classes predicted"
        )
    return lines
