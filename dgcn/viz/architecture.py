"""The DGCNet architecture as a diagram, with the tensor shapes measured on the real model.

:func:`architecture_shapes` runs a :class:`~dgcn.models.DGCNet` once (forward hooks, eval
mode, no gradients; a model on the ``meta`` device allocates nothing) and records the shape of
every stage; :func:`architecture_diagram` draws boxes and arrows for the backbone, the
auxiliary head and either head (the paper's sum on the backbone feature, or the authors'
``DualGCNHead``) and writes those shapes on the boxes. Used by notebooks/04_dgcnet_model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from dgcn.models.build import build_model
from dgcn.models.common import resize
from dgcn.models.dual_gcn import DualGCN, DualGCNHead
from dgcn.models.network import ContextFCNHead, DGCNet
from dgcn.viz.palette import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: box colours by part of the network
_COLOURS = {
    "data": "#f4f1de",
    "backbone": "#dde6f0",
    "aux": "#ececec",
    "coordinate": "#fbe3cf",
    "feature": "#dcefd9",
    "head": "#e7def0",
}


def _model(model: nn.Module | str) -> tuple[DGCNet, str]:
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
    model, _ = _model(model)
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


@dataclass
class _Box:
    x: float
    y: float
    width: float
    title: str
    colour: str
    details: list[str] = field(default_factory=list)
    shapes: list[tuple[str, str]] = field(default_factory=list)  # (label, key)

    @property
    def height(self) -> float:
        return 0.2 + 0.17 * (1 + len(self.details) + len(self.shapes))

    def top(self) -> tuple[float, float]:
        return self.x, self.y + self.height / 2

    def bottom(self) -> tuple[float, float]:
        return self.x, self.y - self.height / 2

    def left(self) -> tuple[float, float]:
        return self.x - self.width / 2, self.y

    def right(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y


def _conv(module: nn.Module) -> str:
    conv = next(m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Conv1d))
    k = conv.kernel_size[0]
    return f"{k}x{k} conv {conv.in_channels}→{conv.out_channels}"


def _backbone_name(backbone: nn.Module) -> str:
    blocks = tuple(len(getattr(backbone, f"layer{i}")) for i in range(1, 5))
    depth = {(3, 4, 23, 3): "ResNet-101", (3, 4, 6, 3): "ResNet-50", (2, 2, 2, 2): "ResNet-18"}
    stem_convs = sum(isinstance(m, nn.Conv2d) for m in backbone.stem.modules())
    if blocks == (1, 1, 1, 1):
        return "micro ResNet (CPU demo)"
    name = depth.get(blocks, f"ResNet {blocks}")
    return f"deep-stem {name} (the authors')" if stem_convs == 3 else f"{name} (torchvision)"


def _stem_detail(stem: nn.Module) -> str:
    convs = [m for m in stem.modules() if isinstance(m, nn.Conv2d)]
    pool = next((m for m in stem.modules() if isinstance(m, nn.MaxPool2d)), None)
    k = convs[0].kernel_size[0]
    text = f"{len(convs)} convs {k}x{k}" if len(convs) > 1 else f"conv {k}x{k}"
    if pool is not None:
        text += ", max-pool" + (" (ceil mode)" if pool.ceil_mode else "")
    return text


def _layer_detail(layer: nn.Module) -> str:
    blocks = list(layer.children())
    dilations, stride = [], 1
    for block in blocks:
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        dilations.append(max(c.dilation[0] for c in convs))
        stride = max(stride, *(c.stride[0] for c in convs))
    text = f"{len(blocks)} block" + ("s" if len(blocks) > 1 else "")
    if stride > 1:
        text += f", stride {stride}"
    if max(dilations) > 1:
        shown = dilations if len(set(dilations)) > 1 else dilations[:1]
        text += ", dilation " + ", ".join(map(str, shown))
    return text


def _draw_box(ax: Axes, box: _Box, shapes: dict[str, tuple[int, ...]]) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch(
            (box.x - box.width / 2, box.y - box.height / 2),
            box.width,
            box.height,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=box.colour,
            edgecolor="#555555",
            linewidth=0.8,
        )
    )
    lines = 1 + len(box.details) + len(box.shapes)
    y = box.y + 0.17 * (lines - 1) / 2
    ax.text(box.x, y, box.title, ha="center", va="center", fontsize=8.5, fontweight="bold")
    for detail in box.details:
        y -= 0.17
        ax.text(box.x, y, detail, ha="center", va="center", fontsize=7, color="#333333")
    for label, key in box.shapes:
        y -= 0.17
        text = ax.text(
            box.x,
            y,
            f"{label}{format_shape(shapes[key])}",
            ha="center",
            va="center",
            fontsize=7.5,
            family="monospace",
            color="#1a3d7c",
        )
        text.set_gid(key)  # tests read the shapes back from the figure by this id


def _arrow(ax: Axes, start, end, *points, label: str = "", label_at: int = 0) -> None:
    """An arrow from ``start`` through ``points`` (elbows) to ``end``."""
    route = [start, *points, end]
    for a, b in zip(route[:-2], route[1:-1], strict=True):
        ax.plot([a[0], b[0]], [a[1], b[1]], color="#555555", linewidth=0.9)
    ax.annotate(
        "",
        xy=end,
        xytext=route[-2],
        arrowprops={
            "arrowstyle": "-|>",
            "color": "#555555",
            "linewidth": 0.9,
            "shrinkA": 0,
            "shrinkB": 1,
            "mutation_scale": 9,
        },
    )
    if label:
        a, b = route[label_at], route[label_at + 1]
        ax.text(
            (a[0] + b[0]) / 2,
            (a[1] + b[1]) / 2,
            label,
            ha="center",
            va="center",
            fontsize=6.5,
            color="#555555",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
        )


def architecture_diagram(
    model: nn.Module | str, input_size: tuple[int, int] = (832, 832), title: str | None = None
) -> Figure:
    """Boxes and arrows of a DGCNet with the tensor shapes of :func:`architecture_shapes`.

    The backbone rises on the left (input at the bottom, layer4 at the top), the auxiliary
    head branches off layer3, and the head descends on the right: the coordinate-space graph
    (orange) and the feature-space graph (green) side by side, then the fusion and the
    classifier. The paper head (``ContextFCNHead`` with a paper ``DualGCN``) sums
    ``X + X~_S + X~_F`` on the backbone feature; the authors' ``DualGCNHead`` reduces the
    channels, fuses the two branches by concatenation + 1x1 conv + BN, and concatenates the
    result with the backbone feature before its classifier. Each box writes its output shape
    (channels x height x width of one image); the shape texts carry the stage key of
    :func:`architecture_shapes` as their ``gid``.

    Args:
        model: a :class:`~dgcn.models.DGCNet`, or a preset name (built on the meta device).
        input_size: ``(H, W)`` of the image.
        title: the figure's title; by default the model, its backbone and the input size.

    Returns:
        a ``matplotlib.figure.Figure``.
    """
    model, name = _model(model)
    shapes = architecture_shapes(model, input_size)
    head, backbone = model.head, model.backbone
    official = isinstance(head, DualGCNHead)
    graph = getattr(head, "graph", None)
    dual = graph if isinstance(graph, DualGCN) else None
    has_coord = dual is not None and dual.coordinate is not None
    has_feat = dual is not None and dual.feature is not None

    # columns (inches): auxiliary head, backbone, gutter, coordinate, middle, feature
    xa, xb, gutter, xc, xm, xf = 1.15, 3.5, 4.95, 6.75, 8.35, 9.95
    wa, wb, wg, wm = 2.1, 2.3, 2.9, 3.5
    step = 1.02
    levels = 8 if official else 7
    width, height = 11.55, 0.85 + levels * step
    top = height - 0.85 - step / 2 + 0.1

    def level(i: int) -> float:
        return top - i * step

    colours = _COLOURS
    boxes: dict[str, _Box] = {}
    boxes["input"] = _Box(
        xb, level(5), wb, "input image", colours["data"], ["RGB, normalised"], [("", "input")]
    )
    boxes["stem"] = _Box(
        xb, level(4), wb, "stem", colours["backbone"], [_stem_detail(backbone.stem)], [("", "stem")]
    )
    for i, key in enumerate(("layer1", "layer2", "layer3", "layer4")):
        boxes[key] = _Box(
            xb,
            level(3 - i),
            wb,
            key,
            colours["backbone"],
            [_layer_detail(getattr(backbone, key))],
            [("", key)],
        )
    if model.aux_head is not None:
        boxes["aux"] = _Box(
            xa,
            level(1),
            wa,
            "auxiliary head",
            colours["aux"],
            [f"{_conv(model.aux_head)}, BN,", "dropout, 1x1 conv (training)"],
            [("", "aux")],
        )
        boxes["aux_out"] = _Box(
            xa,
            level(2),
            wa,
            "upsample (aux loss)",
            colours["aux"],
            ["bilinear, to the input"],
            [("", "aux_out")],
        )

    if official:
        boxes["entry"] = _Box(
            xm,
            level(0),
            wm,
            "reduce (conva)",
            colours["head"],
            [f"{_conv(head.reduce)}, BN, ReLU"],
            [("", "reduce")],
        )
    else:
        boxes["entry"] = _Box(
            xm,
            level(0),
            wm,
            "X: the backbone feature",
            colours["head"],
            ["layer4's output" + (", the graphs' input" if dual is not None else "")],
            [("", "head_in")],
        )
    if has_coord:
        coordinate = dual.coordinate
        if official:
            steps = sum(isinstance(m, nn.Conv2d) for m in coordinate.downsample.modules())
            how = [f"{steps} depthwise 3x3 stride-2 convs + BN (d = {2**steps})"]
            message = ["softmax(key valueᵀ): C/2×C/2,", "query A, Conv1d + BN (C/2 × N')"]
            out = ["x ⊙ up(ReLU(reproject + V)) + x"]
        else:
            how = [
                ("average pooling" if coordinate.pooling == "avg" else "stride-2 depthwise convs")
                + f", d = {coordinate.downsample_rate}"
            ]
            message = [
                r"$A_S$ value $W_S$ = query (keyᵀ value) $W_S$",
                r"the N'×N' matrix $A_S$ is never formed",
            ]
            out = [r"$\tilde X_S$: 1x1 conv + BN, upsampled"]
        nodes = shapes["coord_nodes"]
        boxes["coord_nodes"] = _Box(
            xc,
            level(1),
            wg,
            f"coordinate nodes ({nodes[-2]}×{nodes[-1]} grid)",
            colours["coordinate"],
            how,
            [("", "coord_nodes")],
        )
        boxes["coord_message"] = _Box(
            xc,
            level(2),
            wg,
            "coordinate graph conv",
            colours["coordinate"],
            message,
            [("", "coord_message")],
        )
        boxes["coord_out"] = _Box(
            xc, level(3), wg, "coordinate output", colours["coordinate"], out, [("", "coord_out")]
        )
    if has_feat:
        if official:
            proj = "to_nodes, to_features: 1x1 conv + BN"
            graph_text = ["(I + A) Z, then W: Conv1d + BN each"]
            out = ["ReLU(x + reproject(Z B))"]
        else:
            proj = "to_nodes H_F, to_features: 1x1 convs"
            graph_text = [r"$(I - A_F)\,V_F\,W_F$, no BN inside"]
            out = [r"$\tilde X_F$: 1x1 conv + BN on $H_F M_F$"]
        boxes["feature_proj"] = _Box(
            xf,
            level(1),
            wg,
            "feature projections",
            colours["feature"],
            [proj],
            [("to_nodes ", "feature_assign"), ("to_features ", "feature_features")],
        )
        boxes["feature_nodes"] = _Box(
            xf,
            level(2),
            wg,
            "feature graph (nodes × features)",
            colours["feature"],
            graph_text,
            [("", "feature_nodes")],
        )
        boxes["feature_out"] = _Box(
            xf, level(3), wg, "feature output", colours["feature"], out, [("", "feature_out")]
        )
    if dual is not None:
        if official:
            merge = ["concat → 1x1 conv + BN"] if dual.fuse is not None else ["no fusion"]
            merge_title = "fuse (final)" if dual.fuse is not None else "the one branch's output"
        else:
            terms = [
                "X",
                *([r"\tilde X_S"] if has_coord else []),
                *([r"\tilde X_F"] if has_feat else []),
            ]
            merge = ["$" + " + ".join(terms) + "$"]
            merge_title = "sum"
        boxes["graph"] = _Box(
            xm, level(4), wm, merge_title, colours["head"], merge, [("", "graph")]
        )
    elif graph is not None and not isinstance(graph, nn.Identity):
        boxes["graph"] = _Box(
            xm, level(2), wm, type(graph).__name__, colours["head"], [], [("", "graph")]
        )
    if official:
        boxes["project"] = _Box(
            xm,
            level(5),
            wm,
            "project (convb)",
            colours["head"],
            [f"{_conv(head.project)}, BN, ReLU"],
            [("", "project")],
        )
        classes = head.classifier[-1].out_channels
        boxes["classifier"] = _Box(
            xm,
            level(6),
            wm,
            "concat [X; project] + classifier",
            colours["head"],
            [f"{_conv(head.classifier)}, BN, ReLU, 1x1 → {classes}"],
            [("concat ", "concat"), ("logits ", "logits")],
        )
        boxes["out"] = _Box(
            xm,
            level(7),
            wm,
            "upsample",
            colours["data"],
            ["bilinear (align_corners), to the input"],
            [("", "out")],
        )
    else:
        classes = head.classifier[-1].out_channels
        boxes["classifier"] = _Box(
            xm,
            level(5),
            wm,
            "classifier (FCNHead)",
            colours["head"],
            [f"{_conv(head.classifier)}, BN, ReLU, dropout, 1x1 → {classes}"],
            [("", "logits")],
        )
        boxes["out"] = _Box(
            xm,
            level(6),
            wm,
            "upsample",
            colours["data"],
            ["bilinear (align_corners), to the input"],
            [("", "out")],
        )

    fig = new_figure((width, height))
    fig.set_layout_engine("none")  # boxes are placed by hand, in inches
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    for box in boxes.values():
        _draw_box(ax, box, shapes)

    b = boxes
    for lower, upper in [
        ("input", "stem"),
        ("stem", "layer1"),
        ("layer1", "layer2"),
        ("layer2", "layer3"),
        ("layer3", "layer4"),
    ]:
        _arrow(ax, b[lower].top(), b[upper].bottom())
    if "aux" in b:
        _arrow(ax, b["layer3"].left(), b["aux"].right())
        _arrow(ax, b["aux"].bottom(), b["aux_out"].top())
    _arrow(ax, b["layer4"].right(), b["entry"].left())
    entry = b["entry"].bottom()
    branch_from = [(entry[0] - 0.9, entry[1]), (entry[0] + 0.9, entry[1])]
    if has_coord:
        _arrow(ax, branch_from[0], b["coord_nodes"].top())
        _arrow(ax, b["coord_nodes"].bottom(), b["coord_message"].top())
        _arrow(ax, b["coord_message"].bottom(), b["coord_out"].top())
    if has_feat:
        _arrow(ax, branch_from[1], b["feature_proj"].top())
        _arrow(ax, b["feature_proj"].bottom(), b["feature_nodes"].top())
        _arrow(ax, b["feature_nodes"].bottom(), b["feature_out"].top())
    merge_top = b["graph"].top() if "graph" in b else b["classifier"].top()
    if has_coord:
        _arrow(ax, b["coord_out"].bottom(), (merge_top[0] - 0.9, merge_top[1]))
    if has_feat:
        _arrow(ax, b["feature_out"].bottom(), (merge_top[0] + 0.9, merge_top[1]))
    if not official:  # the identity term X of the sum (or X straight into the classifier)
        _arrow(ax, entry, merge_top, label="X (identity)" if dual is not None else "")
    after = b["project"] if official else b["classifier"]
    if "graph" in b:
        _arrow(ax, b["graph"].bottom(), after.top())
        if dual is None and official:  # a context module that is not a graph
            _arrow(ax, entry, b["graph"].top())
    elif official:  # graphs="none": the identity in the graph's place
        _arrow(ax, entry, after.top())
    if official:
        _arrow(ax, b["project"].bottom(), b["classifier"].top())
        start = (gutter, b["layer4"].y)
        corner = (gutter, b["classifier"].y)
        _arrow(
            ax,
            start,
            b["classifier"].left(),
            corner,
            label=f"X ({shapes['head_in'][1]} ch)",
            label_at=1,
        )
    _arrow(ax, b["classifier"].bottom(), b["out"].top())

    if title is None:
        head_name = (
            "the authors' DualGCNHead"
            if official
            else "paper head (graphs on X, sum)"
            if dual is not None
            else f"{type(head).__name__} without graphs"
            if isinstance(head, ContextFCNHead)
            else type(head).__name__
        )
        title = (
            f"{name}: {_backbone_name(backbone)} + {head_name}, "
            f"input {input_size[0]}×{input_size[1]}"
        )
    ax.text(0.15, height - 0.3, title, fontsize=10.5, fontweight="bold", va="center")
    note = "shapes measured by forward hooks on this model, for one image: channels×height×width"
    if has_feat:
        note += "; feature graph: nodes×features"
    if has_coord and official:
        note += "; coordinate message: channels×nodes"
    ax.text(
        0.15,
        height - 0.58,
        note,
        fontsize=7.5,
        va="center",
        color="#333333",
    )
    return fig
