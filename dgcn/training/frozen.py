"""Head-only training on a frozen, pretrained backbone: the engine of the CPU ablation.

The paper's ablation changes the head and keeps the backbone. Here that is literal: one
backbone, trained once and committed, is frozen; its stride-8 features of every training image
(and of its mirror image) and of every validation image are computed once and kept in memory;
then each row's head trains on those features for hundreds of iterations in about a minute on
a CPU. The result is a whole :class:`~dgcn.models.DGCNet` checkpoint (frozen backbone + trained
head) that ``dgcn evaluate`` and ``dgcn predict`` load like any other run.

Evaluating on the cached features is the whole-image evaluation of that network: the head's
logits resized to the image (as ``DGCNet.forward`` does) and the argmax, on features computed
by the same backbone in eval mode (``tests/test_frozen.py`` checks the two agree). The last
evaluation also scores whole objects: the share of truck, bus and train objects whose majority
prediction is their class (:class:`~dgcn.evaluation.objects.ObjectScore`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from dgcn import distributed
from dgcn.checkpoint import load_checkpoint, require_entries, save_checkpoint
from dgcn.config import REPO_DIR, Config, model_overrides, save_config
from dgcn.datasets.build import build_dataset, prepare_data
from dgcn.datasets.labels import NUM_CLASSES
from dgcn.errors import CheckpointError, ConfigError, TrainingError
from dgcn.evaluation.metrics import ConfusionMatrix
from dgcn.evaluation.objects import ObjectScore
from dgcn.fileio import file_sha256, write_text_atomic
from dgcn.models import build_model, model_spec
from dgcn.models.common import resize
from dgcn.models.weights import check_finite
from dgcn.progress import progress_bar
from dgcn.training.interrupt import StopRequest
from dgcn.training.loop import finite_model
from dgcn.training.losses import SegmentationLoss
from dgcn.training.rundir import LAST, METRICS, MetricsLog, NewRun, plot_curves, prepare_run_dir
from dgcn.training.schedule import sgd_with_poly

BATCH = 16  # images per forward pass when caching features and evaluating


@dataclass
class FeatureSet:
    """Backbone features and their label maps.

    Attributes:
        features: [N, C, h, w] float32, the backbone's ``out`` (layer4) feature.
        masks: [N, H, W] uint8 train ids (255 = ignore) at the image size.
    """

    features: torch.Tensor
    masks: torch.Tensor

    def __len__(self) -> int:
        return len(self.features)


@dataclass
class FeatureCache:
    """The cached features of a run's training and validation splits, and where they came from.

    Attributes:
        key: what the features depend on (backbone file, data settings); a cache is reused
            only for a config with the same key.
        backbone: the frozen backbone's state dict.
        train, val: the two splits (train includes the mirrored copies when ``frozen.flip``).
        seconds: time spent computing them.
    """

    key: tuple
    backbone: dict[str, torch.Tensor]
    train: FeatureSet
    val: FeatureSet
    seconds: float


def resolve_path(path: str | Path) -> Path:
    """A path as given when it exists, else relative to the repository (committed files)."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    return REPO_DIR / path


def cache_key(cfg: Config) -> tuple:
    """Everything the cached features depend on."""
    d = cfg.data
    spec = {k: v for k, v in cfg.model.overrides.items() if k in ("dilated", "output_stride")}
    return (
        str(resolve_path(cfg.frozen.backbone)),
        cfg.frozen.flip,
        cfg.model.name,
        tuple(sorted(spec.items())),
        d.dataset,
        d.root,
        d.train_split,
        d.val_split,
        d.val_limit,
        d.minicity_train,
        d.minicity_val,
        tuple(d.minicity_size),
        d.minicity_seed,
        d.minicity_version,
    )


