"""Graph modules and heads: forward+backward time and memory, and the cost of each order.

1. CoordinateGCN, FeatureGCN, DualGCN (paper and official) and the whole heads at Cityscapes
   shapes at stride 8 (a 769 crop: (2, 512, 97, 97), (1, 2048, 97, 97); a whole frame:
   (1, 512, 129, 257)) -- on a CPU the sizes are divided by ``--cpu-scale`` (default 2) in
   each spatial dimension to keep the run short.
2. The coordinate graph in the O(HW) order vs the literal O((HW)^2) order (A_S formed) vs a
   non-local block (an N x N attention over all pixels), time and memory vs N, as a plot.
3. The official-variant DualGCN block vs the authors' released block (the replica of
   ``benchmarks/authors_block.py``, written from the description of their code in
   docs/reference/official_dgcnet.md), side by side at the same shape.

Memory: peak CUDA allocation on a GPU; on a CPU the activation memory kept for backward: the
distinct storages autograd saves (``torch.autograd.graph.saved_tensors_hooks``), each counted
once, the module's parameters and input not counted.

The JSON is rewritten after every measurement (``complete`` false until the end).

    python benchmarks/modules.py [--repeats 3] [--rounds 5] [--cpu-scale 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from authors_block import AuthorsDualGCN  # noqa: E402
from common import RESULTS, write_result  # noqa: E402

from dgcn.models import CoordinateGCN, DualGCN, DualGCNHead, FeatureGCN  # noqa: E402
from dgcn.models.common import resize  # noqa: E402
from dgcn.models.network import ContextFCNHead  # noqa: E402

SHAPES = [(2, 512, 97, 97), (1, 2048, 97, 97), (1, 512, 129, 257)]


def measure(module: nn.Module, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median forward+backward seconds and memory (MiB) of one call.

    Memory on CUDA: the peak allocation during the call. On a CPU: the activation memory the
    call keeps for backward, i.e. the distinct storages autograd saves (each counted once,
    however many ops save it), not counting the module's parameters nor its input.
    """
    cuda = x.is_cuda
    parameters = {p.untyped_storage().data_ptr() for p in module.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in parameters and storage.data_ptr() != x.data_ptr():
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    times = []
    for i in range(repeats + 1):
        x_in = x.detach().requires_grad_(True)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        saved.clear()
        start = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = module(x_in)
        out.float().square().mean().backward()
        if cuda:
            torch.cuda.synchronize()
        if i:  # the first call warms up
            times.append(time.perf_counter() - start)
    memory = torch.cuda.max_memory_allocated() if cuda else sum(saved.values())
    return {"seconds": statistics.median(times), "mib": memory / 2**20}


def side_by_side(ours: nn.Module, theirs: nn.Module, x: torch.Tensor, rounds: int) -> dict:
    """Our official block vs the authors' block, measured in alternation (so that a busy
    moment of the machine hits both), ``rounds`` x 3 calls each; medians."""
    ours_s, theirs_s = [], []
    for _ in range(rounds):
        a, b = measure(ours, x, 3), measure(theirs, x, 3)
        ours_s.append(a["seconds"])
        theirs_s.append(b["seconds"])
    return {
        "ours_ms": 1000 * statistics.median(ours_s),
        "authors_ms": 1000 * statistics.median(theirs_s),
        "ours_mib": a["mib"],
        "authors_mib": b["mib"],
        "rounds": rounds,
    }


class LiteralCoordinateGCN(nn.Module):
    """The coordinate graph in the literal order: A_S (N' x N') formed, then A_S nu(V)."""

    def __init__(self, reference: CoordinateGCN) -> None:
        super().__init__()
        self.ref = reference

    def forward(self, x):
        ref = self.ref
        v = ref.nodes(x)
        b, _, h, w = v.shape
        adjacency = ref.query(v).flatten(2).transpose(1, 2) @ ref.key(v).flatten(2)
        m = (adjacency @ ref.value(v).flatten(2).transpose(1, 2)).transpose(1, 2)
        m = ref.state_update(m.reshape(b, -1, h, w))
        return resize(ref.reproject(m), x.shape[-2:])


class NonLocal(nn.Module):
    """An embedded-Gaussian non-local block: softmax attention over all N pixels (N x N)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = channels // 2
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        q = self.theta(x).flatten(2).transpose(1, 2)
        k = self.phi(x).flatten(2)
        attention = torch.softmax(q @ k, dim=-1)  # N x N
        y = (attention @ self.g(x).flatten(2).transpose(1, 2)).transpose(1, 2)
        return x + self.out(y.reshape(b, -1, h, w))


def modules_for(c: int) -> dict[str, nn.Module]:
    return {
        "CoordinateGCN": CoordinateGCN(c),
        "FeatureGCN": FeatureGCN(c),
        "DualGCN paper": DualGCN(c, "paper"),
        "DualGCN official": DualGCN(c, "official"),
        "authors' DualGCN (replica)": AuthorsDualGCN(c),
        "head official (2048->512)": DualGCNHead(2048, 512, 19) if c == 2048 else None,
        "head paper (DualGCN on 2048 + FCN)": (
            ContextFCNHead(2048, 19, DualGCN(2048, "paper")) if c == 2048 else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5, help="side-by-side rounds")
    parser.add_argument("--cpu-scale", type=int, default=2, help="spatial divisor on a CPU")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    scale = 1 if device.type == "cuda" else args.cpu_scale
    rows, orders, comparison, plot = [], [], {}, None

    def save(complete: bool = False):
        """(Re)write the JSON with every part measured so far."""
        return write_result(
            f"modules_{device.type}",
            {
                "device": device.type,
                "spatial_divisor": scale,
                "memory": "peak CUDA allocation"
                if device.type == "cuda"
                else "distinct storages saved for backward (parameters and input not counted)",
                "modules": rows,
                "orders": orders,
                "official_vs_authors": comparison,
                "plot": str(plot) if plot else None,
            },
            complete=complete,
        )

    for shape in SHAPES:
        b, c, h, w = shape
        h, w = -(-h // scale), -(-w // scale)
        torch.manual_seed(0)
        x = torch.randn(b, c, h, w, device=device)
        for name, module in modules_for(c).items():
            if module is None:
                continue
            result = measure(module.to(device).train(), x, args.repeats)
            rows.append({"module": name, "shape": [b, c, h, w], **result})
            print(
                f"{name:<36}{str([b, c, h, w]):<24}{1000 * result['seconds']:>10.1f} ms"
                f"{result['mib']:>10.1f} MiB"
            )
            save()

    # the orders of the coordinate graph vs a non-local block, as N grows
    c = 64
    sides = [16, 32, 48, 64, 96] if device.type == "cpu" else [32, 64, 97, 129, 160, 192]
    for side in sides:
        torch.manual_seed(0)
        x = torch.randn(1, c, side, side, device=device)
        fast = CoordinateGCN(c, downsample=1, zero_init=False).to(device)
        cases = {
            "O(N) order": fast,
            "literal O(N^2)": LiteralCoordinateGCN(fast),
            "non-local": NonLocal(c).to(device),
        }
        for name, module in cases.items():
            result = measure(module, x, args.repeats)
            orders.append({"order": name, "nodes": side * side, **result})
        save()
    try:
        from dgcn.viz.predictions import save_figure  # lazy: the plot is optional (matplotlib)

        plot = RESULTS / f"coordinate_orders_{device.type}.png"
        save_figure(_order_figure(orders), plot)
    except ImportError:
        plot = None
    for shape in SHAPES:
        b, c, h, w = shape
        h, w = -(-h // scale), -(-w // scale)
        torch.manual_seed(0)
        x = torch.randn(b, c, h, w, device=device)
        ours = DualGCN(c, "official").to(device).train()
        theirs = AuthorsDualGCN(c).to(device).train()
        result = side_by_side(ours, theirs, x, args.rounds)
        comparison[str([b, c, h, w])] = result
        print(
            f"official block vs authors' {str([b, c, h, w]):<20}"
            f"{result['ours_ms']:>9.1f} vs {result['authors_ms']:>7.1f} ms"
            f"{result['ours_mib']:>9.1f} vs {result['authors_mib']:>7.1f} MiB"
        )
        save()
    path = save(complete=True)
    print(f"wrote {path}" + (f" and {plot}" if plot else ""))


def _order_figure(orders):
    from dgcn.viz.palette import new_figure  # lazy: only the optional plot needs it

    fig = new_figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 2)
    for name in dict.fromkeys(o["order"] for o in orders):
        pts = [o for o in orders if o["order"] == name]
        n = [p["nodes"] for p in pts]
        axes[0].plot(n, [1000 * p["seconds"] for p in pts], marker="o", label=name)
        axes[1].plot(n, [p["mib"] for p in pts], marker="o", label=name)
    for ax, label in zip(axes, ("forward+backward (ms)", "memory (MiB)"), strict=True):
        ax.set_xlabel("nodes N")
        ax.set_ylabel(label)
        ax.set_xscale("log")
        ax.set_yscale("log")
    axes[0].legend()
    return fig


if __name__ == "__main__":
    main()
