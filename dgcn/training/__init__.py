"""Training: the end-to-end loop (``loop.fit``), head-only training on a frozen backbone
(``frozen.fit_head``), the run helpers (``runs.train``, ``runs.train_or_load``), what a run
keeps across resumes and machines (``resume.run_status``, ``resume.device_precisions``), losses,
the poly schedule and sampling. The checkpoint format lives in ``dgcn.checkpoint``, the process
helpers in ``dgcn.distributed``.

The names below are imported on first use, so ``import dgcn.training.X`` stays as light as X.
"""

from dgcn.lazy import lazy_exports

_EXPORTS = {
    "fit": "dgcn.training.loop",
    "accumulation_steps": "dgcn.training.loop",
    "RunDirError": "dgcn.training.loop",
    "TrainingError": "dgcn.training.loop",
    "run_status": "dgcn.training.resume",
    "RunStatus": "dgcn.training.resume",
    "RunSettings": "dgcn.training.resume",
    "device_precisions": "dgcn.training.resume",
    "resolve_precision": "dgcn.training.resume",
    "fit_head": "dgcn.training.frozen",
    "train": "dgcn.training.runs",
    "train_or_load": "dgcn.training.runs",
    "SegmentationLoss": "dgcn.training.losses",
    "poly_scheduler": "dgcn.training.schedule",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