def load_frozen_backbone(cfg: Config) -> torch.nn.Module:
    """The config's backbone with the ``backbone.*`` weights of ``cfg.frozen.backbone``.

    Raises:
        CheckpointError: missing file, a SHA-256 other than ``cfg.frozen.sha256``, or weights
            of another backbone than the config's model.
    """
    path = resolve_path(cfg.frozen.backbone)
    if not path.is_file():
        raise CheckpointError(
            f"frozen backbone {cfg.frozen.backbone} not found (looked in the working directory "
            f"and in {REPO_DIR}); it is committed as experiments/checkpoints/"
            "minicity-backbone.pt: restore it with `git checkout -- experiments/checkpoints`"
        )
    if cfg.frozen.sha256:
        found = file_sha256(path)
        if found != cfg.frozen.sha256:
            raise CheckpointError(
                f"frozen backbone {path} has SHA-256 {found[:12]}..., the config expects "
                f"{cfg.frozen.sha256[:12]}...: the file was changed; restore it, or set "
                "frozen.sha256 to the new file's hash if you retrained it on purpose"
            )
    state = load_checkpoint(path)
    require_entries(state, path, "model")
    weights = {
        k[len("backbone.") :]: v for k, v in state["model"].items() if k.startswith("backbone.")
    }
    check_finite(weights, path)
    model = build_model(cfg.model.name, cfg.num_classes, **model_overrides(cfg, False))
    try:
        model.backbone.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0][:200]
        raise CheckpointError(
            f"{path} does not hold a backbone of model {cfg.model.name} with overrides "
            f"{cfg.model.overrides} ({first})"
        ) from err
    return model.backbone


@torch.inference_mode()
def extract_features(
    backbone: torch.nn.Module,
    dataset,
    flip: bool = False,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "features",
) -> FeatureSet:
    """The backbone's ``out`` features of every item of ``dataset`` (and of its mirror image).

    Args:
        backbone: a backbone in eval mode, returning ``{"out": ...}``.
        dataset: yields ``(image [3, H, W] normalised, mask [H, W])`` of one size.
        flip: append the features of the horizontally flipped images with flipped masks.

    Shape:
        -> features [N (x2 with flip), C, h, w], masks [N (x2), H, W] uint8
    """
    features, masks, mirrored, mirrored_masks = [], [], [], []
    loader = DataLoader(dataset, batch_size=BATCH, num_workers=0)
    for images, target in progress_bar(loader, desc=desc, unit="batch", disable=not progress):
        images = images.to(device)
        features.append(backbone(images)["out"].float().cpu())
        masks.append(target.to(torch.uint8))
        if flip:
            mirrored.append(backbone(images.flip(-1))["out"].float().cpu())
            mirrored_masks.append(target.flip(-1).to(torch.uint8))
    return FeatureSet(torch.cat(features + mirrored), torch.cat(masks + mirrored_masks))


def cache_features(
    cfg: Config, device: torch.device | str = "cpu", progress: bool = True
) -> FeatureCache:
    """Load the frozen backbone and compute the features of the training and validation split.

    The MiniCity of ``cfg.data`` is generated first when absent.
    """
    start = time.perf_counter()
    prepare_data(cfg.data)
    backbone = load_frozen_backbone(cfg).to(device).eval()
    train_set = build_dataset(cfg.data, cfg.data.train_split, train=False)
    val_set = build_dataset(cfg.data, cfg.data.val_split, train=False)
    if len(val_set) == 0:
        raise ConfigError(f"the validation split {cfg.data.val_split!r} is empty")
    train = extract_features(
        backbone, train_set, cfg.frozen.flip, device, progress, f"features {cfg.data.train_split}"
    )
    val = extract_features(
        backbone, val_set, False, device, progress, f"features {cfg.data.val_split}"
    )
    weights = {k: v.cpu() for k, v in backbone.state_dict().items()}
    return FeatureCache(cache_key(cfg), weights, train, val, time.perf_counter() - start)


