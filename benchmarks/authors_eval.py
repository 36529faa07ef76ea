"""The sliding window of the authors' eval.py against ours, on the same network
(``benchmarks/evaluation.py --authors DIR``).

Their side is the call sequence of their ``val()`` for one image, with their own functions
imported from their eval.py (``benchmarks/authors_network.py``): ``image.numpy()``,
``predict_sliding`` (each tile padded in numpy, moved with ``.cuda()``, its logits upsampled
to the tile, brought back with ``.cpu()`` and added into float64 arrays on the host), then
``np.argmax`` and ``get_confusion_matrix``, without gradients, in fp32 (their script has no
autocast), on their ``DualSeg_res101``. Ours is :func:`dgcn.evaluation.evaluate` in sliding
mode (tile, 1/3 overlap, logits averaged, argmax and confusion matrix on the device) on our
network holding the same weights, in fp32 and in ``eval.precision=auto`` (bf16 on CUDA from
Ampere on; the same as fp32 on a CPU, so measured on CUDA only). Both sides run with the
TF32 settings of :func:`dgcn.evaluation.loop.cuda_settings` (recorded). Their palette image
and their data loader are left out on their side as the loader is on ours.

The confusion matrices of one image from both sides are compared as a check that the two
compute the same prediction: in fp32 they may differ by the few pixels whose two best
classes are within rounding.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import time

import authors_network as authors
import numpy as np
import torch
from common import cuda_memory, die, tf32_state, write_result

from dgcn.config import EvalConfig
from dgcn.evaluation import evaluate
from dgcn.evaluation.loop import cuda_settings
from dgcn.precision import autocast_dtype, precision_name


def their_image(code, net, image: torch.Tensor, mask: torch.Tensor, tile: int) -> np.ndarray:
    """One image through their val() loop: their prediction and confusion matrix (float64)."""
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):  # "Need 4 x 2 tiles"
        output = code.eval.predict_sliding(net, image.numpy(), (tile, tile), 19, False)
    prediction = np.asarray(np.argmax(output, axis=2), dtype=np.uint8)
    truth = np.asarray(mask[0].numpy(), dtype=np.int64)
    keep = truth != 255
    return code.eval.get_confusion_matrix(truth[keep], prediction[keep], 19)


def time_theirs(code, net, image, mask, tile, device, count: int) -> tuple[float, np.ndarray]:
    """Seconds per image of their loop over ``count`` images after one warm-up image, and the
    confusion matrix of one image."""
    with authors.host_only_cuda_calls(device):
        matrix = their_image(code, net, image, mask, tile)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(count):
            their_image(code, net, image, mask, tile)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / count, matrix


def time_ours(model, image, mask, config, device, count: int) -> tuple[float, np.ndarray]:
    """Seconds per image of :func:`evaluate` over ``count`` images after one warm-up image,
    and the confusion matrix of one image."""
    one = evaluate(model, [(image, mask)], config, num_classes=19, device=device, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    matrix = evaluate(
        model, [(image, mask)] * count, config, num_classes=19, device=device, progress=False
    )
    matrix.miou()  # reads the matrix back: every kernel has run
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / count, one.matrix.cpu().numpy()


def run(args, device: torch.device, height: int, width: int, tile: int) -> dict:
    """Measure both sides and write ``authors_evaluation_<device>.json`` after each row."""
    try:
        code = authors.load_authors(args.authors, with_eval=True)
        depths = tuple(args.depths or authors.FULL_DEPTHS)
        torch.manual_seed(0)
        theirs = authors.authors_network(code, depths).eval()
        ours = authors.converted_copy(theirs, depths).eval().to(device)
    except authors.AuthorsError as error:
        die(str(error))
    theirs.to(device)
    cuda_settings(device)  # as evaluate_run; their side runs under the same settings
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(1, 3, height, width, generator=generator)
    mask = torch.randint(0, 19, (1, height, width), generator=generator)
    name = f"authors_evaluation_{device.type}"
    payload = {
        "model": "DualSeg_res101" if depths == authors.FULL_DEPTHS else f"ResNet{list(depths)}",
        "depths": list(depths),
        "size": [height, width],
        "tile": tile,
        "images": args.images,
        "authors_folder": code.folder.name,
        "placeholders": code.placeholders,
        "tf32": tf32_state() if device.type == "cuda" else None,
        "rows": [],
    }
    seconds, their_matrix = time_theirs(code, theirs, image, mask, tile, device, args.images)
    rows = payload["rows"]
    rows.append(row("authors", "their eval.py predict_sliding", "fp32", seconds, device))
    write_result(name, payload, complete=False)
    report(rows[-1])
    protocol = EvalConfig(mode="slide", tile=tile, flip=False)
    configs = [("fp32", dataclasses.replace(protocol, precision="fp32"))]
    if device.type == "cuda":
        configs.append(("auto", protocol))
    for label, config in configs:
        seconds, matrix = time_ours(ours, image, mask, config, device, args.images)
        precision = precision_name(autocast_dtype(config.precision, device))
        rows.append(row("ours", f"dgcn evaluate, precision {label}", precision, seconds, device))
        rows[-1]["ours_over_authors"] = seconds / rows[0]["seconds_per_image"]
        if label == "fp32":
            payload["confusion_check"] = {
                "pixels": int(their_matrix.sum()),
                "max_abs_count_difference": float(np.abs(matrix - their_matrix).max()),
                "same_matrix": bool(np.array_equal(matrix, their_matrix)),
            }
        write_result(name, payload, complete=False)
        report(rows[-1])
    check = payload["confusion_check"]
    print(
        f"confusion matrices of one image, ours fp32 vs theirs: largest count difference "
        f"{check['max_abs_count_difference']:.0f} of {check['pixels']} pixels"
    )
    print(f"wrote {write_result(name, payload)}")
    return payload


def row(side: str, predictor: str, precision: str, seconds: float, device) -> dict:
    return {
        "side": side,
        "predictor": predictor,
        "precision": precision,
        "seconds_per_image": seconds,
        "images_per_s": 1 / seconds,
        "seconds_for_500": 500 * seconds,
        **cuda_memory(device),
    }


def report(r: dict) -> None:
    ratio = f"  ours/authors {r['ours_over_authors']:.3f}" if "ours_over_authors" in r else ""
    print(
        f"{r['side']:<8}{r['predictor']:<34}{r['precision']:<6}{r['images_per_s']:>8.2f} img/s"
        f"{r['seconds_for_500']:>9.1f} s for 500{ratio}",
        flush=True,
    )
