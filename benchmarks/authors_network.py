"""The authors' whole network, criterion and sliding window beside ours, imported at run time.

Their repository (https://github.com/lxtGH/GALD-DGCNet) has no licence file, so nothing of it
is copied here: the scripts import it from a folder named at run time, ``--authors DIR`` for
``benchmarks/train_step.py`` and ``benchmarks/evaluation.py``, the environment variable
:data:`ENV` for the tests and ``benchmarks/gpu_session.sh``. Get the folder with
``git clone https://github.com/lxtGH/GALD-DGCNet``.

What is imported from it, unchanged:

* ``libs/models/DualGCNNet.py``: their ``ResNet`` (deep stem, ``DualGCNHead``, ``dsn``) with
  the ``Bottleneck`` of ``libs/models/GALDNet.py``; ``DualSeg_res101`` is
  ``ResNet(Bottleneck, [3, 4, 23, 3])``, and fewer blocks per stage give the same network,
  smaller (the CPU tests);
* ``libs/core/loss.py``: ``CriterionOhemDSN`` (OHEM cross-entropy on the main output + 0.4 x
  cross-entropy on ``dsn``);
* ``eval.py``: ``predict_sliding`` (832 tiles, 1/3 overlap, the logits accumulated in float64
  numpy arrays on the host) and ``get_confusion_matrix``. eval.py imports their Cityscapes
  dataset (OpenCV) and ``scipy.ndimage`` at module level; the two functions use neither, so
  each one that is not installed is a placeholder module while eval.py is imported
  (:attr:`AuthorsCode.placeholders` names them).

Our network gets their weights through the converter of the package
(:func:`dgcn.models.official.rename_official_keys`, shapes checked by
:func:`dgcn.models.weights.check_official_shapes`) and :func:`first_step_losses` checks that
the two networks with their criteria give the same loss on the same batch.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from common import tf32
from torch import nn

from dgcn.models import build_model
from dgcn.models.official import rename_official_keys
from dgcn.models.weights import check_official_shapes
from dgcn.training.losses import SegmentationLoss

#: the environment variable naming the folder of the authors' repository
ENV = "DGCN_AUTHORS_DIR"
#: blocks per stage of DualSeg_res101 (and of our ``dgcnet_official_r101``)
FULL_DEPTHS = (3, 4, 23, 3)
#: the files imported from the folder
FILES = ("libs/models/DualGCNNet.py", "libs/core/loss.py", "eval.py")


class AuthorsError(Exception):
    """The folder is not a usable copy of the authors' repository (one line: what to do)."""


@dataclass
class AuthorsCode:
    """The authors' modules, imported from ``folder``.

    Attributes:
        folder: the repository's root.
        models: ``libs.models.DualGCNNet``.
        loss: ``libs.core.loss``.
        eval: ``eval.py`` as a module (None unless asked for).
        placeholders: the modules eval.py imports that were placeholders (not installed).
    """

    folder: Path
    models: types.ModuleType
    loss: types.ModuleType
    eval: types.ModuleType | None = None
    placeholders: list[str] = field(default_factory=list)


def authors_folder(value: str | os.PathLike | None = None) -> Path | None:
    """The authors' folder: ``value``, else the environment variable :data:`ENV`, else None."""
    value = value or os.environ.get(ENV)
    return Path(value).resolve() if value else None


def load_authors(folder: str | os.PathLike, with_eval: bool = False) -> AuthorsCode:
    """Import the authors' network and criterion (and eval.py) from their repository's root.

    Their code is the package ``libs``, imported from ``folder`` with ``folder`` first on
    ``sys.path`` during the import only.

    Raises:
        AuthorsError: a file of :data:`FILES` is missing, or another ``libs`` package is
            already imported.
    """
    folder = Path(folder).resolve()
    needed = FILES if with_eval else FILES[:2]
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise AuthorsError(
            f"{folder} has no {missing[0]}: it is not a copy of the authors' repository; "
            "get one with: git clone https://github.com/lxtGH/GALD-DGCNet"
        )
    loaded = sys.modules.get("libs")
    if loaded is not None and not Path(loaded.__file__).resolve().is_relative_to(folder):
        raise AuthorsError(
            f"a package 'libs' from {Path(loaded.__file__).parent} is already imported: "
            "run the authors' code from its own folder in a fresh process"
        )
    sys.path.insert(0, str(folder))
    try:
        models = importlib.import_module("libs.models.DualGCNNet")
        loss = importlib.import_module("libs.core.loss")
        code = AuthorsCode(folder, models, loss)
        if with_eval:
            code.eval, code.placeholders = _import_eval(folder)
    finally:
        sys.path.remove(str(folder))
    return code


