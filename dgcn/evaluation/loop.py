"""Evaluation: a predictor over a loader into a :class:`ConfusionMatrix`, the ``labelIds``
export for the official Cityscapes script, and the whole ``dgcn evaluate`` run.

:func:`evaluate` runs :func:`dgcn.evaluation.prediction.predict` over every batch and can write
the predictions as Cityscapes ``labelIds`` PNGs; :func:`evaluate_run` is a model's evaluation on
a split of its config, one process or many (``torchrun``), with the results written as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from dgcn import distributed
from dgcn.config import Config, EvalConfig
from dgcn.datasets.build import build_dataset, image_paths, prepare_data
from dgcn.datasets.labels import IGNORE_INDEX, NUM_CLASSES, train_id_to_id_lut
from dgcn.errors import ConfigError
from dgcn.evaluation.metrics import ConfusionMatrix, format_table
from dgcn.evaluation.outputs import (
    check_export_dir,
    evaluation_identity,
    mark_export_dir,
    results_path,
)
from dgcn.evaluation.prediction import (
    autocast_dtype,
    check_mode,
    eval_options,
    precision_name,
    predict,
)
from dgcn.fileio import atomic_path, write_text_atomic
from dgcn.models.common import resize
from dgcn.progress import progress_bar

_TRAIN_ID_TO_ID = train_id_to_id_lut()


def save_label_png(train_ids: np.ndarray | torch.Tensor, path: str | os.PathLike) -> None:
    """Write train ids as a Cityscapes ``labelIds`` PNG (8-bit grey), atomically.

    Train ids map to label ids (road 0 -> 7, ..., bicycle 18 -> 33); 255 and any value that is
    not a train id map to 0 (unlabeled). Missing folders are created.

    Args:
        train_ids: a prediction of train ids.
        path: the PNG to write.

    Shape:
        train_ids: [H, W]
    """
    if isinstance(train_ids, torch.Tensor):
        train_ids = train_ids.detach().cpu().numpy()
    train_ids = np.asarray(train_ids)
    if train_ids.ndim != 2:
        raise ValueError(f"train_ids must be [H, W], got shape {train_ids.shape}")
    from PIL import Image

    in_range = (train_ids >= 0) & (train_ids < 256)
    label_ids = _TRAIN_ID_TO_ID[np.where(in_range, train_ids, IGNORE_INDEX).astype(np.uint8)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(label_ids).save(tmp, format="PNG")


def export_path(image_path: str | os.PathLike, export_dir: str | os.PathLike) -> Path:
    """Where :func:`evaluate` writes the prediction of one image.

    ``leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png`` becomes
    ``<export_dir>/frankfurt/frankfurt_000000_000294_leftImg8bit.png``: the city's folder and
    the image's stem, which the official script finds by ``<city>_<seq>_<frame>*.png``.
    """
    image_path = Path(image_path)
    return Path(export_dir) / image_path.parent.name / f"{image_path.stem}.png"


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _channels_last(model: nn.Module) -> bool:
    """Whether the model's convolution weights are in channels_last memory format."""
    weights = [p for p in model.parameters() if p.dim() == 4 and not p.is_contiguous()]
    return bool(weights) and all(
        p.is_contiguous(memory_format=torch.channels_last) for p in weights
    )


@contextlib.contextmanager
def cuda_fast_path(model: nn.Module, device: torch.device) -> Iterator[None]:
    """On CUDA, the model in channels_last memory format while the block runs (restored to
    contiguous afterwards when it was so); nothing on a CPU. The weights stay the same
    Parameter objects, so an optimizer holding them is unaffected."""
    convert = device.type == "cuda" and not _channels_last(model)
    if convert:
        model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        if convert:
            model.to(memory_format=torch.contiguous_format)


