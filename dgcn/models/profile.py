"""Parameters, FLOPs, activation memory and stage shapes, measured without allocating memory:
FLOPs per block on the meta device, the bytes autograd keeps for backward on fake CUDA tensors,
and the output shape of every stage of a DGCNet (:func:`architecture_shapes`, forward hooks;
the numbers notebook 04's diagrams write). Also two helpers for small timing studies on a CPU
(:func:`best_time`, :func:`crossover`)."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dgcn.models.build import build_model
from dgcn.models.common import resize
from dgcn.models.dual_gcn import DualGCN, DualGCNHead
from dgcn.models.network import DGCNet
from dgcn.precision import PRECISION_DTYPES


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


#: the autocast dtype of each ``train.precision`` (``fp32``: no autocast)
PRECISIONS = PRECISION_DTYPES


@contextlib.contextmanager
def _cuda_autocast(dtype: torch.dtype | None):
    """CUDA autocast switched on directly, so that it applies to fake CUDA tensors on a machine
    without a GPU (``torch.autocast("cuda")`` refuses to start there)."""
    enabled, previous = torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")
    torch.set_autocast_enabled("cuda", dtype is not None)
    if dtype is not None:
        torch.set_autocast_dtype("cuda", dtype)
    try:
        yield
    finally:
        torch.set_autocast_enabled("cuda", enabled)
        torch.set_autocast_dtype("cuda", previous)
        torch.clear_autocast_cache()


def activation_memory(
    model: nn.Module,
    input_size: tuple[int, ...],
    precision: str = "fp32",
    loss: bool = True,
) -> int:
    """Bytes that autograd keeps for backward in one training forward pass on a CUDA GPU.

    The model is copied onto fake CUDA tensors (``torch._subclasses.fake_tensor``: shapes and
    dtypes only, no memory and no GPU needed) and run in training mode under CUDA autocast with
    ``precision``, so every tensor has the dtype it would have on the GPU. Each tensor that
    autograd saves for backward is recorded (``torch.autograd.graph.saved_tensors_hooks``) and
    every storage is counted once, however many operations save it or views of it. The model's
    parameters are not counted; the input batch, the autocast copies of the weights (fp16 /
    bf16, made once per step) and, with ``loss``, the cross-entropy of each output against a
    target (``logits.float()``, as ``dgcn.training.losses`` computes it) are. OHEM selects its
    pixels without gradient, so it keeps the same tensors as the plain cross-entropy.

    What a training step needs on top: parameters, gradients and optimiser state, the
    gradients flowing in backward, cuDNN workspaces and the allocator's slack. The count is
    the part that grows with the batch: ``activation_memory`` at batch 2 minus batch 1 is the
    cost of one more image.

    Args:
        model: any module taking one image tensor and returning a tensor or a dict of tensors
            (``[B, K, H, W]`` logits when ``loss``); it is copied, never changed. Build it on
            the meta device to count a large model for free.
        input_size: e.g. ``(1, 3, 832, 832)``.
        precision: ``fp32``, ``fp16`` or ``bf16`` (the autocast dtype, as ``train.precision``).
        loss: add the cross-entropy of every output, as a training step does.

    Returns:
        bytes saved for backward.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode  # lazy: only this count needs it

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    parameters: set[int] = set()
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        # one entry per storage (the address of its StorageImpl: fake tensors have no data
        # pointer), so that views and tensors saved by several operations count once
        storage = tensor.untyped_storage()
        if storage._cdata not in parameters:
            saved[storage._cdata] = storage.nbytes()
        return tensor

    fake = copy.deepcopy(model)
    with FakeTensorMode(allow_non_fake_inputs=True):  # the copy's weights, made fake here
        fake.to_empty(device="cuda").train()
        parameters.update(p.untyped_storage()._cdata for p in fake.parameters())
        images = torch.empty(input_size, device="cuda")
        with (
            _cuda_autocast(PRECISIONS[precision]),
            torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
        ):
            # the outputs (and the loss) hold the graph, and so every saved storage, until the
            # count is made: none is freed and its address taken by another one
            graph = [fake(images)]
            tensors = list(graph[0].values()) if isinstance(graph[0], dict) else [graph[0]]
            if loss:
                target = torch.zeros(
                    (input_size[0], *input_size[2:]), dtype=torch.long, device="cuda"
                )
                graph.append(sum(F.cross_entropy(t.float(), target) for t in tensors))
            return sum(saved.values())


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


def as_dgcnet(model: nn.Module | str) -> tuple[DGCNet, str]:
    """``(the DGCNet, its name)``: a preset name is built on the meta device, a DGCNet passes
    through under its class name; anything else is a ``TypeError``."""
    if isinstance(model, str):
        with torch.device("meta"):  # the architecture only: no memory, no initialisation cost
            return build_model(model), model
    if not isinstance(model, DGCNet):
        raise TypeError(f"architecture needs a DGCNet or a preset name, got {type(model).__name__}")
    return model, type(model).__name__


