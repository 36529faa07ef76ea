"""Datasets from a :class:`dgcn.config.DataConfig`."""

from __future__ import annotations

from torch.utils.data import Dataset, Subset

from dgcn.config import DATASET_CLASSES, DataConfig
from dgcn.datasets.cityscapes import Cityscapes
from dgcn.datasets.minicity import ensure_minicity
from dgcn.datasets.pascal_context import PascalContext, voc_folder
from dgcn.datasets.transforms import Compose, eval_transforms, train_transforms
from dgcn.errors import ConfigError

DATASETS = ("cityscapes", "minicity", "pascal-context", "pascal-context-60")
#: the config's dataset names that read PASCAL Context, and their settings (classes)
PASCAL_CONTEXT = {name: DATASET_CLASSES[name] for name in ("pascal-context", "pascal-context-60")}


def prepare_data(cfg: DataConfig) -> None:
    """Generate MiniCity when the config asks for it and it is absent (call on rank 0 only).

    PASCAL Context is never generated: a root without the release is one line naming the
    download and ``dgcn check-data``.
    """
    if cfg.dataset in PASCAL_CONTEXT:
        voc_folder(cfg.root)
    elif cfg.dataset == "minicity":
        height, width = cfg.minicity_size
        ensure_minicity(
            cfg.root,
            train=cfg.minicity_train,
            val=cfg.minicity_val,
            seed=cfg.minicity_seed,
            height=height,
            width=width,
            version=cfg.minicity_version,
        )
    elif cfg.dataset not in DATASETS:
        raise ConfigError(f"data.dataset must be one of {DATASETS}, got {cfg.dataset!r}")


def data_transforms(cfg: DataConfig, train: bool) -> Compose:
    """The joint transforms of a data config.

    Args:
        cfg: the ``data`` section of a config (e.g. ``load_config("cityscapes-official").data``).
        train: the training augmentations (``cfg.crop_size``, ``cfg.scales``, ``cfg.flip``,
            ``cfg.base_size``) if True, the evaluation transforms (normalisation only) if False.

    Returns:
        The transforms, called as ``image, mask = t(image, mask)``.
    """
    if train:
        return train_transforms(tuple(cfg.crop_size), tuple(cfg.scales), cfg.flip, cfg.base_size)
    return eval_transforms()


def build_dataset(cfg: DataConfig, split: str, train: bool) -> Cityscapes | PascalContext | Dataset:
    """The split with training augmentations (``train=True``) or evaluation transforms.

    ``cfg.dataset`` picks the loader: :class:`Cityscapes` for ``cityscapes`` and ``minicity``,
    :class:`PascalContext` with 59 or 60 classes for ``pascal-context`` and
    ``pascal-context-60``. With ``train=False`` and ``cfg.val_limit > 0`` only the first
    ``val_limit`` items are kept (a :class:`torch.utils.data.Subset` whose ``dataset`` is the
    full split).
    """
    transforms = data_transforms(cfg, train)
    if cfg.dataset in PASCAL_CONTEXT:
        dataset = PascalContext(cfg.root, split, transforms, classes=PASCAL_CONTEXT[cfg.dataset])
    else:
        dataset = Cityscapes(cfg.root, split, transforms)
    if not train and cfg.val_limit > 0:
        return Subset(dataset, range(min(cfg.val_limit, len(dataset))))
    return dataset


def image_paths(dataset: Dataset) -> list:
    """The image files of a dataset built by :func:`build_dataset`, in item order."""
    if isinstance(dataset, Subset):
        return [dataset.dataset.image_path(i) for i in dataset.indices]
    return [dataset.image_path(i) for i in range(len(dataset))]
