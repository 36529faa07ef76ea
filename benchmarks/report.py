"""The benchmark results in ``benchmarks/results/*.json`` as Markdown tables (the README's).

Every table names the machine and the command that wrote its numbers; a JSON file that is
missing (e.g. no CUDA run yet) is said to be missing rather than skipped silently, and one
that a time limit cut short (``complete: false``) is marked partial.

    python benchmarks/report.py [--results benchmarks/results] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS  # noqa: E402

from dgcn.fileio import write_text_atomic  # noqa: E402
from dgcn.markdown import markdown_table as table  # noqa: E402


def where(record: dict) -> str:
    m = record["machine"]
    device = m.get("gpu") or f"{m['cpu']}, {m['cores']} cores"
    return f"{device}, torch {m['torch']}, {record['date'][:10]}: `{record['command'].strip()}`"


def modules(record: dict) -> str:
    scale = record["spatial_divisor"]
    note = f" (spatial size divided by {scale})" if scale > 1 else ""
    rows = [
        [
            r["module"],
            "x".join(map(str, r["shape"])),
            f"{1000 * r['seconds']:.1f}",
            f"{r['mib']:.1f}",
        ]
        for r in record["modules"]
    ]
    out = [
        f"Forward+backward of one call{note}; memory: {record['memory']}.",
        "",
        table(["module", "input", "ms", "MiB"], rows),
        "",
        "The official-variant block against the authors' block (replica), measured in alternation:",
        "",
    ]
    rows = []
    for shape, r in record["official_vs_authors"].items():
        rows.append(
            [
                shape.replace(", ", "x").strip("[]"),
                f"{r['ours_ms']:.1f}",
                f"{r['authors_ms']:.1f}",
                f"{100 * (r['ours_ms'] / r['authors_ms'] - 1):+.0f} %",
                f"{r['ours_mib']:.1f}",
                f"{r['authors_mib']:.1f}",
                f"{100 * (r['ours_mib'] / r['authors_mib'] - 1):+.0f} %",
            ]
        )
    header = ["input", "ours ms", "authors' ms", "time", "ours MiB", "authors' MiB", "memory"]
    out.append(table(header, rows))
    return "\n".join(out)


def number(value, digits: int = 1, factor: float = 1.0, unit: str = "") -> str:
    """``value`` formatted, or ``-`` when it was not measured (None or absent)."""
    return "-" if value is None else f"{factor * value:.{digits}f}{unit}"


def percent(value) -> str:
    return number(value, 0, 100, " %")


def step_rows(variants: list[dict]) -> list[list[str]]:
    """The training-step table's rows (older JSON without the newer fields shows ``-``)."""
    return [
        [
            v["name"],
            f"{v['seconds_per_iter']:.3f}",
            f"{v['images_per_s']:.1f}",
            number(v.get("first_iteration_s"), 2),
            number(v.get("peak_gib")),
            number(v.get("peak_reserved_gib")),
            percent(v.get("mfu")),
            percent(v.get("mfu_matmul")),
        ]
        for v in variants
    ]


STEP_HEADER = ["variant", "s/iteration", "images/s", "first s", "peak GiB", "reserved GiB"]
STEP_HEADER += ["MFU (datasheet)", "MFU (matmul)"]


def rates(record: dict) -> str:
    """The two references of the utilisation columns."""
    peak, matmul = record.get("peak_tflops"), record.get("matmul_tflops_measured")
    if peak is None and matmul is None:
        return ""
    return (
        f" MFU against the dense bf16 peak of {number(peak, 0)} TFLOP/s"
        f" ({record.get('peak_source') or 'datasheet'}) and against the bf16 matrix-product rate"
        f" measured on this GPU, {number(matmul, 0)} TFLOP/s."
    )


