"""An interactive inspector of a trained model's predictions, errors and graphs.

Three stages, so that the drawing is testable without a browser:

- :func:`compute` (:mod:`dgcn.viz.inspector_compute`) runs the model once over a set of images
  and keeps everything the views need as plain arrays (:class:`InspectorData`): the images,
  ground truth, predictions, the error mask, every image's coordinate graph ``A_S`` (node by
  node) and feature-space projection ``H_F``, and which node / feature position holds each
  pixel. :func:`describe` gives the numbers reported for an :class:`InspectorState`.
- :func:`render` (:mod:`dgcn.viz.inspector_draw`) draws one state (which image, which layers,
  the overlay opacity, a highlighted class, a picked pixel) as a ``Figure``; it reads only the
  arrays, so a redraw never runs the model. :func:`static_figure` stacks a few states in one
  figure (what a static page shows).
- :func:`inspector` (here) wires ipywidgets controls to the drawing; without ipywidgets it
  returns the static figure instead. Where no kernel renders widgets (a saved notebook on
  GitHub or nbviewer), the widget's text form is one line, :data:`NO_KERNEL_NOTE`. Its
  redraws go through a :class:`Canvas` (:mod:`dgcn.viz.inspector_canvas`), which keeps one
  figure per layout and changes only what a state changes (a redraw: about 0.1 s on a 2-core
  CPU, ``benchmarks/inspector_redraw.py``).

Classes appear by name everywhere (the class control, the legend, the readout), from the
data's ``class_names`` (default: the label table of :mod:`dgcn.datasets.labels`). Everything
above is importable from this module.

Used by notebooks/07_evaluation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from dgcn.viz.inspector_canvas import Canvas
from dgcn.viz.inspector_compute import (
    LAYERS,
    NOT_SCORED,
    InspectorData,
    InspectorState,
    class_name,
    compute,
    describe,
    image_miou,
)
from dgcn.viz.inspector_draw import (
    AFFINITY_LABEL,
    ASSIGNMENT_LABEL,
    DIM,
    layers,
    legend_classes,
    png,
    render,
    static_figure,
)

#: the inspector's text form: what a saved notebook shows in its place where no kernel renders
#: widgets (GitHub, nbviewer), instead of ``VBox(children=...)``; ipywidgets cuts a widget's
#: text form at 110 characters
NO_KERNEL_NOTE = (
    "Interactive inspector: run this notebook in Jupyter (or Colab) to use its controls"
)


@functools.cache
def _inspector_box(vbox: type) -> type:
    """A subclass of ipywidgets' ``VBox`` (passed in: ipywidgets is imported only when used)
    whose text form is :data:`NO_KERNEL_NOTE`."""

    class InspectorBox(vbox):
        """The inspector's widget: a ``VBox`` whose text form is :data:`NO_KERNEL_NOTE`."""

        def __repr__(self) -> str:
            return NO_KERNEL_NOTE

    return InspectorBox


def readout(info: dict[str, Any]) -> str:
    """The HTML lines of :func:`describe`'s numbers that the widget shows under its picture
    (classes by name: the ``*_id`` entries are left out)."""
    lines = []
    for key, value in info.items():
        if key.endswith("_id"):
            continue
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"<code>{key}</code>: {shown}")
    return "<br>".join(lines)


