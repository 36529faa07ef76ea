"""Redraw time of notebook 07's inspector on a CPU: what one move of a control costs.

The inspector of ``dgcn.viz.inspector`` on the data notebook 07 gives it: the committed MiniCity
model ``minicity-dgcnet-paper`` (the paper head, whose coordinate graph forms ``A_S``) on the
first 20 validation images of its own data configuration. The widget is built without a
frontend; each timed redraw is one control set by hand (the image, the class, the opacity, the
pixel's y and x, a layer toggle, the graphs box), which runs the widget's redraw (draw the
state, PNG it, the readout) synchronously; the time from the assignment to its return is that
redraw. Each round of ten moves goes to other images, classes and pixels. The widget's first
drawing is timed apart (matplotlib's first figure loads fonts), and so is the model: ``compute``
runs it once for every image, and no redraw runs it.

``all``: every move; ``drawn``: the moves whose picture was drawn, not taken from the ones the
widget keeps (``kept``: a move back to a state shown before, e.g. a layer toggled off and on
again), split into ``graphs_on`` (a pixel's graph panels shown: the slowest) and
``graphs_off``. For every drawn move, the same state is also drawn as the widget did before it
kept its figures, a new figure from :func:`~dgcn.viz.inspector.render` (``fresh_figure_s``):
the ratio of the medians is ``speedup_median``. Target: a redraw under 0.5 s on a CPU
(``threshold_s``).

    python benchmarks/inspector_redraw.py [--rounds 3] [--images 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

import dgcn  # noqa: E402
from dgcn import datasets  # noqa: E402
from dgcn.viz import inspector  # noqa: E402

THRESHOLD_S = 0.5
MODEL = "minicity-dgcnet-paper"


def changes(
    controls: dict, height: int, width: int, images: int, round_: int
) -> list[tuple[str, object]]:
    """The ten control moves of one round, (control, new value), from the first state; each
    round moves to other images, classes and pixels, so that its states are new ones."""
    y, x = controls["y"].value, controls["x"].value
    highlight = datasets.CLASS_NAMES.index(("sidewalk", "road", "car")[round_ % 3])
    return [
        ("image", (1 + 3 * round_) % images),
        ("highlight", highlight),
        ("opacity", round(0.3 + 0.05 * (round_ % 6), 2)),
        ("y", (y + 10 + 7 * round_) % height),
        ("x", (x + 20 + 13 * round_) % width),
        ("show errors", False),
        ("show errors", True),  # back to the state before: the widget may keep its picture
        ("graphs", False),
        ("image", (2 + 3 * round_) % images),
        ("graphs", True),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ten redraws")
    parser.add_argument("--images", type=int, default=20, help="validation images (notebook 07)")
    args = parser.parse_args()
    os.chdir(Path(__file__).resolve().parent.parent)  # the committed models and data/
    torch.manual_seed(0)
    model, cfg = dgcn.committed_model(MODEL)
    datasets.prepare_data(cfg.data)
    cfg.data.val_limit = args.images
    val_set = datasets.build_dataset(cfg.data, cfg.data.val_split, train=False)
    images = torch.stack([val_set[i][0] for i in range(len(val_set))])
    masks = torch.stack([val_set[i][1] for i in range(len(val_set))])

    start = time.perf_counter()
    data = inspector.compute(model, images, masks, source=f"paper head, {MODEL}")
    compute_s = time.perf_counter() - start
    height, width = data.image_size
    # notebook 07's first state: a class highlighted, the graphs at a pixel
    first = inspector.InspectorState(
        image=0, highlight=datasets.CLASS_NAMES.index("sidewalk"), pixel=(96, 47)
    )
    start = time.perf_counter()
    box = inspector.inspector(data, state=first)
    first_draw_s = time.perf_counter() - start
    controls = box.controls

    redraws = []
    for round_ in range(args.rounds):
        # back to the first state between rounds, untimed
        controls["image"].value, controls["opacity"].value = 0, first.opacity
        controls["highlight"].value, controls["graphs"].value = -1, True
        for name, value in changes(controls, height, width, len(data), round_):
            before = box.children[3].value
            canvas = getattr(box, "canvas", None)  # the widget's kept pictures, where it has them
            draws = canvas.draws if canvas is not None else 0
            start = time.perf_counter()
            controls[name].value = value
            seconds = time.perf_counter() - start
            assert box.children[3].value != before, f"setting {name} did not redraw"
            state = box.current_state()
            kept = canvas is not None and canvas.draws == draws
            graphs = state.pixel is not None
            row = {"control": name, "graphs": graphs, "kept": kept, "seconds": seconds}
            if canvas is not None and not kept:  # the same state in a new figure, as before
                start = time.perf_counter()
                inspector.png(inspector.render(data, state), dpi=canvas.dpi)
                row["fresh_figure_s"] = time.perf_counter() - start
            redraws.append(row)
            mark = " (picture kept)" if kept else ""
            print(f"{name:<12} graphs {'on ' if graphs else 'off'} {seconds:6.3f} s{mark}")

    def summary(rows: list[dict]) -> dict:
        times = [r["seconds"] for r in rows]
        result = {
            "redraws": len(times),
            "mean_s": statistics.fmean(times),
            "median_s": statistics.median(times),
            "max_s": max(times),
        }
        fresh = [r["fresh_figure_s"] for r in rows if "fresh_figure_s" in r]
        if fresh and len(fresh) == len(rows):  # a new figure per redraw, the same states
            result["fresh_figure_median_s"] = statistics.median(fresh)
            result["speedup_median"] = result["fresh_figure_median_s"] / result["median_s"]
        return result

    drawn = [r for r in redraws if not r["kept"]]  # a state not shown before
    payload = {
        "model": MODEL,
        "images": len(data),
        "image_size": [height, width],
        "threshold_s": THRESHOLD_S,
        "compute_s": compute_s,
        "first_draw_s": first_draw_s,
        "all": summary(redraws),
        "drawn": summary(drawn),
        "graphs_on": summary([r for r in drawn if r["graphs"]]),
        "graphs_off": summary([r for r in drawn if not r["graphs"]]),
        "redraw_list": redraws,
    }
    for key in ("all", "drawn", "graphs_on", "graphs_off"):
        s = payload[key]
        print(
            f"{key:<10} {s['redraws']:>3} redraws: mean {s['mean_s']:.3f} s, "
            f"median {s['median_s']:.3f} s, max {s['max_s']:.3f} s"
            + (
                f"; a new figure each: median {s['fresh_figure_median_s']:.3f} s "
                f"({s['speedup_median']:.2f}x)"
                if "speedup_median" in s
                else ""
            )
        )
    print(f"compute {compute_s:.1f} s for {len(data)} images; first draw {first_draw_s:.2f} s")
    print(f"wrote {write_result('inspector_redraw_cpu', payload)}")


if __name__ == "__main__":
    main()