def train_step(record: dict) -> str:
    size = "x".join(map(str, record["size"]))
    check = record["numerical_check"]
    closing = []
    variants = record["variants"]
    fastest = min(variants, key=lambda v: v["seconds_per_iter"])["name"] if variants else None
    cuda = "gpu" in record["machine"]
    for key, baseline in (
        ("speedup_fastest_vs_fp32", "fp32 with TF32 off" if cuda else "fp32 eager"),
        ("speedup_fastest_vs_tf32", "TF32 eager"),
    ):
        if record.get(key):
            closing.append(f"Fastest ({fastest}) vs {baseline}: {record[key]:.2f}x.")
    if not variants:
        closing.append("No variant timed.")
    if check:
        reference = check.get("reference", "fp32")
        closing.append(
            f"Fast path vs {reference}: max |logit diff| {check['max_abs_logit_diff']:.3f} (max"
            f" |logit| {check['max_abs_logit']:.2f}), loss {check['loss_fast']:.4f} vs"
            f" {check['loss_fp32']:.4f}, max |parameter diff| after one SGD step"
            f" {check['max_abs_param_diff_after_step']:.1e}."
        )
    else:
        closing.append("The fast path was not checked against fp32 in this run.")
    return "\n".join(
        [
            f"`{record['model']}`, batch {record['batch']}, {size}: "
            f"{record['forward_gflops_per_image']:.1f} GFLOPs per image forward.{rates(record)}",
            "",
            table(STEP_HEADER, step_rows(record["variants"])),
            "",
            " ".join(closing),
        ]
    )


def train_step_compile(record: dict) -> str:
    size = "x".join(map(str, record["size"]))
    rows = [
        [v["name"], f"{v['seconds_per_iter']:.3f}", f"{v['images_per_s']:.1f}"]
        + [number(v.get("compile_seconds")), number(v.get("peak_gib")), percent(v.get("mfu"))]
        for v in record["variants"]
    ]
    header = ["variant", "s/iteration", "images/s", "compile s", "peak GiB", "MFU (datasheet)"]
    out = [
        f"`{record['model']}`, batch {record['batch']}, {size}; compile seconds: the"
        " warm-up iterations' time beyond as many timed ones.",
        "",
        table(header, rows),
    ]
    timed = {v["name"] for v in record["variants"]}
    for name, seconds in (record.get("first_iteration_s") or {}).items():
        if name not in timed:  # stopped after its first (compiling) iteration
            out += ["", f"{name}: stopped after its first iteration, {seconds:.1f} s."]
    return "\n".join(out)


def authors_train_step(record: dict) -> str:
    size = "x".join(map(str, record["size"]))
    losses = record["first_step_losses"]
    rows = [
        [
            r["name"],
            f"{r['ours']['seconds_per_iter']:.3f}",
            f"{r['authors']['seconds_per_iter']:.3f}",
            f"{r['ours_over_authors']:.3f}",
            number(r["ours"].get("peak_gib")),
            number(r["authors"].get("peak_gib")),
        ]
        for r in record["rows"]
    ]
    header = ["variant", "ours s/it", "authors' s/it", "ours/authors", "ours GiB", "authors' GiB"]
    return "\n".join(
        [
            f"The authors' `{record['model']}` (their code, imported at run time) and ours"
            f" holding the same weights through the converter, batch {record['batch']}, {size};"
            f" criterion: {record['criterion']}. First-step loss in fp32 with TF32 off: ours"
            f" {losses['ours']:.6f}, theirs {losses['authors']:.6f} (relative difference"
            f" {losses['relative_difference']:.1e}).",
            "",
            table(header, rows),
        ]
    )


def evaluation(record: dict) -> str:
    size = "x".join(map(str, record["size"]))
    rows = [
        [r["mode"], r["precision"], f"{r['images_per_s']:.2f}", f"{r['seconds_for_500']:.0f}"]
        + [number(r.get("peak_gib")), number(r.get("peak_reserved_gib"))]
        for r in record["rows"]
    ]
    header = ["mode", "precision", "images/s", "s for 500 images", "peak GiB", "reserved GiB"]
    return "\n".join(
        [
            f"`{record['model']}` on {size} images, tile {record['tile']}, 1/3 overlap:",
            "",
            table(header, rows),
        ]
    )


