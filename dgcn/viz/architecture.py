"""The DGCNet architecture as a diagram, with the tensor shapes measured on the real model.

:func:`architecture_diagram` draws boxes and arrows for the backbone, the auxiliary head and
either head (the paper's sum on the backbone feature, or the authors' ``DualGCNHead``) and
writes on the boxes the shapes :func:`~dgcn.models.profile.architecture_shapes` records
(forward hooks; a model on the ``meta`` device allocates nothing; the function and
``format_shape`` are also reachable here). The boxes and arrows are tables (``_BACKBONE``,
``_OFFICIAL``, ``_PAPER``, ``_LINKS``...) whose texts are templates filled from the model; one
loop draws the rows a model has. Used by notebooks/04_dgcnet_model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, NamedTuple

from torch import nn

from dgcn.models.dual_gcn import DualGCN, DualGCNHead
from dgcn.models.network import ContextFCNHead
from dgcn.models.profile import architecture_shapes, as_dgcnet, format_shape
from dgcn.viz.palette import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: each part's column (x of its boxes' centres and their width, inches) and colour: the input
#: and the output share their columns with the backbone and the head, not their colour
_PARTS = {
    "aux": (1.15, 2.1, "#ececec"),
    "input": (3.5, 2.3, "#f4f1de"),
    "backbone": (3.5, 2.3, "#dde6f0"),
    "coordinate": (6.75, 2.9, "#fbe3cf"),
    "head": (8.35, 3.5, "#e7def0"),
    "output": (8.35, 3.5, "#f4f1de"),
    "feature": (9.95, 2.9, "#dcefd9"),
}
_GUTTER = 4.95  # x of the authors' second path of X, from layer4 down to their classifier
_STEP = 1.02  # inches from one level to the next


class _Row(NamedTuple):  # one box of the tables below
    key: str
    part: str
    level: int
    when: str
    title: str
    details: tuple[str, ...] = ()
    shapes: tuple[tuple[str, str], ...] | None = None


class _Link(NamedTuple):  # one arrow of the tables below
    start: str
    end: str
    when: str = ""
    label: str = ""
    via: tuple[str, ...] = ()
    label_at: int = 0


# The boxes, in drawing order: key (what arrows name), part (of _PARTS), level (0: the top),
# when (the flag of _flags a model needs for the box, "": always), title and detail lines
# (templates: {field}s of _facts), shapes: (label, key of architecture_shapes) written on it,
# by default its own key. An arrow (_Link) goes from start through the elbows via to end, each
# "box.side" (top, bottom, left, right; gutter: the box's y at _GUTTER) with an optional shift
# in x; its label (a template) sits on segment label_at of the route.
_STAGES = ("input", "stem", "layer1", "layer2", "layer3", "layer4")
_BACKBONE = [
    _Row("input",   "input",    5, "",    "input image",         ("RGB, normalised",)),
    _Row("stem",    "backbone", 4, "",    "stem",                ("{stem}",)),
    _Row("layer1",  "backbone", 3, "",    "layer1",              ("{layer1}",)),
    _Row("layer2",  "backbone", 2, "",    "layer2",              ("{layer2}",)),
    _Row("layer3",  "backbone", 1, "",    "layer3",              ("{layer3}",)),
    _Row("layer4",  "backbone", 0, "",    "layer4",              ("{layer4}",)),
    _Row("aux",     "aux",      1, "aux", "auxiliary head",
         ("{aux}, BN,", "dropout, 1x1 conv (training)")),
    _Row("aux_out", "aux",      2, "aux", "upsample (aux loss)", ("bilinear, to the input",)),
]  # fmt: skip
_PROJECTIONS = (("to_nodes ", "feature_assign"), ("to_features ", "feature_features"))
_OFFICIAL = [
    _Row("entry", "head", 0, "", "reduce (conva)", ("{reduce}, BN, ReLU",), (("", "reduce"),)),
    _Row("coord_nodes", "coordinate", 1, "coordinate", "coordinate nodes ({grid} grid)",
         ("{steps} depthwise 3x3 stride-2 convs + BN (d = {d})",)),
    _Row("coord_message", "coordinate", 2, "coordinate", "coordinate graph conv",
         ("softmax(key valueᵀ): C/2×C/2,", "query A, Conv1d + BN (C/2 × N')")),
    _Row("coord_out", "coordinate", 3, "coordinate", "coordinate output",
         ("x ⊙ up(ReLU(reproject + V)) + x",)),
    _Row("feature_proj", "feature", 1, "feature", "feature projections",
         ("to_nodes, to_features: 1x1 conv + BN",), _PROJECTIONS),
    _Row("feature_nodes", "feature", 2, "feature", "feature graph (nodes × features)",
         ("(I + A) Z, then W: Conv1d + BN each",)),
    _Row("feature_out", "feature", 3, "feature", "feature output", ("ReLU(x + reproject(Z B))",)),
    _Row("graph", "head", 4, "fused", "fuse (final)", ("concat → 1x1 conv + BN",)),
    _Row("graph", "head", 4, "unfused", "the one branch's output", ("no fusion",)),
    _Row("graph", "head", 2, "context", "{context}"),
    _Row("project", "head", 5, "", "project (convb)", ("{project}, BN, ReLU",)),
    _Row("classifier", "head", 6, "", "concat [X; project] + classifier",
         ("{classifier}, BN, ReLU, 1x1 → {classes}",),
         (("concat ", "concat"), ("logits ", "logits"))),
    _Row("out", "output", 7, "", "upsample", ("bilinear (align_corners), to the input",)),
]  # fmt: skip
_PAPER = [
    _Row("entry", "head", 0, "", "X: the backbone feature", ("layer4's output{graphs_input}",),
         (("", "head_in"),)),
    _Row("coord_nodes", "coordinate", 1, "coordinate", "coordinate nodes ({grid} grid)",
         ("{pooling}, d = {d}",)),
    _Row("coord_message", "coordinate", 2, "coordinate", "coordinate graph conv",
         (r"$A_S$ value $W_S$ = query (keyᵀ value) $W_S$",
          r"the N'×N' matrix $A_S$ is never formed")),
    _Row("coord_out", "coordinate", 3, "coordinate", "coordinate output",
         (r"$\tilde X_S$: 1x1 conv + BN, upsampled",)),
    _Row("feature_proj", "feature", 1, "feature", "feature projections",
         ("to_nodes H_F, to_features: 1x1 convs",), _PROJECTIONS),
    _Row("feature_nodes", "feature", 2, "feature", "feature graph (nodes × features)",
         (r"$(I - A_F)\,V_F\,W_F$, no BN inside",)),
    _Row("feature_out", "feature", 3, "feature", "feature output",
         (r"$\tilde X_F$: 1x1 conv + BN on $H_F M_F$",)),
    _Row("graph", "head", 4, "dual", "sum", ("{sum}",)),
    _Row("graph", "head", 2, "context", "{context}"),
    _Row("classifier", "head", 5, "", "classifier (FCNHead)",
         ("{classifier}, BN, ReLU, dropout, 1x1 → {classes}",), (("", "logits"),)),
    _Row("out", "output", 6, "", "upsample", ("bilinear (align_corners), to the input",)),
]  # fmt: skip
#: the arrows of either head, in drawing order: backbone, auxiliary head, the graphs' branches
_LINKS = [
    *(_Link(f"{lower}.top", f"{upper}.bottom") for lower, upper in pairwise(_STAGES)),
    _Link("layer3.left",          "aux.right",         "aux"),
    _Link("aux.bottom",           "aux_out.top",       "aux"),
    _Link("layer4.right",         "entry.left"),
    _Link("entry.bottom-0.9",     "coord_nodes.top",   "coordinate"),
    _Link("coord_nodes.bottom",   "coord_message.top", "coordinate"),
    _Link("coord_message.bottom", "coord_out.top",     "coordinate"),
    _Link("entry.bottom+0.9",     "feature_proj.top",  "feature"),
    _Link("feature_proj.bottom",  "feature_nodes.top", "feature"),
    _Link("feature_nodes.bottom", "feature_out.top",   "feature"),
    _Link("coord_out.bottom",     "graph.top-0.9",     "coordinate"),
    _Link("feature_out.bottom",   "graph.top+0.9",     "feature"),
]  # fmt: skip
#: then the authors' head's: the module, convb, their second path of X (2048 channels)
_OFFICIAL_LINKS = [
    _Link("graph.bottom",      "project.top",    "graph"),
    _Link("entry.bottom",      "graph.top",      "context"),
    _Link("entry.bottom",      "project.top",    "plain"),
    _Link("project.bottom",    "classifier.top"),
    _Link("layer4.gutter", "classifier.left", "", "X ({head_in} ch)", ("classifier.gutter",), 1),
    _Link("classifier.bottom", "out.top"),
]  # fmt: skip
#: or the paper head's: the identity term X of the sum (or X straight into the classifier)
_PAPER_LINKS = [
    _Link("entry.bottom",      "graph.top",      "dual", "X (identity)"),
    _Link("entry.bottom",      "graph.top",      "context"),
    _Link("entry.bottom",      "classifier.top", "plain"),
    _Link("graph.bottom",      "classifier.top", "graph"),
    _Link("classifier.bottom", "out.top"),
]  # fmt: skip


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


def _flags(model) -> set[str]:
    """The ``when`` flags a model meets: ``""``, ``aux``, ``coordinate``, ``feature``,
    ``dual`` (a DualGCN), ``fused`` or ``unfused`` (the authors' head: their fusion, or one
    branch alone), ``context`` (another context module), ``plain`` (none), ``graph`` (a box
    for the module: dual or context)."""
    head, flags = model.head, {""} | ({"aux"} if model.aux_head is not None else set())
    graph = getattr(head, "graph", None)
    if isinstance(graph, DualGCN):
        flags |= {"dual", "graph"} | {n for n in ("coordinate", "feature") if getattr(graph, n)}
        if isinstance(head, DualGCNHead):
            flags.add("fused" if graph.fuse is not None else "unfused")
    elif graph is not None and not isinstance(graph, nn.Identity):
        flags |= {"context", "graph"}
    else:
        flags.add("plain")
    return flags


def _facts(model, shapes: dict[str, tuple[int, ...]], flags: set[str]) -> dict[str, str]:
    """The ``{field}``s of the tables' templates, read from the model (those it has)."""
    head, backbone = model.head, model.backbone
    facts = {f"layer{i}": _layer_detail(getattr(backbone, f"layer{i}")) for i in range(1, 5)}
    facts |= {"stem": _stem_detail(backbone.stem), "head_in": str(shapes["head_in"][1])}
    classifier = head.classifier
    facts |= {"classifier": _conv(classifier), "classes": str(classifier[-1].out_channels)}
    if "aux" in flags:
        facts["aux"] = _conv(model.aux_head)
    if "context" in flags:
        facts["context"] = type(head.graph).__name__
    if "coordinate" in flags:
        facts["grid"] = "{}×{}".format(*shapes["coord_nodes"][-2:])
    if isinstance(head, DualGCNHead):
        facts |= {"reduce": _conv(head.reduce), "project": _conv(head.project)}
        if "coordinate" in flags:
            downsample = head.graph.coordinate.downsample
            steps = sum(isinstance(m, nn.Conv2d) for m in downsample.modules())
            facts |= {"steps": str(steps), "d": str(2**steps)}
        return facts
    facts["graphs_input"] = ", the graphs' input" if "dual" in flags else ""
    if "coordinate" in flags:
        coordinate = head.graph.coordinate
        pooling = "average pooling" if coordinate.pooling == "avg" else "stride-2 depthwise convs"
        facts |= {"pooling": pooling, "d": str(coordinate.downsample_rate)}
    if "dual" in flags:
        terms = {"coordinate": r" + \tilde X_S", "feature": r" + \tilde X_F"}
        facts["sum"] = "$X" + "".join(term for n, term in terms.items() if n in flags) + "$"
    return facts


