"""The poly learning-rate schedule, per iteration: lr * (1 - it / total) ** power, and the SGD
that both trainers step with it."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def poly_factor(iteration: int, total: int, power: float = 0.9) -> float:
    """``(1 - iteration / total) ** power``, clamped at 0 past the end."""
    return max(0.0, 1.0 - iteration / total) ** power


def poly_scheduler(
    optimizer: torch.optim.Optimizer, total: int, power: float = 0.9
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR whose step ``i`` sets ``lr = base_lr * poly_factor(i, total, power)``.

    Call ``scheduler.step()`` once after each optimizer step; its state dict holds the
    iteration, so resuming restores the schedule exactly.
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: poly_factor(it, total, power))


def sgd_with_poly(
    parameters: Iterable[torch.nn.Parameter], train
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD with ``train``'s (a :class:`~dgcn.config.TrainConfig`) lr, momentum and weight decay,
    and its poly schedule over ``train.iterations`` with ``train.poly_power``."""
    optimizer = torch.optim.SGD(
        parameters, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay
    )
    return optimizer, poly_scheduler(optimizer, train.iterations, train.poly_power)