def authors_evaluation(record: dict) -> str:
    size = "x".join(map(str, record["size"]))
    rows = [
        [r["side"], r["predictor"], r["precision"], f"{r['images_per_s']:.2f}"]
        + [f"{r['seconds_for_500']:.0f}", number(r.get("ours_over_authors"), 3)]
        + [number(r.get("peak_gib"))]
        for r in record["rows"]
    ]
    header = ["side", "predictor", "precision", "images/s", "s for 500", "ours/authors", "GiB"]
    out = [
        f"Sliding window (tile {record['tile']}, 1/3 overlap) on {size} images, the authors'"
        f" `{record['model']}` and ours with the same weights:",
        "",
        table(header, rows),
    ]
    check = record.get("confusion_check")
    if check:
        out += [
            "",
            f"Confusion matrices of one image, ours in fp32 vs theirs: largest count difference"
            f" {check['max_abs_count_difference']:.0f} of {check['pixels']} pixels.",
        ]
    return "\n".join(out)


def end_to_end(record: dict) -> str:
    h, w = record["size"]
    first = record.get("first_window") or {}
    return (
        f"`dgcn train --config {record['config']}` on a synthetic {h}x{w} MiniCity"
        f" ({record['images']} training images), {record['workers']} loader workers,"
        f" {record['iterations']} iterations ({record.get('precision')}, micro-batch"
        f" {record.get('micro_batch')} x {record.get('accumulation')}):"
        f" **{number(record['seconds_per_iter'], 3)} s/iteration** over"
        f" {record['measured_iterations']} iterations after the first log window"
        f" ({number(first.get('seconds'), 3)} s/iteration), MFU {percent(record.get('mfu'))};"
        f" peak {number(record.get('gpu_mem_gib'))} GiB; wall {record['train_wall_seconds']:.0f} s"
        f" (MiniCity generated in {record['generate_seconds']:.0f} s)."
    )


def session(record: dict) -> str:
    rows = [
        [e["name"], e["status"], number(e.get("limit_s"), 0), f"{e['seconds']:.0f}"]
        for e in record["steps"]
    ]
    return "\n".join(
        [
            f"Budget {record['budget_s']:.0f} s, {record['elapsed_s']:.0f} s used:",
            "",
            table(["step", "status", "limit s", "seconds"], rows),
        ]
    )


def environment(record: dict) -> str:
    keys = ("gpu", "capability", "total_gib", "nvidia_smi", "torch", "torch_cuda", "cudnn")
    keys += ("tf32_defaults", "python", "cores", "missing")
    return "\n".join(f"- {key}: {record.get(key)}" for key in keys)


def data_loading(record: dict) -> str:
    best = record["best_samples_per_s"]
    rows = [[name, f"{best[name]:.1f}"] for name in best]
    return "\n".join(
        [
            f"{record['input']}, {record['torch_threads']} torch thread, best of"
            f" {len(record['samples_per_s']['ours'])} rounds:",
            "",
            table(["pipeline", "samples/s per worker"], rows),
            "",
            f"Speed-up: {record['speedup']:.2f}x." if record["speedup"] else "No speed-up yet.",
        ]
    )