def _anchor(boxes: dict[str, _Box], spec: str) -> tuple[float, float]:
    """The point ``"box.side"`` of a :class:`_Link`, shifted in x by a ``+0.9`` or ``-0.9``."""
    key, side, shift = re.fullmatch(r"(\w+)\.(\w+)([+-][\d.]+)?", spec).groups()
    box = boxes[key]
    if side == "gutter":
        return _GUTTER, box.y
    x, y = getattr(box, side)()
    return (x + float(shift), y) if shift else (x, y)


def _draw_box(ax: Axes, box: _Box, shapes: dict[str, tuple[int, ...]]) -> None:
    from matplotlib.patches import FancyBboxPatch

    corner = (box.x - box.width / 2, box.y - box.height / 2)
    style = {"boxstyle": "round,pad=0,rounding_size=0.08", "edgecolor": "#555555"}
    ax.add_patch(
        FancyBboxPatch(corner, box.width, box.height, facecolor=box.colour, **style, linewidth=0.8)
    )
    centred = {"ha": "center", "va": "center"}
    y = box.y + 0.17 * (len(box.details) + len(box.shapes)) / 2
    ax.text(box.x, y, box.title, **centred, fontsize=8.5, fontweight="bold")
    for detail in box.details:
        y -= 0.17
        ax.text(box.x, y, detail, **centred, fontsize=7, color="#333333")
    for label, key in box.shapes:
        y -= 0.17
        text = f"{label}{format_shape(shapes[key])}"
        shown = ax.text(
            box.x, y, text, **centred, fontsize=7.5, family="monospace", color="#1a3d7c"
        )
        shown.set_gid(key)  # tests read the shapes back from the figure by this id