def _import_eval(folder: Path) -> tuple[types.ModuleType, list[str]]:
    """eval.py as a module, with placeholders for its module-level imports that are missing
    and that predict_sliding and get_confusion_matrix do not use."""
    stand_ins: dict[str, types.ModuleType] = {}
    if importlib.util.find_spec("cv2") is None:  # their Cityscapes dataset reads with OpenCV
        stand_ins["libs.datasets.cityscapes"] = _placeholder("libs.datasets.cityscapes")
        stand_ins["libs.datasets.cityscapes"].Cityscapes = None
    if importlib.util.find_spec("scipy") is None:  # ndimage.zoom: their multi-scale only
        stand_ins["scipy"] = _placeholder("scipy")
        stand_ins["scipy.ndimage"] = stand_ins["scipy"].ndimage = _placeholder("scipy.ndimage")
    absent = object()
    saved = {name: sys.modules.get(name, absent) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        spec = importlib.util.spec_from_file_location("gald_dgcnet_eval", folder / "eval.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, previous in saved.items():
            if previous is absent:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return module, sorted(stand_ins)


def _placeholder(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__doc__ = "a placeholder for a module that is not installed (never called)"
    return module


def authors_network(code: AuthorsCode, depths: Sequence[int] = FULL_DEPTHS, classes: int = 19):
    """Their ``ResNet(Bottleneck, depths, classes)`` with random weights (``DualSeg_res101``
    at :data:`FULL_DEPTHS`)."""
    return code.models.ResNet(code.models.Bottleneck, list(depths), classes)


def our_network(
    depths: Sequence[int] = FULL_DEPTHS, classes: int = 19, materialize: bool = True
) -> nn.Module:
    """Our ``dgcnet_official_r101`` with ``depths`` blocks per stage (the first blocks of each
    stage: the same dilations as the authors' network of that depth), uninitialised, on the
    CPU (on the meta device with ``materialize=False``, to count FLOPs).

    Raises:
        AuthorsError: ``depths`` is not 4 counts within those of the full network.
    """
    if len(depths) != 4 or not all(1 <= d <= f for d, f in zip(depths, FULL_DEPTHS, strict=True)):
        raise AuthorsError(f"depths must be 4 counts from 1 up to {list(FULL_DEPTHS)}: {depths}")
    with torch.device("meta"):
        model = build_model("dgcnet_official_r101", num_classes=classes)
    for index, blocks in enumerate(depths, start=1):
        name = f"layer{index}"
        setattr(model.backbone, name, getattr(model.backbone, name)[:blocks])
    return model.to_empty(device="cpu") if materialize else model


def converted_copy(theirs: nn.Module, depths: Sequence[int] = FULL_DEPTHS) -> nn.Module:
    """Our network holding the authors' network's weights, through the package's converter
    (renamed, every shape checked, loaded with ``strict=True``), on their device, in their
    mode."""
    classes = theirs.head.bottleneck[3].out_channels
    ours = our_network(depths, classes)
    converted = rename_official_keys(theirs.state_dict())
    check_official_shapes(converted, {k: v.shape for k, v in ours.state_dict().items()})
    ours.load_state_dict(converted, strict=True)
    device = next(theirs.parameters()).device
    return ours.to(device).train(theirs.training)


def authors_criterion(code: AuthorsCode, thresh: float = 0.7, min_kept: int = 100_000):
    """Their ``CriterionOhemDSN`` as their training applies it, one image per process (8 GPUs
    x 1 image): the criterion on each image of the batch, the losses averaged (what DDP's
    gradient average follows). Returns ``(loss, None)`` like :class:`SegmentationLoss`.

    Their criterion prints a line when an image has fewer labelled pixels than ``min_kept``;
    that output is dropped.
    """
    criterion = code.loss.CriterionOhemDSN(ignore_index=255, thresh=thresh, min_kept=min_kept)

    def loss(outputs: list[torch.Tensor], target: torch.Tensor):
        with contextlib.redirect_stdout(io.StringIO()):
            parts = [
                criterion([o[i : i + 1] for o in outputs], target[i : i + 1])
                for i in range(target.shape[0])
            ]
        return torch.stack(parts).mean(), None

    return loss


def our_criterion(thresh: float = 0.7, min_kept: int = 100_000) -> SegmentationLoss:
    """Ours with the authors' settings: OHEM (``thresh``, ``min_kept``) + 0.4 x aux, per image."""
    return SegmentationLoss("ohem", aux_weight=0.4, ohem_thresh=thresh, ohem_min_kept=min_kept)


def first_step_losses(
    ours: nn.Module,
    theirs: nn.Module,
    our_loss: Callable,
    their_loss: Callable,
    images: torch.Tensor,
    masks: torch.Tensor,
) -> dict:
    """The loss of one training forward of each network with its own criterion, on the same
    batch, in true fp32 (TF32 off), with the same dropout mask (the one random draw of both
    networks, in their auxiliary heads) and without gradients.

    BatchNorm runs in training mode (batch statistics), as in a training step; both networks'
    running statistics take one update.

    Returns:
        ``{"ours", "authors", "relative_difference"}``
    """
    losses = {}
    with torch.no_grad(), tf32(False):  # true fp32: TF32 off
        for name, model, criterion in (("ours", ours, our_loss), ("authors", theirs, their_loss)):
            model.train()
            torch.manual_seed(1)
            loss, _ = criterion(model(images), masks)
            losses[name] = loss.item()
    losses["relative_difference"] = abs(losses["ours"] - losses["authors"]) / abs(losses["authors"])
    return losses


@contextlib.contextmanager
def host_only_cuda_calls(device: torch.device) -> Iterator[None]:
    """On a CPU, ``Tensor.cuda()`` returns the tensor itself while the block runs, so that
    the authors' ``predict_sliding`` (which moves each tile with ``.cuda()``) runs unchanged on
    the host; nothing changes on CUDA."""
    if device.type == "cuda":
        yield
        return
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original