def context_cost(record: dict) -> str:
    def number(value, factor=1.0):
        return "-" if value is None else f"{factor * value:.1f}"

    rows = [
        [
            r["module"],
            f"{r['size']} ({r['height']}x{r['width']})",
            number(r["cpu_seconds"], 1000),
            number(r["cpu_peak_mib"]),
            number(r["bf16_activation_mib"]),
        ]
        for r in record["records"]
    ]
    skipped = [
        f"{r['module']} at {r['size']}: {r['skipped']}" for r in record["records"] if r["skipped"]
    ]
    out = [
        f"Each context module (paper form) at D = {record['channels']}, batch 1, on the stride-8"
        f" feature, forward+backward on the CPU with {record['threads']} torch"
        f" thread{'s' if record['threads'] > 1 else ''}; CPU peak:"
        f" {record['cpu_memory']}; bf16: {record['bf16_memory']}.",
        "",
        table(["module", "feature", "CPU ms", "CPU peak MiB", "bf16 saved MiB"], rows),
    ]
    if skipped:
        out += ["", "Not measured on the CPU: " + "; ".join(skipped) + "."]
    if record.get("plot"):
        out += ["", f"Figure: `{record['plot']}`."]
    return "\n".join(out)


def inspector_redraw(record: dict) -> str:
    def seconds(value):
        return "-" if value is None else f"{value:.3f}"

    rows = []
    for key, label in [
        ("all", "every move"),
        ("drawn", "drawn (not a kept picture)"),
        ("graphs_on", "drawn, graph panels shown"),
        ("graphs_off", "drawn, graph panels hidden"),
    ]:
        r = record[key]
        rows.append(
            [
                label,
                str(r["redraws"]),
                seconds(r["median_s"]),
                seconds(r["max_s"]),
                seconds(r.get("fresh_figure_median_s")),
            ]
        )
    slowest = record["all"]["max_s"]
    verdict = "under" if slowest < record["threshold_s"] else "over"
    h, w = record["image_size"]
    return "\n".join(
        [
            f"Notebook 07's inspector on `{record['model']}`, {record['images']} images of"
            f" {h}x{w}; one control moved per redraw, seconds:",
            "",
            table(["moves", "redraws", "median", "max", "new figure each, median"], rows),
            "",
            f"Target: every redraw under {record['threshold_s']} s: the slowest is"
            f" {slowest:.3f} s, {verdict}. The model runs once, before ({record['compute_s']:.1f}"
            f" s); the first drawing took {record['first_draw_s']:.2f} s.",
        ]
    )


# title, JSON names (a "{device}" part for the scripts that run on CUDA and on a CPU), renderer
SECTIONS = [
    ("Graph modules and heads", "modules_{device}", modules),
    ("Training step", "train_step_{device}", train_step),
    ("Training step, torch.compile", "train_step_compile_cuda", train_step_compile),
    ("Evaluation", "evaluation_{device}", evaluation),
    (
        "The authors' network beside ours: training",
        "authors_train_step_{device}",
        authors_train_step,
    ),
    (
        "The authors' network beside ours: evaluation",
        "authors_evaluation_{device}",
        authors_evaluation,
    ),
    ("End to end: dgcn train", "end_to_end_cuda", end_to_end),
    ("Input pipeline", "data_loading", data_loading),
    ("Cost of context", "context_cost_cpu", context_cost),
    ("Inspector redraw", "inspector_redraw_cpu", inspector_redraw),
    ("GPU session", "session_cuda", session),
    ("GPU session, environment", "environment_cuda", environment),
]


def report(results: Path) -> str:
    parts = []
    for title, pattern, render in SECTIONS:
        devices = ("cuda", "cpu") if "{device}" in pattern else ("",)
        for device in devices:
            path = results / (pattern.format(device=device) + ".json")
            label = f"{title}, {device.upper()}" if device else title
            if not path.exists():
                parts.append(f"#### {label}\n\nNot measured (no `{path.name}`).")
                continue
            record = json.loads(path.read_text())
            partial = (
                "\n\n**Partial**: the run stopped before its end (a time limit); what it had "
                "measured is below."
                if record.get("complete") is False
                else ""
            )
            origin = where(record) if "machine" in record else f"`{path.name}`"
            parts.append(f"#### {label}\n\n{origin}{partial}\n\n{render(record)}")
    return "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, help="write the report here (atomically)")
    args = parser.parse_args()
    text = report(args.results)
    if args.out:
        write_text_atomic(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