@torch.no_grad()
def evaluate_head(
    head: torch.nn.Module,
    data: FeatureSet,
    num_classes: int,
    device: torch.device | str = "cpu",
    objects: ObjectScore | None = None,
) -> ConfusionMatrix:
    """Confusion matrix of ``head`` (in eval mode for the call) on cached features.

    Args:
        objects: also counted on the same predictions when given (updated in place).
    """
    was_training = head.training
    head.eval()
    matrix = ConfusionMatrix(num_classes, device=device)
    for i in range(0, len(data), BATCH):
        features = data.features[i : i + BATCH].to(device)
        target = data.masks[i : i + BATCH].to(device).long()
        preds = resize(head(features).float(), target.shape[-2:]).argmax(1)
        matrix.update(preds, target)
        if objects is not None:
            objects.update(preds, target)
    head.train(was_training)
    return matrix


def subsample(masks: torch.Tensor, stride: int) -> torch.Tensor:
    """The label at the centre of every ``stride x stride`` block (``stride`` 1: unchanged).

    Shape:
        masks: [B, H, W] -> [B, ceil((H - stride // 2) / stride), ...]
    """
    if stride < 1:
        raise ConfigError(f"frozen.loss_stride must be >= 1, got {stride}")
    offset = stride // 2
    return masks[:, offset::stride, offset::stride]


def _batches(n: int, batch: int, generator: torch.Generator):
    """Endless batches of indices: a fresh permutation per pass, its tail dropped."""
    while True:
        order = torch.randperm(n, generator=generator)
        for i in range(0, n - batch + 1, batch):
            yield order[i : i + batch]


def fit_head(
    cfg: Config,
    run_dir: str | Path,
    cache: FeatureCache | None = None,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "auto",
) -> dict[str, Any]:
    """Train ``cfg``'s head on the frozen backbone ``cfg.frozen.backbone``; evaluate; save.

    The whole network (frozen backbone + trained head) is saved as ``run_dir/last.pt`` in the
    format of :func:`~dgcn.training.loop.fit`, with ``metrics.jsonl``, ``curves.png`` and
    ``summary.json``. SGD with momentum, weight decay and the poly schedule, the loss on the
    logits resized to the image size, as in :func:`~dgcn.training.loop.fit` (or to that size
    divided by ``frozen.loss_stride``, against the subsampled labels).

    Args:
        cfg: the run's config (``frozen.backbone`` set, ``model.overrides.aux`` false).
        run_dir: output folder (must be new or empty unless ``overwrite``).
        cache: features from :func:`cache_features` for the same :func:`cache_key` (computed
            here when None).

    Returns:
        the validation summary (``miou``, ``pixel_accuracy``, ``per_class``, ...). With the 19
        Cityscapes classes also the big-vehicle object score of
        :class:`~dgcn.evaluation.objects.ObjectScore`: ``object_accuracy`` (the share of truck,
        bus and train objects whose majority prediction is their class), ``object_per_class``
        and ``object_counts`` (``{name: [right, total]}``); None where no object was counted.

    Raises:
        ConfigError, CheckpointError, DatasetError, RunDirError, TrainingError.
    """
    run_dir = Path(run_dir)
    info = distributed.setup(device)
    if info.distributed:
        raise ConfigError("frozen-backbone training runs in one process; start it without torchrun")
    if cfg.model.overrides.get("aux", True):
        raise ConfigError(
            "frozen-backbone training trains the main head only; set model.overrides.aux=false"
        )
    model_spec(cfg.model.name, **model_overrides(cfg))  # model options fail before any work
    prepare_run_dir(run_dir, resume=False, overwrite=overwrite)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)  # the head's initialisation, before anything is computed
    model = build_model(cfg.model.name, cfg.num_classes, **model_overrides(cfg, False))
    if cache is None:
        cache = cache_features(cfg, info.device, progress)
    elif cache.key != cache_key(cfg):
        raise ConfigError("the feature cache was computed for another backbone or dataset")
    model.backbone.load_state_dict(cache.backbone)
    model.backbone.requires_grad_(False).eval()
    head = model.head.to(info.device).train()
    folder = NewRun(run_dir)  # the run it replaces is moved aside until this one is saved
    with StopRequest(undeferred=UNDEFERRED):
        try:
            folder.open()
            summary = _train_head(cfg, run_dir, model, head, cache, info.device, progress)
            folder.keep()
        except BaseException:
            folder.undo()  # nothing half-written: the same command runs again
            raise
    return summary


