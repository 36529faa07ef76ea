"""dgcn: the Dual Graph Convolutional Network (DGCNet, BMVC 2019) for semantic segmentation.

What a notebook or a script needs is here, imported on first use so that ``import dgcn`` stays
light (no torch, no matplotlib):

- configs: ``load_config("minicity-cpu", ["train.iterations=50"])`` -> :class:`Config`
- data: ``prepare_data(cfg.data)`` (generates MiniCity when absent), then
  ``build_dataset(cfg.data, "val", train=False)``
- models: ``build_model("dgcnet_official_r101")``
- training: ``fit(cfg, run_dir)`` (end to end), ``train(cfg, run_dir)`` (either loop), and
  ``train_or_load(cfg, run_dir)`` (the trained model of a run folder, trained only if needed);
  ``training.run_status(run_dir)``: a run's own config, iteration and resolved precision and
  micro-batch, to resume it as it was on whatever GPU is at hand
- inference: ``load_for_inference(checkpoint)``, ``predict(model, images, cfg.eval)``,
  ``evaluate(model, loader, cfg.eval, num_classes=..., device=..., progress=...)``
- the ablation's results: ``read_results(folder)``, then ``reproduce.results_table``; the
  committed MiniCity models: ``committed_model("minicity-dgcnet-paper")`` (trained first by
  the command that made it when the file is missing)

and the subpackages by name: ``from dgcn import datasets, models, viz``.

Reading the package: the method is in fifteen files (about 2,700 of its 17,800 lines), in
this order:

1. ``models/coordinate_gcn.py``, ``models/feature_gcn.py``: the two graphs (notebooks 02, 03);
2. ``models/dual_gcn.py``, ``models/common.py``: the DualGCN block and head, both variants;
3. ``models/backbone.py``, ``models/network.py``: the dilated ResNet and DGCNet (with its
   auxiliary head);
4. ``model_spec.py``, ``models/build.py``: the named networks and their options;
5. ``datasets/labels.py``, ``datasets/cityscapes.py``, ``datasets/transforms.py``: the data,
   its 19 classes and the augmentations;
6. ``training/losses.py``, ``training/schedule.py``: the OHEM loss and the poly schedule;
7. ``evaluation/prediction.py``, ``evaluation/metrics.py``: whole-image, sliding-window and
   multi-scale prediction; the confusion matrix and mIoU.

The rest serves them: MiniCity, the synthetic city (``datasets/minicity/``); PASCAL Context
(``datasets/pascal_context/``); the CPU ablation on a frozen backbone (``training/frozen.py``,
``ablation.py``, ``reproduce.py``); runs that stop and resume exactly (``training/loop.py``,
``steps.py``, ``resume.py``, ``rundir.py``, ``interrupt.py``, ``checkpoint.py``,
``precision.py``, ``distributed.py``); weights I/O (``models/weights.py``,
``models/weight_files.py``, ``models/official.py``); figures (``viz/``); configs
(``config.py``, ``config_check.py``) and the command line (``cli.py``).
"""

from dgcn.config import smoke_mode
from dgcn.errors import CheckpointError, ConfigError, DatasetError, DgcnError
from dgcn.lazy import lazy_exports

__version__ = "0.3.0"

_MODULES = (
    "book",
    "checkpoint",
    "config",
    "datasets",
    "distributed",
    "evaluation",
    "models",
    "reproduce",
    "training",
    "viz",
)
_EXPORTS = {
    **{name: f"dgcn.{name}" for name in _MODULES},
    "Config": "dgcn.config",
    "EvalConfig": "dgcn.config",
    "load_config": "dgcn.config",
    "build_dataset": "dgcn.datasets",
    "prepare_data": "dgcn.datasets",
    "build_model": "dgcn.models",
    "fit": "dgcn.training",
    "train": "dgcn.training",
    "train_or_load": "dgcn.training",
    "evaluate": "dgcn.evaluation",
    "predict": "dgcn.evaluation",
    "load_checkpoint": "dgcn.checkpoint",
    "load_for_inference": "dgcn.checkpoint",
    "read_results": "dgcn.reproduce",
    "committed_model": "dgcn.reproduce",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "__version__",
    "smoke_mode",
    "DgcnError",
    "DatasetError",
    "ConfigError",
    "CheckpointError",
    *_EXPORTS,
]
