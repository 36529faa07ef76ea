"""The checks behind :func:`dgcn.config.load_config`: each value against its field's type
(:func:`coerce`), an unknown key with the closest valid one (:func:`unknown_key`), and the
value rules and cross-section checks (:data:`RULES`, :func:`check_config`).

A bad value stops a command here, before any data is read or any folder is touched.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from dgcn.config_yaml import short
from dgcn.errors import ConfigError
from dgcn.model_spec import model_spec

if TYPE_CHECKING:
    from dgcn.config import Config

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([hms])")


def parse_duration(value: float | int | str) -> float | None:
    """Seconds of a duration: a number of seconds (``3600``, ``"3600"``) or hours, minutes and
    seconds written ``11h30m``, ``1h 30m 5s``, ``90m``, ``45s``. None when ``value`` is neither
    or is negative.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value >= 0 else None
    text = str(value).strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or _DURATION.sub("", text).strip():
            return None
        units = {"h": 3600.0, "m": 60.0, "s": 1.0}
        seconds = sum(float(number) * units[unit] for number, unit in parts)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def valid_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            keys += valid_keys(hints[f.name], prefix + f.name + ".")
        else:
            keys.append(prefix + f.name)
    return keys


#: common names from other codebases -> ours
ALIASES = {
    "learning_rate": "lr",
    "base_lr": "lr",
    "wd": "weight_decay",
    "power": "poly_power",
    "max_iter": "iterations",
    "max_iters": "iterations",
    "num_steps": "iterations",
    "batch": "batch_size",
    "bs": "batch_size",
    "num_workers": "workers",
    "crop": "crop_size",
    "amp": "precision",
    "data_root": "root",
    "data_dir": "root",
}


def unknown_key(key: str, valid: list[str], where: str) -> ConfigError:
    section, _, leaf = key.rpartition(".")
    alias = f"{section}.{ALIASES[leaf]}" if leaf in ALIASES else ""
    siblings = [k for k in valid if k.rpartition(".")[0] == section]
    if alias in valid:
        match = [alias]
    else:
        leaves = difflib.get_close_matches(leaf, [k.rpartition(".")[2] for k in siblings], 1, 0.5)
        match = [f"{section}.{leaves[0]}" if section else leaves[0]] if leaves else []
        match = match or difflib.get_close_matches(key, valid, n=1, cutoff=0.4)
    hint = f"; did you mean {match[0]!r}?" if match else f"; valid keys: {', '.join(valid)}"
    return ConfigError(f"unknown config key {key!r} in {where}{hint}")


