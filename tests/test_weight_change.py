"""What weight decay alone does to a weight, and the split trained = c * initial + R."""

import math

import pytest
import torch

from dgcn.config import TrainConfig
from dgcn.training import WeightChange, split_change, weight_changes, weight_decay_factor
from dgcn.training.schedule import sgd_with_poly


def test_the_decay_factor_of_plain_sgd_at_a_constant_rate_is_a_power():
    # no momentum and poly power 0: every step multiplies the weight by (1 - lr wd)
    train = TrainConfig(iterations=50, lr=0.1, poly_power=0.0, momentum=0.0, weight_decay=0.01)
    assert math.isclose(weight_decay_factor(train), (1 - 0.1 * 0.01) ** 50, rel_tol=1e-12)


def test_the_decay_factor_is_what_the_trainers_sgd_does_to_a_weight_without_gradient():
    train = TrainConfig(iterations=40, lr=0.05, momentum=0.9, weight_decay=5e-3)
    weights = torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64))
    start = weights.detach().clone()
    optimizer, scheduler = sgd_with_poly([weights], train)
    for _ in range(train.iterations):
        weights.grad = torch.zeros_like(weights)
        optimizer.step()
        scheduler.step()
    factor = weight_decay_factor(train)
    assert factor < 1
    torch.testing.assert_close(weights.detach(), factor * start, rtol=1e-12, atol=0)


def test_split_change_separates_a_shrink_from_an_orthogonal_change():
    initial = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    residual = torch.tensor([[0.0, 0.3], [-0.4, 0.0]], dtype=torch.float64)  # orthogonal
    change = split_change(0.9 * initial + residual, initial)
    size = math.sqrt(2)
    assert math.isclose(change.c, 0.9, rel_tol=1e-12)
    assert math.isclose(change.beyond_shrink, 0.5 / size, rel_tol=1e-12)
    assert math.isclose(change.moved, math.sqrt(2 * 0.1**2 + 0.5**2) / size, rel_tol=1e-12)
    assert split_change(initial, initial) == WeightChange(c=1.0, moved=0.0, beyond_shrink=0.0)


def test_split_change_refuses_what_it_cannot_compare():
    with pytest.raises(ValueError, match="shapes differ"):
        split_change(torch.ones(2, 2), torch.ones(2, 3))
    with pytest.raises(ValueError, match="zero"):
        split_change(torch.ones(2, 2), torch.zeros(2, 2))


def test_weight_changes_covers_the_weight_matrices_only():
    torch.manual_seed(0)
    initial = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    trained = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    trained.load_state_dict(initial.state_dict())
    with torch.no_grad():
        trained[0].weight.mul_(0.5)
    changes = weight_changes(trained, initial)
    assert list(changes) == ["0.weight"]  # not the bias, nor the BN's scale and shift
    assert math.isclose(changes["0.weight"].c, 0.5, rel_tol=1e-6)
    assert changes["0.weight"].beyond_shrink < 1e-6
