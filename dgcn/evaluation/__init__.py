"""Evaluation: the confusion matrix and its scores, and whole / sliding / multi-scale inference."""

from dgcn.evaluation.inference import (
    DEFAULT_SCALES,
    MODES,
    evaluate,
    export_path,
    predict,
    predict_multiscale,
    predict_slide,
    predict_whole,
    save_label_png,
    sliding_windows,
)
from dgcn.evaluation.metrics import ConfusionMatrix, format_table

__all__ = [
    "ConfusionMatrix",
    "DEFAULT_SCALES",
    "MODES",
    "evaluate",
    "export_path",
    "format_table",
    "predict",
    "predict_multiscale",
    "predict_slide",
    "predict_whole",
    "save_label_png",
    "sliding_windows",
]
