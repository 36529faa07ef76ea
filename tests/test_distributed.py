"""Where a process stands: one helper for "am I the main process", whatever asks; what the
processes of a torchrun exchange (random states, BatchNorm statistics before an evaluation)."""

import os
import re
import subprocess
import sys

import pytest

from dgcn import distributed


@pytest.mark.parametrize("rank, main", [(None, True), ("0", True), ("1", False)])
def test_the_main_process_is_rank_zero_of_torchrun(monkeypatch, rank, main):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    if rank is not None:
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.rank() == int(rank or 0)
    assert distributed.world_size() == (2 if rank is not None else 1)
    assert distributed.is_main_process() is main
    info = distributed.setup("cpu") if rank is None else distributed.DistInfo(int(rank), 2)
    assert info.is_main is main and info.distributed is (rank is not None)


def test_a_shard_takes_every_nth_item_without_padding():
    info = distributed.DistInfo(rank=1, world_size=3)
    assert list(distributed.shard(list(range(8)), info).indices) == [1, 4, 7]


# run by two processes under torchrun (gloo, CPU): each one checks what it holds afterwards
TWO_RANKS = """
import types

import torch

from dgcn import distributed
from dgcn.config import load_config
from dgcn.models import build_model
from dgcn.training.interrupt import StopRequest
from dgcn.training.loop import evaluate_step
from dgcn.precision import resolve_precision

info = distributed.setup("cpu")
assert distributed.all_gather_objects({"rank": info.rank}, info) == [{"rank": 0}, {"rank": 1}]
torch.manual_seed(0)
model = build_model("dgcnet_paper_micro").train()
norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
for bn in norms:  # each process's own running statistics, as DDP training without SyncBN leaves
    bn.running_mean.fill_(float(info.rank))
    bn.running_var.fill_(1.0 + info.rank)
weights = [p.detach().clone() for p in model.parameters()]
val = torch.utils.data.TensorDataset(torch.randn(4, 3, 64, 128), torch.randint(0, 19, (4, 64, 128)))
log = types.SimpleNamespace(append=lambda record: None)
cfg = load_config("minicity-cpu", ["data.workers=0"])
run = types.SimpleNamespace(
    cfg=cfg, info=info, model=model, val_set=val, progress=False, log=log, writer=None,
    precision=resolve_precision("auto", info.device), stop=StopRequest(),
)
evaluate_step(run, 1)
assert all(bool((bn.running_mean == 0).all() and (bn.running_var == 1).all()) for bn in norms)
assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
assert model.training
print(f"rank {info.rank}: rank 0's statistics", flush=True)
distributed.cleanup()
"""


@pytest.mark.slow
def test_every_rank_evaluates_with_rank_0s_batchnorm_statistics(tmp_path):
    script = tmp_path / "two_ranks.py"
    script.write_text(TWO_RANKS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    result = subprocess.run([*command, str(script)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # print writes the text and the newline separately: two ranks' lines may interleave
    assert sorted(re.findall(r"rank (\d): rank 0's statistics", result.stdout)) == ["0", "1"]
