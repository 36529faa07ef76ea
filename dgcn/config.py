"""Configuration: typed dataclasses, YAML files, ``key=value`` overrides.

A run is described by one :class:`Config` with four parts (``model``, ``data``, ``train``,
``eval``). Files live in ``experiments/configs/<preset>.yaml``; a file may start from another
with ``base: <preset>``. Overrides use dotted keys: ``--opt train.lr=0.02 data.root=/data/cs``.
An unknown key is an error that names it and the closest valid key.

Library code reads the environment only through this module and, for the ranks ``torchrun``
sets, :mod:`dgcn.distributed`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from dgcn.config_check import (
    DATASET_CLASSES,
    check_config,
    coerce,
    unknown_key,
    valid_keys,
)
from dgcn.config_check import parse_duration as parse_duration  # the config's own duration rule
from dgcn.config_yaml import parse_yaml, short
from dgcn.errors import ConfigError
from dgcn.fileio import read_utf8, write_text_atomic

_TRUE = {"1", "true", "yes", "on"}
REPO_DIR = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_DIR / "experiments" / "configs"


def smoke_mode() -> bool:
    """Whether to shrink every expensive constant (notebooks, demos, CI).

    True when ``$DGCN_SMOKE`` or ``$CI`` is set to a true value (``1``, ``true``, ``yes``, ``on``).
    ``DGCN_SMOKE=0`` forces full mode even under CI.
    """
    flag = os.environ.get("DGCN_SMOKE")
    if flag is not None:
        return flag.strip().lower() in _TRUE
    return os.environ.get("CI", "").strip().lower() in _TRUE


@dataclass
class ModelConfig:
    """Which network: a preset of ``dgcn.models.build_model`` and its overrides.

    Attributes:
        name: preset, e.g. ``dgcnet_official_r101``, ``dgcnet_paper_r18``, ``fcn_r18``.
        num_classes: the classes predicted; None (the default): the dataset's
            (:data:`DATASET_CLASSES`), read as :attr:`Config.num_classes`.
        overrides: fields of :class:`dgcn.model_spec.ModelSpec` (``graphs``, ``downsample``,
            ``pooling``, ``pretrained``, ``head_channels``, ``aux_channels``, ...), checked with
            the preset when the config is loaded.
    """

    name: str = "dgcnet_official_r101"
    num_classes: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Where the images are and how they are augmented.

    Attributes:
        dataset: ``cityscapes`` (a tree at ``root``), ``minicity`` (generated at ``root`` on
            first use with ``minicity_*``), ``pascal-context`` (the official release at
            ``root``, 59 classes, background ignored) or ``pascal-context-60`` (the same, 60
            classes with background as class 0); see :class:`dgcn.datasets.PascalContext`.
        root: dataset root.
        train_split, val_split: split names.
        crop_size: training crop (h, w); scales: random scales; flip: random horizontal flip.
        base_size: 0: each scale multiplies the image's own size; > 0: a scale ``s`` resizes
            the image so that its long side is ``s * base_size`` (the PASCAL Context recipes'
            "base size 520, random scale 0.5 to 2.0").
        workers: DataLoader workers per process.
        val_limit: evaluate on the first N validation images only (0 = all).
        minicity_train, minicity_val, minicity_size, minicity_seed, minicity_version: the
            MiniCity to generate (counts, [H, W], seed, the generator's rules: 2, or 1 for the
            first edition's data).
    """

    dataset: Literal["cityscapes", "minicity", "pascal-context", "pascal-context-60"] = "cityscapes"
    root: str = "data/cityscapes"
    train_split: str = "train"
    val_split: str = "val"
    crop_size: list[int] = field(default_factory=lambda: [832, 832])
    scales: list[float] = field(
        default_factory=lambda: [round(0.7 + 0.1 * i, 1) for i in range(15)]
    )
    flip: bool = True
    base_size: int = 0
    workers: int = 4
    val_limit: int = 0
    minicity_train: int = 200
    minicity_val: int = 50
    minicity_size: list[int] = field(default_factory=lambda: [128, 256])
    minicity_seed: int = 0
    minicity_version: int = 2


