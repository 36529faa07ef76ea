"""Small helpers shared by several test files."""

import torch


def randomize_bn(bn: torch.nn.BatchNorm2d) -> None:
    """Random running statistics and affine parameters, so the eval-mode BN is a real test."""
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.normal_()
    bn.bias.data.normal_()


def bn_rows(bn: torch.nn.BatchNorm2d, rows: torch.Tensor) -> torch.Tensor:
    """Eval-mode BatchNorm on [N, D] rows, written out."""
    return (rows - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