def coerce(value: Any, hint: Any, key: str, where: str) -> Any:
    """Check (and gently convert) a value against a field's type."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            allowed = ", ".join(map(str, choices))
            raise ConfigError(f"{key} in {where} must be one of {allowed}, got {short(value)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        for arg in args:  # the first type the value fits, in the order written
            try:
                return coerce(value, arg, key, where)
            except ConfigError:
                continue
        names = " or ".join(getattr(a, "__name__", str(a)) for a in args)
        raise ConfigError(f"{key} in {where} must be {names}, got {short(value)}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            value = [value]
        (item,) = typing.get_args(hint)
        return [coerce(v, item, key, where) for v in value]
    if origin is dict or hint is Any:
        if origin is dict and not isinstance(value, dict):
            raise ConfigError(f"{key} in {where} must be a mapping, got {short(value)}")
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} in {where} must be true or false, got {short(value)}")
    if hint is float and isinstance(value, str):
        # YAML 1.1 (PyYAML) reads 1e-3 and 5e-4 as strings: a number written so is a number
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{key} in {where} must be a number, got {short(value)}") from None
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{key} in {where} must be a finite number, got {short(value)}")
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{key} in {where} must be {hint.__name__}, got {short(value)}")


#: the classes of the datasets a config can name (MiniCity uses the 19 Cityscapes train classes)
DATASET_CLASSES = {"cityscapes": 19, "minicity": 19, "pascal-context": 59, "pascal-context-60": 60}


def _at_least(low: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v >= low), f">= {low}"


def _sizes(count: int, low: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: len(v) == count and all(x >= low for x in v)), f"{count} sizes >= {low}"


_FACTORS = (lambda v: len(v) > 0 and all(x > 0 for x in v)), "a non-empty list of factors > 0"

#: the largest seed (train.seed, data.minicity_seed): the data order's generator is seeded by
#: a multiple of it, which must stay within 64 bits
SEED_MAX = 2**32 - 1
#: the most images in one SGD step (train.batch_size, train.micro_batch): far beyond any
#: segmentation recipe, and a bound before a typo becomes a MemoryError
BATCH_MAX = 4096
#: the most data loader processes (train: data.workers; evaluate --workers)
WORKERS_MAX = 256
#: the largest side of a MiniCity image, in pixels (Cityscapes: 2048)
SIDE_MAX = 8192


def _between(low: int, high: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: low <= v <= high), f">= {low} and <= {high}"


#: value rules checked when a config is loaded: key -> (test, what is required)
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model.num_classes": ((lambda v: v is None or v >= 1), ">= 1 (or unset: the dataset's)"),
    "data.crop_size": _sizes(2, 1),
    "data.scales": _FACTORS,
    "data.base_size": _at_least(0),
    "data.workers": _between(0, WORKERS_MAX),
    "data.val_limit": _at_least(0),
    "data.minicity_train": _at_least(0),
    "data.minicity_val": _at_least(0),
    "data.minicity_size": (
        (lambda v: len(v) == 2 and all(16 <= x <= SIDE_MAX for x in v)),
        f"2 sizes >= 16 and <= {SIDE_MAX}",
    ),
    "data.minicity_seed": _between(0, SEED_MAX),
    "data.minicity_version": ((lambda v: v in (1, 2)), "1 or 2 (the MiniCity generator's rules)"),
    "train.iterations": _between(1, 10**9),
    "train.batch_size": _between(1, BATCH_MAX),
    "train.micro_batch": _between(0, BATCH_MAX),
    "train.lr": ((lambda v: v > 0), "> 0"),
    "train.poly_power": _at_least(0),
    "train.momentum": ((lambda v: 0 <= v < 1), "in [0, 1)"),
    "train.weight_decay": _at_least(0),
    "train.ohem_thresh": ((lambda v: 0 < v <= 1), "in (0, 1]"),
    "train.ohem_min_kept": _at_least(0),
    "train.aux_weight": _at_least(0),
    "train.checkpoint_every": _at_least(1),
    "train.log_every": _at_least(1),
    "train.eval_every": _at_least(0),
    "train.threads": _between(0, 4096),
    "train.seed": _between(0, SEED_MAX),
    "train.time_limit": (
        (lambda v: parse_duration(v) is not None),
        "seconds >= 0 or a duration such as 11h30m, 90m or 45s",
    ),
    "eval.tile": _at_least(1),
    "eval.overlap": ((lambda v: 0 <= v < 1), "in [0, 1)"),
    "eval.scales": _FACTORS,
    "eval.scale_tile": ((lambda v: v is None or v >= 1), ">= 1 (or unset: every scale whole)"),
    "frozen.loss_stride": _at_least(1),
}


#: what a run name may be: it names the run folder ``runs/<name>``, so one path component
#: of plain characters (no separator, no ``..``), at most 100 of them
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=,-]{0,99}")


def check_run_name(name: str) -> None:
    """Refuse a run name that is not a plain folder name (:data:`RUN_NAME`): ``../x``,
    ``/tmp/x`` or ``a/b`` would put the run folder, and what ``--overwrite`` replaces, outside
    ``runs/``.

    Raises:
        ConfigError: naming the value and the characters allowed.
    """
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"name {short(name)} must be a plain folder name (letters, digits and . _ - + = , "
            "at most 100, no / and no ..): it names the run folder runs/<name>; set name: in "
            "the config or --opt name=NAME"
        )


def check_config(config: Config) -> Config:
    """Check every value rule of :data:`RULES`, the class count against the dataset, and the
    model section (the preset ``model.name``, each ``model.overrides`` key and value).

    Types and enumerated choices are checked as values are set; this checks ranges, so that a
    bad value stops a command before any data is read or any folder is touched.

    Raises:
        ConfigError: naming the first key that breaks its rule and what it must be.
    """
    check_run_name(config.name)
    for key, (test, requirement) in RULES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if not test(value):
            raise ConfigError(f"{key} must be {requirement}, got {short(value)}")
    classes, expected = config.num_classes, DATASET_CLASSES[config.data.dataset]
    if classes != expected:
        raise ConfigError(
            f"model.num_classes={classes}, but {config.data.dataset} has "
            f"{expected} classes; set model.num_classes={expected}"
        )
    try:  # the model section as the model builder reads it: preset, option names, values
        model_spec(config.model.name, **config.model.overrides)
    except ConfigError as err:
        raise ConfigError(f"model: {err}") from None
    return config