@dataclass
class TrainConfig:
    """Optimisation.

    Attributes:
        iterations: SGD steps (each over ``batch_size`` images in total).
        batch_size: images per step, over all processes and accumulation steps.
        micro_batch: images per forward pass per process (0 = batch_size / processes);
            accumulation steps = batch_size / (micro_batch * processes).
        lr, poly_power: ``lr * (1 - it / iterations) ** poly_power``, per iteration.
        momentum, weight_decay: SGD.
        loss: ``ohem`` or ``ce``; ohem_thresh, ohem_min_kept: the authors' OHEM (per image).
        aux_weight: weight of the auxiliary CE on layer3.
        precision: ``auto`` (bf16 on CUDA compute capability >= 8, fp16 + GradScaler below,
            fp32 on CPU), ``fp32``, ``bf16``, ``fp16``.
        channels_last, cudnn_benchmark, compile: CUDA speed options (ignored on CPU).
        sync_bn: SyncBatchNorm under DDP on CUDA.
        checkpoint_every, log_every, eval_every: in iterations (eval_every 0 = at the end only).
        seed: seeds the model init, the data order and every augmentation.
        threads: torch CPU threads (0 = torch's default).
        time_limit: stop with a checkpoint before this much time has passed since the start
            of training (seconds, or a duration such as ``11h30m``, ``90m``, ``45s``; 0 = no
            limit), e.g. before a Colab session ends; the run is then resumed with
            ``--resume``. See :func:`parse_duration`. End-to-end runs only (a frozen-backbone
            run takes about a minute; ``dgcn reproduce`` refuses a limit).
    """

    iterations: int = 60_000
    batch_size: int = 8
    micro_batch: int = 0
    lr: float = 0.01
    poly_power: float = 0.9
    momentum: float = 0.9
    weight_decay: float = 5e-4
    loss: Literal["ohem", "ce"] = "ohem"
    ohem_thresh: float = 0.7
    ohem_min_kept: int = 100_000
    aux_weight: float = 0.4
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = True
    cudnn_benchmark: bool = True
    compile: bool = False
    sync_bn: bool = True
    checkpoint_every: int = 2000
    log_every: int = 20
    eval_every: int = 0
    seed: int = 0
    threads: int = 0
    time_limit: float | str = 0.0


@dataclass
class EvalConfig:
    """Inference for evaluation, and the one home of the inference defaults: the predictors of
    ``dgcn.evaluation`` take this config (or its fields as keyword arguments), and the
    functions below them take every option explicitly.

    Attributes:
        mode: ``whole``, ``slide`` or ``multiscale``.
        tile, overlap: sliding window (the authors: 832, 1/3).
        scales, flip: multi-scale + flip.
        scale_tile: the multi-scale mode's tile: None (the default, the authors') predicts
            every scaled image whole, its logits resized once to the full size; a size slides
            windows of it over every scaled image (their mean resized to the full size), which
            bounds the memory of one forward pass and keeps the network at its training crop
            (notebook 09: the graphs' sums grow with the pixels). For a 1024 x 2048 frame at
            the default scales, with flip, the network runs on 35.4 M pixels whole and 78.9 M
            with ``scale_tile=832`` (57 windows, the 0.75 scale's padded to 832 rows), against
            5.5 M for the single-scale sliding window (``dgcn.evaluation.forward_pixels``,
            printed in notebook 07, Sec. 2).
        average: what overlapping windows, scales and flips average: ``logits`` (the authors'
            evaluation; the softmax of the mean) or ``probs`` (the mean of the softmaxes).
        precision: the forward passes' autocast: ``auto`` (bf16 on CUDA compute capability
            >= 8, fp16 below, fp32 on a CPU; in training: the run's own precision), ``fp32``,
            ``bf16``, ``fp16`` (CUDA only).
        report_scaled: ``dgcn evaluate`` also reports the mIoU over the K evaluated classes
            times K/(K+1), labelled "EncNet-style K+1": the figure some papers print as the
            PASCAL Context 60-class number (59-class mIoU x 59/60, the background counted as a
            class scored 0; ``docs/reference/pascal_context.md``). The K-class mIoU is always
            reported too. Not for a benchmark that already scores its background
            (``pascal-context-60``).
    """

    mode: Literal["whole", "slide", "multiscale"] = "slide"
    tile: int = 832
    overlap: float = 1 / 3
    scales: list[float] = field(default_factory=lambda: [0.75, 1.0, 1.25, 1.5, 1.75])
    scale_tile: int | None = None
    flip: bool = False
    average: Literal["logits", "probs"] = "logits"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    report_scaled: bool = False


@dataclass
class FrozenConfig:
    """Train only the head, on a frozen pretrained backbone whose features are computed once.

    This is how the CPU ablation isolates what the paper ablates (same backbone, different
    heads) and trains each head for hundreds of iterations in about a minute: the backbone's
    stride-8 features of every training image (and its mirror image) are cached in memory, and
    each row's head trains on them with the ``train`` settings (no crop or scale augmentation).

    Attributes:
        backbone: a dgcn checkpoint whose ``backbone.*`` weights are loaded and frozen (a path,
            relative to the working directory or to the repository); empty: train end to end.
        sha256: the file's expected SHA-256 (checked before use; empty: not checked).
        flip: also cache every training image mirrored (the only augmentation).
        loss_stride: the training loss compares the logits, resized to the image size divided
            by this stride, with the labels subsampled by it (the pixel at the centre of each
            stride x stride block). 1 = the full resolution, as the authors; the CPU ablation
            uses 4, which halves a head's iteration time. Evaluation is always at full size.
    """

    backbone: str = ""
    sha256: str = ""
    flip: bool = True
    loss_stride: int = 1


