"""A resumable, seeded sample stream: the data order and every augmentation are a function of
(seed, global sample position) only, so a resumed run sees exactly the samples and random
crops an uninterrupted run would have seen, whatever the number of loader workers.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler


class SeededDataset(Dataset):
    """Wrap a dataset so item ``(index, seed)`` draws its augmentation from ``seed``.

    The global torch RNG is forked, so the caller's RNG state is untouched.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class ResumableSampler(Sampler):
    """An endless stream of ``(index, seed)`` for one process, starting at any iteration.

    Global sample position ``g`` (over all processes) maps to epoch ``g // size`` and to the
    item ``perm_epoch[g % size]``, where ``perm_epoch`` is a permutation seeded by
    ``(seed, epoch)``. Iteration ``i`` consumes positions ``[i * B, (i + 1) * B)`` with
    ``B = world_size * accumulation * micro_batch``; within it, accumulation step ``a`` of rank
    ``r`` takes ``micro_batch`` consecutive positions starting at
    ``i * B + (a * world_size + r) * micro_batch``.

    Args:
        size: dataset length.
        micro_batch: images per forward pass per process.
        world_size, rank: the process group.
        accumulation: micro-batches per optimizer step.
        seed: run seed.
        start_iteration: first iteration to produce (the resume point).
    """

    def __init__(
        self,
        size: int,
        micro_batch: int,
        world_size: int = 1,
        rank: int = 0,
        accumulation: int = 1,
        seed: int = 0,
        start_iteration: int = 0,
    ) -> None:
        self.size, self.micro_batch = size, micro_batch
        self.world_size, self.rank, self.accumulation = world_size, rank, accumulation
        self.seed, self.start_iteration = seed, start_iteration
        self._perm: tuple[int, torch.Tensor] | None = None

    def index_at(self, position: int) -> int:
        """The dataset index at a global sample position."""
        epoch = position // self.size
        if self._perm is None or self._perm[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._perm = (epoch, torch.randperm(self.size, generator=generator))
        return int(self._perm[1][position % self.size])

    def sample_seed(self, position: int) -> int:
        """The augmentation seed of a global sample position."""
        return (self.seed * 1_000_000_007 + position * 2_654_435_761) % (2**63 - 1)

    def positions(self, iteration: int) -> list[int]:
        """This rank's global positions for one iteration, in order."""
        batch = self.world_size * self.accumulation * self.micro_batch
        out = []
        for step in range(self.accumulation):
            start = iteration * batch + (step * self.world_size + self.rank) * self.micro_batch
            out += range(start, start + self.micro_batch)
        return out

    def __iter__(self) -> Iterator[tuple[int, int]]:
        iteration = self.start_iteration
        while True:
            for position in self.positions(iteration):
                yield self.index_at(position), self.sample_seed(position)
            iteration += 1
