"""Datasets from a :class:`dgcn.config.DataConfig`."""

from __future__ import annotations

from torch.utils.data import Dataset, Subset

from dgcn.config import DataConfig
from dgcn.datasets.cityscapes import Cityscapes
from dgcn.datasets.minicity import ensure_minicity
from dgcn.datasets.transforms import Compose, eval_transforms, train_transforms
from dgcn.errors import ConfigError

DATASETS = ("cityscapes", "minicity")


def prepare_data(cfg: DataConfig) -> None:
    """Generate MiniCity when the config asks for it and it is absent (call on rank 0 only)."""
    if cfg.dataset == "minicity":
        height, width = cfg.minicity_size
        ensure_minicity(
            cfg.root,
            train=cfg.minicity_train,
            val=cfg.minicity_val,
            seed=cfg.minicity_seed,
            height=height,
            width=width,
        )
    elif cfg.dataset not in DATASETS:
        raise ConfigError(f"data.dataset must be one of {DATASETS}, got {cfg.dataset!r}")


def data_transforms(cfg: DataConfig, train: bool) -> Compose:
    """The joint transforms of a data config.

    Args:
        cfg: the ``data`` section of a config (e.g. ``load_config("cityscapes-official").data``).
        train: the training augmentations (``cfg.crop_size``, ``cfg.scales``, ``cfg.flip``) if
            True, the evaluation transforms (normalisation only) if False.

    Returns:
        The transforms, called as ``image, mask = t(image, mask)``.
    """
    if train:
        return train_transforms(tuple(cfg.crop_size), tuple(cfg.scales), cfg.flip)
    return eval_transforms()


def build_dataset(cfg: DataConfig, split: str, train: bool) -> Cityscapes | Dataset:
    """The split with training augmentations (``train=True``) or evaluation transforms.

    With ``train=False`` and ``cfg.val_limit > 0`` only the first ``val_limit`` items are kept
    (a :class:`torch.utils.data.Subset` whose ``dataset`` is the full split).
    """
    dataset = Cityscapes(cfg.root, split, data_transforms(cfg, train))
    if not train and cfg.val_limit > 0:
        return Subset(dataset, range(min(cfg.val_limit, len(dataset))))
    return dataset


def image_paths(dataset: Dataset) -> list:
    """The image files of a dataset built by :func:`build_dataset`, in item order."""
    if isinstance(dataset, Subset):
        return [dataset.dataset.image_path(i) for i in dataset.indices]
    return [dataset.image_path(i) for i in range(len(dataset))]