@dataclass
class Config:
    """A whole run: name plus the four parts (and ``frozen`` for head-only training)."""

    name: str = "run"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    frozen: FrozenConfig = field(default_factory=FrozenConfig)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (YAML/JSON-ready)."""
        return dataclasses.asdict(self)

    @property
    def num_classes(self) -> int:
        """The classes the model predicts: ``model.num_classes`` when set, else the dataset's."""
        if self.model.num_classes is not None:
            return self.model.num_classes
        return DATASET_CLASSES[self.data.dataset]  # data.dataset is one of its keys


def _apply(obj: Any, data: dict[str, Any], where: str, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in data.items():
        full = prefix + key
        if key not in names:
            raise unknown_key(full, valid_keys(Config), where)
        if dataclasses.is_dataclass(hints[key]):
            if not isinstance(value, dict):
                raise ConfigError(f"{full} in {where} must be a mapping of its keys")
            _apply(getattr(obj, key), value, where, full + ".")
        elif typing.get_origin(hints[key]) is dict and isinstance(value, dict):
            # mappings merge across base files and overrides; a key set to null is removed
            merged = {**getattr(obj, key), **value}
            setattr(obj, key, {k: v for k, v in merged.items() if v is not None})
        else:
            setattr(obj, key, coerce(value, hints[key], full, where))


def resolve_config_path(name_or_path: str | os.PathLike) -> Path:
    """A preset name (``cityscapes-official``) or a YAML path -> the file's path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        return path
    return _preset_path(str(name_or_path))


def _preset_path(name: str) -> Path:
    """The file of the preset ``name`` in :data:`CONFIG_DIR`."""
    candidate = CONFIG_DIR / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    presets = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    match = difflib.get_close_matches(name, presets, n=1, cutoff=0.4)
    hint = f"; did you mean {match[0]!r}?" if match else ""
    raise ConfigError(
        f"unknown config {short(name)}{hint} (presets in {CONFIG_DIR}: {', '.join(presets)})"
    )


def base_path(base: object, config: Path) -> Path:
    """The file that ``base: <base>`` in the config file ``config`` names.

    A path (it ends in ``.yaml``/``.yml`` or holds a ``/``) is read relative to the folder of
    ``config``, not the working directory; a name is ``<name>.yaml`` beside ``config`` when
    that file exists, else the preset of that name in :data:`CONFIG_DIR` (where the presets'
    own ``base:`` names point either way).

    Raises:
        ConfigError: ``base`` is not a string, or names no file.
    """
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(
            f"base in {config} must be a preset name or a YAML path, got {short(base)}"
        )
    target = Path(base)
    if target.suffix in (".yaml", ".yml") or "/" in base or os.sep in base:
        target = target if target.is_absolute() else config.parent / target
        if not target.is_file():
            raise ConfigError(
                f"base {short(base)} in {config}: {target} not found (a relative base is read "
                "from the folder of the file that names it)"
            )
        return target
    beside = config.parent / f"{base}.yaml"
    return beside if beside.is_file() else _preset_path(base)


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[dict, str]]:
    if path.resolve() in {p.resolve() for p in seen}:
        raise ConfigError(f"config {path} inherits from itself through 'base'")
    data = parse_yaml(read_utf8(path, ConfigError), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys, got {type(data).__name__}")
    layers = []
    base = data.pop("base", None)
    if base is not None:
        layers += _read_yaml(base_path(base, path), (*seen, path))
    layers.append((data, str(path)))
    return layers


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["train.lr=0.02", "data.flip=false"]`` -> nested dict, values parsed as YAML."""
    nested: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.lr=0.02)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: cannot parse the value ({err})") from err
        parts = key.strip().split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return nested


def load_config(name_or_path: str | os.PathLike | None = None, overrides=None) -> Config:
    """Load a preset or YAML file (following ``base:``), then apply overrides.

    Args:
        name_or_path: preset name in ``experiments/configs`` or a YAML path; None = defaults.
        overrides: ``["key=value", ...]`` or an already nested dict.

    Raises:
        ConfigError: unknown file, key or a value of the wrong type, naming it.
    """
    config = Config()
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        config.name = path.stem
        for data, where in _read_yaml(path):
            _apply(config, data, where)
    return apply_overrides(config, overrides)


def apply_overrides(config: Config, overrides: list[str] | dict | None) -> Config:
    """Apply ``key=value`` strings (or a nested dict) to a config in place; returns it."""
    if overrides:
        nested = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
        _apply(config, nested, "--opt")
    return check_config(config)


def model_overrides(config: Config, pretrained: bool = True) -> dict[str, Any]:
    """The model overrides, without ``pretrained`` when weights come from a checkpoint."""
    return {k: v for k, v in config.model.overrides.items() if pretrained or k != "pretrained"}


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config from :meth:`Config.to_dict` output (e.g. stored in a checkpoint)."""
    config = Config()
    _apply(config, data, "checkpoint")
    return config


def save_config(config: Config, path: str | os.PathLike) -> None:
    """Write the config as YAML, atomically."""
    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
