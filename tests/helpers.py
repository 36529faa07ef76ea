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


# command-line overrides for a tiny MiniCity run (the `minicity` fixture of conftest.py)
TINY = [
    "data.root={root}",
    "data.minicity_train=8",
    "data.minicity_val=3",
    "data.minicity_size=[64,128]",
    "data.crop_size=[64,128]",
    "train.batch_size=4",
    "train.log_every=1",
    "train.threads=1",
]


def tiny_opts(root, **extra) -> list[str]:
    """The TINY overrides on the MiniCity at ``root``, plus ``extra`` as ``key=value``."""
    opts = [o.format(root=root) for o in TINY]
    return opts + [f"{k}={v}" for k, v in extra.items()]


def train_argv(run, opts, *flags: str) -> list[str]:
    """``dgcn train`` on the ``minicity-cpu`` preset into ``run``, quiet, with ``flags`` (e.g.
    ``--resume``) and the ``--opt`` overrides ``opts``."""
    return [
        "train",
        "--config",
        "minicity-cpu",
        "--quiet",
        "--run-dir",
        str(run),
        *flags,
        "--opt",
        *opts,
    ]
