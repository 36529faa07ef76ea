"""Evaluation: the confusion matrix and its scores (``metrics``), whole / sliding / multi-scale
prediction (``predict``), and the evaluation loop with the ``labelIds`` export (``evaluate``).

Here ``predict`` and ``evaluate`` are the functions (they share their modules' names); reach the
modules' other names with ``from dgcn.evaluation.predict import ...``.
"""

from dgcn.evaluation.evaluate import (
    default_eval_output,
    evaluate,
    evaluate_run,
    export_path,
    save_label_png,
)
from dgcn.evaluation.metrics import ConfusionMatrix, format_table
from dgcn.evaluation.predict import (
    DEFAULT_SCALES,
    MODES,
    eval_options,
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
    "default_eval_output",
    "eval_options",
    "evaluate",
    "evaluate_run",
    "export_path",
    "format_table",
    "predict",
    "predict_multiscale",
    "predict_slide",
    "predict_whole",
    "save_label_png",
    "sliding_windows",
]
