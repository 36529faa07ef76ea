"""The confusion matrix and the scores read from it: IoU per class, mIoU, pixel accuracy.

The Cityscapes benchmark scores a method by the intersection over union of each of the 19
classes, ``IoU_k = TP_k / (TP_k + FP_k + FN_k)``, accumulated over every pixel of the split
(not averaged per image), and by their mean (mIoU). All of it is read from one ``[K, K]``
confusion matrix, which is what a distributed evaluation sums across processes.

PASCAL Context is scored over its 59 classes with the background ignored, but some papers print
a "60-class" figure that is that mIoU times 59/60: the background counted as a 60th class whose
IoU is 0 (the EncNet convention, ``docs/reference/pascal_context.md``). :func:`scaled_miou`
computes it, and :meth:`ConfusionMatrix.summary` and :func:`format_table` report it beside the
evaluated mIoU, each labelled, when asked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from dgcn.datasets.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES


def scaled_miou(miou: float | None, evaluated: int = 59, reported: int = 60) -> float | None:
    """An mIoU over ``evaluated`` classes rescaled to a mean over ``reported`` classes.

    The classes that were not evaluated count with IoU 0, so the mean becomes
    ``miou * evaluated / reported``. For PASCAL Context this is the "EncNet-style 60" figure:
    the 59-class mIoU (background ignored) times 59/60, as if every background pixel were
    misclassified. It is not the mIoU of a model trained and scored on 60 classes.

    Args:
        miou: the mIoU over ``evaluated`` classes, a fraction or a percentage (the result is in
            the same unit); None (nothing was counted) gives None.
        evaluated: the number of classes the mIoU averages.
        reported: the number of classes of the printed figure (>= ``evaluated``).

    Returns:
        ``miou * evaluated / reported``, or None.

    Raises:
        ValueError: ``evaluated < 1`` or ``reported < evaluated``.

    Example:
        scaled_miou(52.6)  # 52.6 x 59 / 60 = 51.72..., 51.7 as papers print it
    """
    if evaluated < 1 or reported < evaluated:
        raise ValueError(
            f"need 1 <= evaluated <= reported, got evaluated={evaluated}, reported={reported}"
        )
    if miou is None or math.isnan(miou):
        return None
    return float(miou) * evaluated / reported


def scaled_label(evaluated: int, reported: int) -> str:
    """The label of a :func:`scaled_miou` figure, e.g. ``mIoU x 59/60 (EncNet-style 60)``."""
    return f"mIoU x {evaluated}/{reported} (EncNet-style {reported})"


class ConfusionMatrix:
    """A running ``[K, K]`` pixel count: rows are the ground truth, columns the prediction.

    Each :meth:`update` is one ``torch.bincount`` on the inputs' device; pixels whose target
    is ``ignore_index`` are not counted.

    Args:
        num_classes: K, the number of evaluated classes (19 for Cityscapes).
        ignore_index: the target value of pixels that are not evaluated.
        device: where the counts live at first; they follow the inputs of :meth:`update`.

    Shape:
        matrix: [K, K] int64

    Example:
        cm = ConfusionMatrix(19)
        cm.update(logits.argmax(1), masks)
        cm.all_reduce().miou()
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        ignore_index: int = IGNORE_INDEX,
        device: torch.device | str | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self._matrix = torch.zeros(
            self.num_classes, self.num_classes, dtype=torch.int64, device=device
        )

    # -- accumulation -------------------------------------------------------------------------

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> ConfusionMatrix:
        """Count the pixels of one batch.

        Args:
            preds: predicted class ids in ``[0, K)``, any integer dtype.
            target: ground-truth class ids in ``[0, K)`` or ``ignore_index``.

        Shape:
            preds: [*] and target: [*], the same shape (e.g. [B, H, W]).

        Raises:
            ValueError: the shapes differ, or a value is outside ``[0, K)`` (a target may also
                be ``ignore_index``).
        """
        if preds.shape != target.shape:
            raise ValueError(
                f"preds and target must have the same shape, got {tuple(preds.shape)} "
                f"and {tuple(target.shape)}"
            )
        k = self.num_classes
        if self._matrix.device != preds.device:
            self._matrix = self._matrix.to(preds.device)
        target = target.to(device=preds.device, dtype=torch.int64).reshape(-1)
        preds = preds.to(torch.int64).reshape(-1)
        ignored = target == self.ignore_index
        valid = (target >= 0) & (target < k) & (preds >= 0) & (preds < k)
        # ignored and invalid pixels go to two extra bins: one bincount, no boolean indexing
        index = torch.where(valid, target * k + preds, k * k + 1)
        index = torch.where(ignored, k * k, index)
        counts = torch.bincount(index, minlength=k * k + 2)
        if counts[k * k + 1].item() > 0:
            bad_t = target[~ignored & ((target < 0) | (target >= k))].unique().tolist()
            bad_p = preds[~ignored & ((preds < 0) | (preds >= k))].unique().tolist()
            raise ValueError(
                f"values outside [0, {k}): target {bad_t[:5]}, preds {bad_p[:5]}; pass train "
                f"ids (0..{k - 1}, target {self.ignore_index} = ignore)"
            )
        # out of place: works whether or not this call runs under torch.inference_mode
        self._matrix = self._matrix + counts[: k * k].view(k, k)
        return self

    def all_reduce(self) -> ConfusionMatrix:
        """Sum the matrix over all processes of ``torch.distributed`` (no-op when not running).

        With the NCCL backend the counts must be on this process's GPU, which they are after
        an :meth:`update` with GPU tensors. Returns self.
        """
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            if self._matrix.is_inference() and not torch.is_inference_mode_enabled():
                self._matrix = self._matrix.clone()  # an inference tensor can't be written here
            dist.all_reduce(self._matrix, op=dist.ReduceOp.SUM)
        return self

    def reset(self) -> None:
        """Set every count to zero."""
        self._matrix = torch.zeros_like(self._matrix)

    @property
    def matrix(self) -> torch.Tensor:
        """The counts, ``[K, K]`` int64; ``matrix[t, p]`` pixels of class t predicted as p."""
        return self._matrix

    # -- scores -------------------------------------------------------------------------------

    def _parts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self._matrix.to(device="cpu", dtype=torch.float64)
        return m.diagonal(), m.sum(1), m.sum(0)

    def iou(self) -> torch.Tensor:
        """IoU per class, ``TP / (TP + FP + FN)``; NaN where the class is absent from both.

        Shape:
            [K] float64
        """
        tp, gt, pred = self._parts()
        union = gt + pred - tp
        return torch.where(union > 0, tp / union.clamp(min=1), torch.nan)

    def miou(self) -> float:
        """Mean IoU over the classes in the ground truth or the predictions (NaN if none)."""
        return _nanmean(self.iou())

    def pixel_accuracy(self) -> float:
        """Correct pixels over counted pixels (NaN when nothing was counted)."""
        tp, gt, _ = self._parts()
        total = gt.sum().item()
        return tp.sum().item() / total if total > 0 else math.nan

    def class_accuracy(self) -> torch.Tensor:
        """Recall per class, ``TP / (TP + FN)``; NaN for classes absent from the ground truth.

        Shape:
            [K] float64
        """
        tp, gt, _ = self._parts()
        return torch.where(gt > 0, tp / gt.clamp(min=1), torch.nan)

    def summary(
        self, class_names: Sequence[str] | None = None, report_scaled: int | None = None
    ) -> dict[str, Any]:
        """All scores as a JSON-ready dict (NaN is written as None).

        Args:
            class_names: K names; None uses the Cityscapes names when K = 19, else
                ``class_0``, ``class_1``, ...
            report_scaled: also report the mIoU rescaled to this many classes
                (:func:`scaled_miou`; 60 for PASCAL Context's 59 classes); None: not reported.

        Returns:
            ``{"miou", "pixel_accuracy", "mean_class_accuracy", "per_class": {name: IoU},
            "pixels"}``; scores are fractions in [0, 1]. With ``report_scaled`` also
            ``"miou_scaled"`` and ``"scaled": {"evaluated": K, "reported": N, "label": ...}``.

        Raises:
            ValueError: not K names, or ``report_scaled < K``.
        """
        if class_names is None:
            if self.num_classes == len(CLASS_NAMES):
                class_names = CLASS_NAMES
            else:
                class_names = [f"class_{i}" for i in range(self.num_classes)]
        if len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names for {self.num_classes} classes")
        result = {
            "miou": _none_if_nan(self.miou()),
            "pixel_accuracy": _none_if_nan(self.pixel_accuracy()),
            "mean_class_accuracy": _none_if_nan(_nanmean(self.class_accuracy())),
            "per_class": {
                name: _none_if_nan(v)
                for name, v in zip(class_names, self.iou().tolist(), strict=True)
            },
            "pixels": int(self._matrix.sum().item()),
        }
        if report_scaled is not None:
            k, n = self.num_classes, int(report_scaled)
            result["miou_scaled"] = scaled_miou(result["miou"], k, n)
            result["scaled"] = {"evaluated": k, "reported": n, "label": scaled_label(k, n)}
        return result

    # -- persistence --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The counts (on the CPU) and the settings, for ``torch.save``."""
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "matrix": self._matrix.detach().cpu().clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore counts saved by :meth:`state_dict` (onto the current device)."""
        matrix = torch.as_tensor(state["matrix"], dtype=torch.int64)
        k = self.num_classes
        if int(state.get("num_classes", k)) != k or tuple(matrix.shape) != (k, k):
            raise ValueError(
                f"saved confusion matrix is {tuple(matrix.shape)}, this one is {(k, k)}"
            )
        self.ignore_index = int(state.get("ignore_index", self.ignore_index))
        self._matrix = matrix.to(self._matrix.device).clone()

    def __repr__(self) -> str:
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, "
            f"pixels={int(self._matrix.sum().item())}, miou={self.miou():.4f})"
        )


def _nanmean(values: torch.Tensor) -> float:
    valid = values[~values.isnan()]
    return valid.mean().item() if valid.numel() else math.nan


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def format_table(
    summary: Mapping[str, Any],
    reference: Mapping[str, float] | None = None,
    reference_name: str = "ref",
) -> str:
    """A plain-text table of IoU per class, ending with the mIoU row.

    When ``summary`` holds a scaled mIoU (``ConfusionMatrix.summary(report_scaled=N)``), the
    mIoU row is labelled with its class count, ``mIoU (K classes)``, and a last row gives the
    scaled figure under its label, ``mIoU x K/N (EncNet-style N)``, without a reference.

    Args:
        summary: the dict of :meth:`ConfusionMatrix.summary` (IoUs as fractions).
        reference: optional IoUs in percent (as papers print them) by class name; a
            ``"miou"`` key sets the reference of the last row, else the mean of the classes
            given is used. Adds a reference column and a difference column.
        reference_name: the header of the reference column.

    Returns:
        The table, one row per class, without a trailing newline.
    """
    per_class: Mapping[str, float | None] = summary["per_class"]
    scaled = summary.get("scaled")
    miou_name = "mIoU" if scaled is None else f"mIoU ({scaled['evaluated']} classes)"
    extra = [] if scaled is None else [len(scaled["label"])]
    width = max([len(name) for name in per_class] + [len("class"), len(miou_name)] + extra)
    has_ref = reference is not None

    def row(name: str, value: float | None, ref: float | None) -> str:
        cells = [f"{name:<{width}}", _pct(value)]
        if has_ref:
            diff = None if value is None or ref is None else value * 100 - ref
            cells += [_num(ref), "    n/a" if diff is None else f"{diff:+7.2f}"]
        return "  ".join(cells)

    header = [f"{'class':<{width}}", f"{'IoU %':>7}"]
    if has_ref:
        header += [f"{reference_name + ' %':>7}", f"{'diff':>7}"]
    lines = ["  ".join(header)]
    lines += [
        row(name, value, None if reference is None else reference.get(name))
        for name, value in per_class.items()
    ]
    ref_miou = None
    if reference is not None:
        if "miou" in reference:
            ref_miou = reference["miou"]
        else:
            given = [reference[n] for n in per_class if reference.get(n) is not None]
            ref_miou = sum(given) / len(given) if given else None
    lines.append("-" * len(lines[0]))
    lines.append(row(miou_name, summary.get("miou"), ref_miou))
    if scaled is not None:
        lines.append(row(scaled["label"], summary.get("miou_scaled"), None))
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "    n/a" if value is None else f"{value * 100:7.2f}"


def _num(value: float | None) -> str:
    return "    n/a" if value is None else f"{value:7.2f}"


__all__ = ["ConfusionMatrix", "format_table", "scaled_label", "scaled_miou"]