def inspector(
    data: InspectorData,
    state: InspectorState | None = None,
    static_states: Sequence[InspectorState] | None = None,
    dpi: float = 90,
) -> Any:
    """The interactive inspector: ipywidgets controls around :func:`render`.

    Controls: the image (with its mIoU), a toggle per layer, the overlay opacity, the
    highlighted class, and a pixel (y and x sliders; the "graphs" box shows what the graphs do
    for it); classes by name. Every change re-renders the state to a PNG shown in an
    ``ipywidgets.Image`` (the sliders when they are released, ``continuous_update=False``, not
    at every step of a drag); the model never runs again (:func:`compute` ran it once per
    image). The numbers of :func:`describe` appear under the picture (:func:`readout`).

    Args:
        data: from :func:`compute`.
        state: the first state shown; default: image 0, all layers, no class, no pixel.
        static_states: what to return when ipywidgets is not installed (default: ``[state]``).
        dpi: the resolution of the rendered PNG.

    Returns:
        an ``ipywidgets.VBox`` (its text form: :data:`NO_KERNEL_NOTE`; its ``controls``
        attribute: the widgets by name, the layer toggles as ``"show errors"`` etc.;
        ``current_state()`` gives the current :class:`InspectorState`; ``canvas``: its
        :class:`Canvas`), or, without ipywidgets, the :func:`static_figure` of
        ``static_states``.
    """
    state = state or InspectorState()
    try:
        import ipywidgets as widgets
    except ImportError:
        return static_figure(data, list(static_states or [state]))

    height, width = data.image_size
    pixel = state.pixel or (height // 2, width // 2)
    layout = widgets.Layout(width="360px")
    style = {"description_width": "70px"}
    images = [(f"{i}: mIoU {image_miou(data, i):.1%}", i) for i in range(len(data))]
    # -1 stands for "no class" (a Dropdown's value None means "nothing selected")
    classes = [("none", -1)] + [(name, k) for k, name in enumerate(data.class_names)]
    controls = {
        "image": widgets.Dropdown(
            options=images, value=state.image, description="image", layout=layout, style=style
        ),
        **{
            f"show {name}": widgets.ToggleButton(value=name in state.show, description=name)
            for name in LAYERS
        },
        "opacity": widgets.FloatSlider(
            value=state.opacity,
            min=0.0,
            max=1.0,
            step=0.05,
            continuous_update=False,  # redraw on release, not at every step of a drag
            description="opacity",
            layout=layout,
            style=style,
        ),
        "highlight": widgets.Dropdown(
            options=classes,
            value=-1 if state.highlight is None else state.highlight,
            description="class",
            layout=layout,
            style=style,
        ),
        "graphs": widgets.Checkbox(value=state.pixel is not None, description="graphs at pixel"),
        **{
            axis: widgets.IntSlider(
                value=pixel[k],
                min=0,
                max=size - 1,
                continuous_update=False,
                description=axis,
                layout=layout,
                style=style,
            )
            for k, (axis, size) in enumerate((("y", height), ("x", width)))
        },
    }
    picture = widgets.Image(format="png")
    numbers = widgets.HTML()

    def current() -> InspectorState:
        return InspectorState(
            image=controls["image"].value,
            show=tuple(name for name in LAYERS if controls[f"show {name}"].value),
            opacity=controls["opacity"].value,
            highlight=None if controls["highlight"].value < 0 else controls["highlight"].value,
            pixel=(controls["y"].value, controls["x"].value) if controls["graphs"].value else None,
        )

    canvas = Canvas(data, dpi=dpi)  # one reused figure per layout: a redraw only re-renders

    def update(_change: Any = None) -> None:
        shown = current()
        picture.value = canvas.png(shown)
        picture.width = str(canvas.width(shown))  # shown at its own size
        numbers.value = readout(describe(data, shown))

    for control in controls.values():
        control.observe(update, names="value")
    update()
    box = _inspector_box(widgets.VBox)(
        [
            widgets.HBox([controls["image"], controls["opacity"], controls["highlight"]]),
            widgets.HBox([controls[f"show {name}"] for name in LAYERS]),
            widgets.HBox([controls["graphs"], controls["y"], controls["x"]]),
            picture,
            numbers,
        ]
    )
    box.controls = controls
    box.current_state = current
    box.canvas = canvas
    return box


__all__ = [
    "AFFINITY_LABEL",
    "Canvas",
    "ASSIGNMENT_LABEL",
    "DIM",
    "LAYERS",
    "NO_KERNEL_NOTE",
    "NOT_SCORED",
    "InspectorData",
    "InspectorState",
    "class_name",
    "compute",
    "describe",
    "image_miou",
    "inspector",
    "layers",
    "legend_classes",
    "png",
    "readout",
    "render",
    "static_figure",
]
