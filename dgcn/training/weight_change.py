"""What training did to a weight, beyond what weight decay alone would have done.

Two things move a weight in SGD: the loss's gradient and weight decay, which shrinks every
weight by the same factor whatever the loss. :func:`weight_decay_factor` replays that factor
for a run's optimiser settings; :func:`split_change` writes a trained weight as
``c * initial + R`` (``c`` by least squares), so a ``c`` near the decay factor and a small
``R`` mean that only the decay moved it. Used by notebooks/03_feature_gcn on the committed
MiniCity heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dgcn.training.schedule import sgd_with_poly


@dataclass(frozen=True)
class WeightChange:
    """``trained = c * initial + R``, the norms relative to ``|initial|``.

    Attributes:
        c: the least-squares factor ``<trained, initial> / <initial, initial>``.
        moved: ``|trained - initial| / |initial|``.
        beyond_shrink: ``|R| / |initial|`` with ``R = trained - c * initial``.
    """

    c: float
    moved: float
    beyond_shrink: float


def weight_decay_factor(train) -> float:
    """The factor by which weight decay alone scales every weight over a run.

    The trainers' SGD and poly schedule (:func:`~dgcn.training.schedule.sgd_with_poly`, with
    ``train``'s lr, momentum, weight decay, poly power and iterations) stepped on one weight
    whose gradient is always zero.

    Args:
        train: a :class:`~dgcn.config.TrainConfig`.
    """
    weight = nn.Parameter(torch.ones((), dtype=torch.float64))
    optimizer, scheduler = sgd_with_poly([weight], train)
    for _ in range(train.iterations):
        weight.grad = torch.zeros_like(weight)
        optimizer.step()
        scheduler.step()
    return float(weight.detach())


def split_change(trained: torch.Tensor, initial: torch.Tensor) -> WeightChange:
    """``trained = c * initial + R``: the factor ``c`` and the two relative norms.

    Args:
        trained: the weight after training.
        initial: the same weight at initialisation (same shape, not all zero).
    """
    trained, initial = trained.detach().double(), initial.detach().double()
    if trained.shape != initial.shape:
        raise ValueError(f"shapes differ: {tuple(trained.shape)} and {tuple(initial.shape)}")
    square = float((initial * initial).sum())
    if square == 0.0:
        raise ValueError("the initial weight is zero: no change relative to it")
    c, size = float((trained * initial).sum()) / square, square**0.5
    return WeightChange(
        c=c,
        moved=float((trained - initial).norm()) / size,
        beyond_shrink=float((trained - c * initial).norm()) / size,
    )


def weight_changes(trained: nn.Module, initial: nn.Module) -> dict[str, WeightChange]:
    """:func:`split_change` for every weight matrix (``dim > 1``: not the biases, nor the BN
    scales and shifts) of ``trained`` against the same parameter of ``initial``, by name."""
    before = dict(initial.named_parameters())
    return {
        name: split_change(weight, before[name])
        for name, weight in trained.named_parameters()
        if weight.dim() > 1
    }