def cuda_settings(device: torch.device) -> None:
    """cuDNN autotuning (every window of a test has one size) and TF32 for what runs in fp32,
    as training sets them; nothing on a CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def _image_paths(loader: Iterable, image_paths: Sequence | None) -> list[Path]:
    if image_paths is not None:
        return [Path(p) for p in image_paths]
    dataset = getattr(loader, "dataset", None)
    sampler = getattr(loader, "sampler", None)
    if hasattr(dataset, "image_path") and isinstance(sampler, torch.utils.data.SequentialSampler):
        return [Path(dataset.image_path(i)) for i in range(len(dataset))]
    raise ValueError(
        "export_dir needs image_paths (the image files in the loader's order), or a "
        "non-shuffled DataLoader over a dataset with an image_path(index) method"
    )


def evaluate(
    model: nn.Module,
    loader: Iterable,
    config: EvalConfig | None = None,
    *,
    num_classes: int = NUM_CLASSES,
    device: torch.device | str | None = None,
    progress: bool = True,
    export_dir: str | os.PathLike | None = None,
    image_paths: Sequence[str | os.PathLike] | None = None,
    ignore_index: int = IGNORE_INDEX,
    stop: Callable[[], bool] | None = None,
    **options: Any,
) -> ConfusionMatrix:
    """Predict every batch of ``loader`` and count the pixels in a confusion matrix.

    The model is put in eval mode for the run and restored to its mode afterwards. On CUDA it
    runs in channels_last memory format (see :func:`cuda_fast_path`) and under the autocast of
    ``config.precision`` (bf16 on compute capability >= 8, fp16 below, by default); the
    images go to the device in channels_last too. Under ``torch.distributed`` each process
    evaluates its own share and the matrix is summed over all processes at the end; only the
    main process shows a progress bar. Probabilities are resized to the masks' size when they
    differ.

    Args:
        model: a segmentation model returning ``{"out": logits}``.
        loader: yields ``(images, masks)`` batches.
        config: the test mode, as :func:`~dgcn.evaluation.prediction.predict`; None: the defaults
            of :class:`dgcn.config.EvalConfig`.
        num_classes: K.
        device: where to run; None uses the model's device.
        progress: show a tqdm bar.
        export_dir: also write every prediction as a ``labelIds`` PNG under
            ``<export_dir>/<city>/`` (see :func:`export_path`).
        image_paths: the image file of every sample in the loader's order, for the export;
            None reads them from ``loader.dataset.image_path(i)`` when the loader is not
            shuffled.
        ignore_index: the mask value of pixels that are not evaluated.
        stop: asked before each batch; when it answers True the evaluation ends there and the
            counts so far are returned (a trainer stopped by a signal discards them).
        **options: fields of :class:`~dgcn.config.EvalConfig` that replace the config's
            (``mode``, ``tile``, ``overlap``, ``scales``, ``scale_tile``, ``flip``, ``average``,
            ``precision``).

    Shape:
        batches: images [B, 3, H, W], masks [B, H, W] (int64, ``ignore_index`` = ignore)

    Returns:
        The (all-reduced) :class:`ConfusionMatrix`.

    Raises:
        ConfigError: a precision the device cannot run (fp16 on a CPU), before any batch.
    """
    cfg = eval_options(config, **options)
    check_mode(cfg.mode)
    device = torch.device(device) if device is not None else _model_device(model)
    autocast_dtype(cfg.precision, device)  # a precision the device cannot run fails first
    matrix = ConfusionMatrix(num_classes, ignore_index, device=device)
    paths = None if export_dir is None else _image_paths(loader, image_paths)
    done = 0
    was_training = model.training
    model.eval()
    fast = device.type == "cuda"
    try:
        show = progress and distributed.is_main_process()
        bar = progress_bar(loader, desc="evaluate", unit="batch", disable=not show)
        with cuda_fast_path(model, device):
            for images, masks in bar:
                if stop is not None and stop():
                    break
                images = images.to(device, non_blocking=True)
                if fast:
                    images = images.contiguous(memory_format=torch.channels_last)
                masks = masks.to(device, non_blocking=True)
                probs = predict(model, images, cfg)
                with torch.inference_mode():
                    probs = resize(probs, masks.shape[-2:])
                    preds = probs.argmax(dim=1)
                matrix.update(preds, masks)
                if paths is not None:
                    if done + len(preds) > len(paths):
                        raise ValueError(
                            f"image_paths has {len(paths)} entries but the loader yields "
                            "more images"
                        )
                    for pred, image_path in zip(
                        preds, paths[done : done + len(preds)], strict=True
                    ):
                        save_label_png(pred, export_path(image_path, export_dir))
                done += len(preds)
                if show:
                    bar.set_postfix(miou=f"{matrix.miou():.3f}", refresh=False)
    finally:
        model.train(was_training)
    return matrix.all_reduce()


#: datasets whose background is a scored class: the K/(K+1) rescaling has no meaning there
SCORED_BACKGROUND = ("pascal-context-60",)


def scaled_classes(cfg: Config) -> int | None:
    """The class count of the scaled mIoU that ``cfg.eval.report_scaled`` asks for: K + 1, K
    being ``cfg.num_classes`` (60 for PASCAL Context's 59); None when not asked.

    Raises:
        ConfigError: asked for a dataset whose background is already a scored class.
    """
    if not cfg.eval.report_scaled:
        return None
    if cfg.data.dataset in SCORED_BACKGROUND:
        raise ConfigError(
            f"eval.report_scaled rescales an mIoU scored without the background, but "
            f"{cfg.data.dataset} scores its background as a class: its mIoU is already the "
            "true figure; drop eval.report_scaled (or evaluate the pascal-context setting)"
        )
    return cfg.num_classes + 1


def _write_results(
    cfg: Config,
    run: dict[str, Any],
    summary: dict[str, Any],
    matrix: ConfusionMatrix,
    output: Path,
    export_dir: str | os.PathLike | None,
) -> dict[str, Any]:
    """(Main process) print the table, then write the results JSON; returns the record.

    ``run``: what was evaluated and how (checkpoint, split, images, precision, processes,
    seconds, and its ``evaluation``: :func:`~dgcn.evaluation.outputs.evaluation_identity`);
    the record adds the test mode of ``cfg.eval``, the scores and the matrix."""
    settings = ("mode", "tile", "overlap", "scales", "scale_tile", "flip", "average")
    result = {
        "checkpoint": run["checkpoint"],
        "dataset": cfg.data.dataset,
        "split": run["split"],
        "images": run["images"],
        **{name: getattr(cfg.eval, name) for name in settings},
        "precision": run["precision"],
        "processes": run["processes"],
        "seconds": run["seconds"],
        **summary,
        "confusion": matrix.matrix.tolist(),
        "evaluation": run["evaluation"],
    }
    print(format_table(summary))  # first: a failed write below loses no result
    print(f"{run['images']} images in {run['seconds']:.1f} s ({run['precision']})")
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output, json.dumps(result, indent=2) + "\n")
    print(f"results: {output}")
    if export_dir:
        print(f"labelId PNGs for the Cityscapes evaluation script: {export_dir}")
    return result


def evaluate_run(
    model: nn.Module,
    cfg: Config,
    checkpoint: str | os.PathLike,
    *,
    split: str | None = None,
    device: str = "auto",
    workers: int = 2,
    progress: bool = True,
    export_dir: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """``dgcn evaluate``: a model on a split of its config, one process or many (``torchrun``).

    Each process evaluates its share of the split; the main process prints the scores, writes
    them with the confusion matrix and the settings as JSON, and returns that record (the other
    processes return None). The table is printed before the file is written, so a failed write
    loses no result. On CUDA: the fast path of :func:`evaluate` (channels_last, the autocast of
    ``cfg.eval.precision``) with cuDNN autotuning and TF32 (:func:`cuda_settings`); the
    results record the precision that ran.

    With ``cfg.eval.report_scaled`` the results also hold the mIoU over the K evaluated classes
    times K/(K+1) (``miou_scaled``, with its label under ``scaled``; see
    :func:`~dgcn.evaluation.metrics.scaled_miou`), and the table prints both figures, each
    labelled: for PASCAL Context the 59-class mIoU and its "EncNet-style 60".

    Args:
        model: the model, e.g. from :func:`dgcn.checkpoint.load_for_inference` (moved to this
            process's device here).
        cfg: its config: ``data`` names the dataset, ``eval`` the test mode.
        checkpoint: the model's file, recorded in the results and where they go by default
            (see :func:`~dgcn.evaluation.outputs.default_eval_output`).
        split: the split (default ``cfg.data.val_split``).
        device: ``auto``, ``cuda`` or ``cpu``.
        workers: DataLoader workers.
        progress: show a progress bar.
        export_dir: also write ``labelIds`` PNGs here (see :func:`evaluate`): a folder
            outside the dataset's root, new or empty or holding the export of this same
            evaluation (:func:`~dgcn.evaluation.outputs.check_export_dir`).
        output: the results JSON: a ``.json`` file that is new or holds the results of this
            same evaluation (:func:`~dgcn.evaluation.outputs.results_path`); default
            :func:`~dgcn.evaluation.outputs.default_eval_output`.
        class_names: the K class names of the table and the JSON; None: the dataset's
            ``class_names`` attribute when it has one, else
            :meth:`~dgcn.evaluation.metrics.ConfusionMatrix.summary`'s default.

    Raises:
        ConfigError: a precision the device cannot run (fp16 on a CPU), or
            ``eval.report_scaled`` for a benchmark that scores its background
            (``pascal-context-60``), or an export for a dataset other than Cityscapes/MiniCity,
            or an output or export that would replace a file this evaluation did not write
            (a checkpoint, the dataset, another evaluation's results), before any data is
            read.
        DatasetError, OSError.
    """
    report_scaled = scaled_classes(cfg)  # fails first, with the precision below
    if export_dir and cfg.data.dataset not in ("cityscapes", "minicity"):
        raise ConfigError(
            f"--export writes Cityscapes labelIds PNGs; {cfg.data.dataset} has no such format "
            "yet: evaluate without --export"
        )
    info = distributed.setup(device)
    precision = precision_name(autocast_dtype(cfg.eval.precision, info.device))  # fails first
    split = split or cfg.data.val_split
    identity = evaluation_identity(cfg, checkpoint, split, precision)
    output = results_path(output, checkpoint, identity)  # on every rank: all stop together
    if export_dir:
        export_dir = check_export_dir(export_dir, cfg.data.root, identity)
    if info.is_main:
        prepare_data(cfg.data)  # MiniCity: generated when absent
        if export_dir:
            mark_export_dir(export_dir, identity)
    distributed.barrier()
    model.to(info.device)
    cuda_settings(info.device)
    dataset = build_dataset(cfg.data, split, train=False)
    subset = distributed.shard(dataset, info)
    paths = image_paths(dataset)
    loader = DataLoader(subset, batch_size=1, num_workers=workers)
    start = time.perf_counter()
    matrix = evaluate(
        model,
        loader,
        cfg.eval,
        num_classes=cfg.num_classes,
        device=info.device,
        progress=progress,
        export_dir=export_dir,
        image_paths=[paths[i] for i in subset.indices],
    )
    seconds = time.perf_counter() - start
    result = None
    if info.is_main:
        names = class_names if class_names is not None else getattr(dataset, "class_names", None)
        summary = matrix.summary(names, report_scaled=report_scaled)
        run = {"checkpoint": str(checkpoint), "split": split, "images": len(dataset)}
        run |= {"precision": precision, "processes": info.world_size, "seconds": seconds}
        run["evaluation"] = identity
        result = _write_results(cfg, run, summary, matrix, output, export_dir)
    distributed.barrier()
    distributed.cleanup()
    return result


__all__ = [
    "cuda_fast_path",
    "cuda_settings",
    "evaluate",
    "evaluate_run",
    "export_path",
    "save_label_png",
    "scaled_classes",
]