#: what a signal during a head-only run says (it keeps no checkpoint before its end)
UNDEFERRED = (
    "during a head-only run, which keeps no checkpoint before its end (a few minutes at most): "
    "nothing was kept; run the same command again"
)


def _train_head(
    cfg: Config,
    run_dir: Path,
    model: torch.nn.Module,
    head: torch.nn.Module,
    cache: FeatureCache,
    device: torch.device,
    progress: bool,
) -> dict[str, Any]:
    """:func:`fit_head` once its folder is open: train, evaluate, save; returns the summary."""
    optimizer, scheduler = sgd_with_poly(head.parameters(), cfg.train)
    # the mean over the batch's pixels: the reduction the committed MiniCity results were made
    # with (the end-to-end loop averages per image, as the authors' one image per process)
    criterion = SegmentationLoss(
        cfg.train.loss, 0.0, cfg.train.ohem_thresh, cfg.train.ohem_min_kept, reduction="pixel"
    )
    batches = _batches(
        len(cache.train),
        min(cfg.train.batch_size, len(cache.train)),
        torch.Generator().manual_seed(cfg.train.seed),
    )
    save_config(cfg, run_dir / "config.yaml")
    log = MetricsLog(run_dir / METRICS, None)
    start = time.perf_counter()
    window: list[float] = []
    for done in progress_bar(
        range(1, cfg.train.iterations + 1),
        desc=cfg.name,
        unit="it",
        disable=not progress,
        dynamic_ncols=True,
    ):
        index = next(batches)
        features = cache.train.features[index].to(device)
        masks = subsample(cache.train.masks[index], cfg.frozen.loss_stride)
        masks = masks.to(device).long()
        logits = resize(head(features), masks.shape[-2:])
        loss, _ = criterion({"out": logits}, masks)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingError(
                f"non-finite loss at iteration {done} of {cfg.name}; nothing was saved. "
                "Lower train.lr"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        window.append(value)
        if done % cfg.train.log_every == 0 or done == cfg.train.iterations:
            log.append(
                {
                    "iteration": done,
                    "loss": sum(window) / len(window),
                    "lr": optimizer.param_groups[0]["lr"],
                }
            )
            window = []
        if cfg.train.eval_every and done % cfg.train.eval_every == 0:
            summary = evaluate_head(head, cache.val, cfg.num_classes, device).summary()
            log.append({"iteration": done, "miou": summary["miou"]})
    if not finite_model(head):
        raise TrainingError(
            f"{cfg.name} diverged: non-finite weights or BatchNorm statistics after training; "
            "nothing was saved. Lower train.lr"
        )
    # the object score needs the Cityscapes train ids (truck, bus, train)
    objects = ObjectScore() if cfg.num_classes == NUM_CLASSES else None
    matrix = evaluate_head(head, cache.val, cfg.num_classes, device, objects)
    summary = matrix.summary()
    if objects is not None:
        found = objects.summary()
        summary["object_accuracy"] = found["object_accuracy"]
        summary["object_per_class"] = found["per_class"]
        summary["object_counts"] = found["counts"]
    if not cfg.train.eval_every or cfg.train.iterations % cfg.train.eval_every:
        log.append({"iteration": cfg.train.iterations, "miou": summary["miou"]})
    seconds = time.perf_counter() - start
    model.head = head.cpu()
    save_checkpoint(
        run_dir / LAST,
        {
            "model_name": cfg.model.name,
            "config": cfg.to_dict(),
            "iteration": cfg.train.iterations,
            "model": model.state_dict(),
        },
    )
    plot_curves(log.records, run_dir / "curves.png")
    result = {
        "name": cfg.name,
        "iterations": cfg.train.iterations,
        "frozen_backbone": cfg.frozen.backbone,
        "training_samples": len(cache.train),
        "seconds": seconds,
        "feature_seconds": cache.seconds,
        "eval": summary,
        "confusion": matrix.matrix.tolist(),
    }
    write_text_atomic(run_dir / "summary.json", json.dumps(result, indent=2) + "\n")
    return summary
