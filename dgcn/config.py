"""Configuration helpers.

Library code reads the environment only through this module.
"""

from __future__ import annotations

import os

_TRUE = {"1", "true", "yes", "on"}


def smoke_mode() -> bool:
    """Whether to shrink every expensive constant (notebooks, demos, CI).

    True when ``$DGCN_SMOKE`` or ``$CI`` is set to a true value (``1``, ``true``, ``yes``, ``on``).
    ``DGCN_SMOKE=0`` forces full mode even under CI.
    """
    flag = os.environ.get("DGCN_SMOKE")
    if flag is not None:
        return flag.strip().lower() in _TRUE
    return os.environ.get("CI", "").strip().lower() in _TRUE


def torch_home_checkpoints() -> str:
    """The folder where torchvision looks for downloaded weights ($TORCH_HOME/hub/checkpoints)."""
    import torch.hub

    return os.path.join(torch.hub.get_dir(), "checkpoints")