def architecture_shapes(
    model: nn.Module | str, input_size: tuple[int, int] = (832, 832)
) -> dict[str, tuple[int, ...]]:
    """The shape of every stage of a DGCNet for one image, recorded by forward hooks.

    The model runs once in eval mode without gradients (and is left in its previous mode); its
    auxiliary head, which only training mode calls, is then applied to the recorded layer3
    output and upsampled to the input size as :class:`~dgcn.models.DGCNet` does in training.
    A model on the ``meta`` device (a preset name is built there) computes shapes only.

    Keys: ``input``, ``stem``, ``layer1``..``layer4``; ``aux`` and ``aux_out`` (with an
    auxiliary head); ``head_in`` (the head's input, layer4's output); ``reduce`` and
    ``project`` (the authors' head); with a coordinate graph ``coord_nodes`` (V_S),
    ``coord_message`` (the output of ``state_update``), ``coord_out``; with a feature graph
    ``feature_assign`` (``to_nodes``), ``feature_features`` (``to_features``),
    ``feature_nodes`` (the node matrix that enters ``adjacency``, nodes x features),
    ``feature_out``; ``graph`` (the graph module's output); ``concat`` (the authors' head: the
    channel concatenation the classifier sees, never formed); ``logits`` (the head's output at
    the backbone's stride) and ``out`` (upsampled to the input).

    Args:
        model: a :class:`~dgcn.models.DGCNet`, or a preset name of
            :func:`~dgcn.models.build_model` (built on the meta device).
        input_size: ``(H, W)`` of the image.

    Shape:
        returns ``{stage: (1, C, h, w)}`` (``feature_nodes``: ``(1, nodes, features)``;
        ``coord_message`` of the authors' branch: ``(1, C/2, N')``)
    """
    model, _ = as_dgcnet(model)
    parameter = next(model.parameters())
    images = torch.zeros(1, 3, *input_size, device=parameter.device, dtype=parameter.dtype)
    shapes: dict[str, tuple[int, ...]] = {"input": tuple(images.shape)}
    kept: dict[str, torch.Tensor] = {}
    watched: list[tuple[nn.Module | None, str, str]] = []  # (module, key, "in" or "out")
    backbone, head = model.backbone, model.head
    for name in ("stem", "layer1", "layer2", "layer3", "layer4"):
        watched.append((getattr(backbone, name), name, "out"))
    watched.append((head, "head_in", "in"))
    if isinstance(head, DualGCNHead):
        watched += [(head.reduce, "reduce", "out"), (head.project, "project", "out")]
        watched += [(head.classifier, "concat", "in"), (head.classifier, "logits", "out")]
    else:
        watched.append((head.classifier, "logits", "out"))
    graph = getattr(head, "graph", None)
    if graph is not None:
        watched.append((graph, "graph", "out"))
    if isinstance(graph, DualGCN):
        if graph.coordinate is not None:
            coordinate = graph.coordinate
            watched += [
                (coordinate.downsample, "coord_nodes", "out"),
                (coordinate.state_update, "coord_message", "out"),
                (coordinate, "coord_out", "out"),
            ]
        if graph.feature is not None:
            feature = graph.feature
            watched += [
                (feature.to_nodes, "feature_assign", "out"),
                (feature.to_features, "feature_features", "out"),
                (feature.adjacency, "feature_nodes", "in"),
                (feature, "feature_out", "out"),
            ]

    def record(key: str, kind: str):
        def hook(_module, args, output=None):
            if kind == "in":
                channels = sum(a.shape[1] for a in args)  # several inputs: their concatenation
                shapes[key] = (*args[0].shape[:1], channels, *args[0].shape[2:])
            else:
                shapes[key] = tuple(output.shape)
                if key == "layer3":
                    kept[key] = output

        return hook

    handles = [
        module.register_forward_pre_hook(record(key, kind))
        if kind == "in"
        else module.register_forward_hook(record(key, kind))
        for module, key, kind in watched
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            shapes["out"] = tuple(model(images)["out"].shape)
            if model.aux_head is not None:
                aux = model.aux_head(kept["layer3"])
                shapes["aux"] = tuple(aux.shape)
                shapes["aux_out"] = tuple(resize(aux, input_size).shape)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return shapes


def format_shape(shape: tuple[int, ...]) -> str:
    """A recorded shape without its batch dimension, as the diagram writes it: ``2048×105×105``."""
    return "×".join(str(n) for n in shape[1:])


def best_time(fn: Callable[[], object], repeats: int = 3, min_seconds: float = 2e-3) -> float:
    """Seconds per call of ``fn``: the fastest of ``repeats`` timed loops.

    The loop length (calls per loop) is doubled from 1 until one loop lasts at least
    ``min_seconds``, long enough for ``time.perf_counter`` to resolve it; then ``repeats``
    loops of that length are timed and the fastest one's time per call is returned, the one
    least disturbed by other work on the machine.

    Args:
        fn: the work to time, called without arguments.
        repeats: timed loops (at least 1).
        min_seconds: the shortest loop worth timing.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    number = 1
    while True:  # calibrate the loop length
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start >= min_seconds:
            break
        number *= 2
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def crossover(sizes, ratios) -> float:
    """The size at which ``ratios`` crosses 1 from below for the last time.

    Interpolated linearly in log size and log ratio between the two measured sizes around the
    crossing, e.g. where the ratio of two algorithms' times says the second starts to win.

    Args:
        sizes: increasing positive sizes.
        ratios: a positive ratio measured at each size.

    Returns:
        the interpolated size, or NaN when the ratios never cross 1 from below.
    """
    sizes, ratios = [float(n) for n in sizes], [float(r) for r in ratios]
    if len(sizes) != len(ratios):
        raise ValueError(f"{len(sizes)} sizes but {len(ratios)} ratios")
    below = [i for i in range(len(ratios) - 1) if ratios[i] < 1 <= ratios[i + 1]]
    if not below:
        return math.nan
    i = below[-1]
    a, b = math.log(ratios[i]), math.log(ratios[i + 1])
    t = -a / (b - a)
    return math.exp(math.log(sizes[i]) + t * math.log(sizes[i + 1] / sizes[i]))
