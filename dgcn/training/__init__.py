"""Training: the end-to-end loop (``loop.fit``), head-only training on a frozen backbone
(``frozen.fit_head``), the run helpers (``runs.train``, ``runs.train_or_load``), what a run
keeps across resumes and machines (``resume.run_status``), losses, the poly schedule,
sampling, the plan of a GPU run (``plan``: the micro-batch that fits and the estimated
time), and what training did to a weight beyond weight decay (``weight_change``). The
checkpoint format lives in ``dgcn.checkpoint``, the process helpers (and the precisions a
device runs) in ``dgcn.distributed``.

The names below are imported on first use, so ``import dgcn.training.X`` stays as light as X.
"""

from dgcn.lazy import lazy_exports

_EXPORTS = {
    "fit": "dgcn.training.loop",
    "accumulation_steps": "dgcn.training.loop",
    "RunDirError": "dgcn.errors",
    "TrainingError": "dgcn.errors",
    "Interrupted": "dgcn.training.interrupt",
    "run_status": "dgcn.training.resume",
    "RunStatus": "dgcn.training.resume",
    "RunSettings": "dgcn.training.resume",
    "device_precisions": "dgcn.precision",
    "resolve_precision": "dgcn.precision",
    "fit_head": "dgcn.training.frozen",
    "train": "dgcn.training.runs",
    "train_or_load": "dgcn.training.runs",
    "SegmentationLoss": "dgcn.training.losses",
    "poly_scheduler": "dgcn.training.schedule",
    "plan": "dgcn.training.plan",
    "WeightChange": "dgcn.training.weight_change",
    "split_change": "dgcn.training.weight_change",
    "weight_changes": "dgcn.training.weight_change",
    "weight_decay_factor": "dgcn.training.weight_change",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
