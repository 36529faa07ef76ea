"""Load a model for inference from one of our checkpoints or the authors' released file."""

from __future__ import annotations

from pathlib import Path

import torch

from dgcn.config import Config, apply_overrides, config_from_dict, load_config, model_overrides
from dgcn.models import build_model, load_official_checkpoint
from dgcn.training.checkpoint import load_checkpoint, load_model_weights


def load_for_inference(
    checkpoint: str | Path,
    official: bool = False,
    config: str | None = None,
    overrides: list[str] | None = None,
) -> tuple[torch.nn.Module, Config]:
    """(model in eval mode on the CPU, its run config with ``overrides`` applied).

    Args:
        checkpoint: ``runs/<name>/last.pt`` or, with ``official``, the authors' ``.pth``.
        official: the file is the authors' released checkpoint (``DualSeg_res101``).
        config: the data/eval config to use with an official checkpoint
            (default ``cityscapes-official``); ignored for our checkpoints, which carry theirs.
        overrides: ``key=value`` strings applied last.

    Raises:
        CheckpointError, ConfigError.
    """
    if official:
        model = load_official_checkpoint(str(checkpoint))
        cfg = load_config(config or "cityscapes-official", overrides)
        return model, cfg
    state = load_checkpoint(checkpoint)
    cfg = apply_overrides(config_from_dict(state["config"]), overrides)
    model = build_model(cfg.model.name, cfg.model.num_classes, **model_overrides(cfg, False))
    load_model_weights(model, state, checkpoint)
    return model.eval(), cfg
