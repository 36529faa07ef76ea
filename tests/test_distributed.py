"""Where a process stands: one helper for "am I the main process", whatever asks."""

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