def _arrow(ax: Axes, route: list[tuple[float, float]], label: str = "", label_at: int = 0) -> None:
    """An arrow along ``route``: start, elbows, end; ``label`` on segment ``label_at``."""
    grey = "#555555"
    for a, b in pairwise(route[:-1]):
        ax.plot([a[0], b[0]], [a[1], b[1]], color=grey, linewidth=0.9)
    head = {"arrowstyle": "-|>", "color": grey, "linewidth": 0.9, "mutation_scale": 9}
    ax.annotate("", xy=route[-1], xytext=route[-2], arrowprops=head | {"shrinkA": 0, "shrinkB": 1})
    if label:
        (xa, ya), (xb, yb) = route[label_at], route[label_at + 1]
        white = {"facecolor": "white", "edgecolor": "none", "pad": 0.5}
        style = {"ha": "center", "va": "center", "fontsize": 6.5, "color": grey, "bbox": white}
        ax.text((xa + xb) / 2, (ya + yb) / 2, label, **style)


def architecture_diagram(
    model: nn.Module | str, input_size: tuple[int, int] = (832, 832), title: str | None = None
) -> Figure:
    """Boxes and arrows of a DGCNet with the tensor shapes of
    :func:`~dgcn.models.profile.architecture_shapes`.

    The backbone rises on the left (input at the bottom, layer4 at the top), the auxiliary
    head branches off layer3, and the head descends on the right: the coordinate-space graph
    (orange) and the feature-space graph (green) side by side, then the fusion and the
    classifier. The paper head (``ContextFCNHead`` with a paper ``DualGCN``) sums
    ``X + X~_S + X~_F`` on the backbone feature; the authors' ``DualGCNHead`` reduces the
    channels, fuses the two branches by concatenation + 1x1 conv + BN, and concatenates the
    result with the backbone feature before its classifier. Each box writes its output shape
    (channels x height x width of one image); the shape texts carry the stage key of
    ``architecture_shapes`` as their ``gid``.

    Args:
        model: a :class:`~dgcn.models.DGCNet`, or a preset name (built on the meta device).
        input_size: ``(H, W)`` of the image.
        title: the figure's title; by default the model, its backbone and the input size.

    Returns:
        a ``matplotlib.figure.Figure``.
    """
    model, name = as_dgcnet(model)
    shapes = architecture_shapes(model, input_size)
    official = isinstance(model.head, DualGCNHead)
    flags = _flags(model)
    facts = _facts(model, shapes, flags)
    rows = [row for row in _BACKBONE + (_OFFICIAL if official else _PAPER) if row.when in flags]
    width, height = 11.55, 0.85 + (1 + max(row.level for row in rows)) * _STEP
    top = height - 0.85 - _STEP / 2 + 0.1
    fig = new_figure((width, height))
    fig.set_layout_engine("none")  # boxes are placed by hand, in inches
    ax = fig.add_axes((0, 0, 1, 1), xlim=(0, width), ylim=(0, height))
    ax.set_axis_off()
    boxes: dict[str, _Box] = {}
    for key, part, level, _, box_title, details, written in rows:
        x, box_width, colour = _PARTS[part]
        lines = [detail.format_map(facts) for detail in details]
        written = list(written or [("", key)])
        title_text = box_title.format_map(facts)
        boxes[key] = _Box(x, top - level * _STEP, box_width, title_text, colour, lines, written)
        _draw_box(ax, boxes[key], shapes)
    for link in _LINKS + (_OFFICIAL_LINKS if official else _PAPER_LINKS):
        if link.when in flags:
            route = [_anchor(boxes, spec) for spec in (link.start, *link.via, link.end)]
            _arrow(ax, route, link.label.format_map(facts), link.label_at)

    if title is None:
        head = model.head
        head_name = (
            "the authors' DualGCNHead"
            if official
            else "paper head (graphs on X, sum)"
            if "dual" in flags
            else f"{type(head).__name__} without graphs"
            if isinstance(head, ContextFCNHead)
            else type(head).__name__
        )
        title = (
            f"{name}: {_backbone_name(model.backbone)} + {head_name}, "
            f"input {input_size[0]}×{input_size[1]}"
        )
    ax.text(0.15, height - 0.3, title, fontsize=10.5, fontweight="bold", va="center")
    note = "shapes measured by forward hooks on this model, for one image: channels×height×width"
    if "feature" in flags:
        note += "; feature graph: nodes×features"
    if "coordinate" in flags and official:
        note += "; coordinate message: channels×nodes"
    ax.text(0.15, height - 0.58, note, fontsize=7.5, va="center", color="#333333")
    return fig


__all__ = ["architecture_diagram", "architecture_shapes", "format_shape"]
