"""Evaluation: the confusion matrix and its scores (``metrics``), the object-level score of the
big vehicles (``objects``), whole / sliding / multi-scale prediction (``prediction``), the
authors' released evaluation re-computed step by step as its reference (``authors``), and the
evaluation loop with the ``labelIds`` export (``loop``) and the rules of what it writes
(``outputs``).
"""

from dgcn.evaluation import authors, loop, metrics, objects, outputs, prediction
from dgcn.evaluation.loop import (
    evaluate,
    evaluate_run,
    export_path,
    save_label_png,
)
from dgcn.evaluation.metrics import ConfusionMatrix, format_table, scaled_miou
from dgcn.evaluation.objects import ObjectScore, label_components
from dgcn.evaluation.outputs import default_eval_output
from dgcn.evaluation.prediction import (
    DEFAULT_SCALES,
    MODES,
    eval_options,
    forward_pixels,
    predict,
    predict_multiscale,
    predict_slide,
    predict_whole,
    sliding_windows,
)

__all__ = [
    "ConfusionMatrix",
    "DEFAULT_SCALES",
    "MODES",
    "authors",
    "default_eval_output",
    "eval_options",
    "evaluate",
    "evaluate_run",
    "export_path",
    "format_table",
    "forward_pixels",
    "label_components",
    "loop",
    "metrics",
    "ObjectScore",
    "objects",
    "outputs",
    "predict",
    "prediction",
    "predict_multiscale",
    "predict_slide",
    "predict_whole",
    "save_label_png",
    "scaled_miou",
    "sliding_windows",
]
