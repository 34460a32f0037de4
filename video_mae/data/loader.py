"""Per-epoch DataLoaders with a seeded order that can start part-way through an epoch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochSampler(Sampler[int]):
    """The indices of one epoch: a permutation drawn from ``(seed, epoch)`` (or the
    identity without ``shuffle``), starting at position ``start``. Resuming at
    ``start = batches_done * batch_size`` replays exactly the rest of the epoch."""

    def __init__(self, size: int, seed: int, epoch: int, shuffle: bool = True, start: int = 0) -> None:
        if not 0 <= start <= size:
            raise ValueError(f"start={start} outside [0, {size}]")
        self.size = size
        self.seed = seed
        self.epoch = epoch
        self.shuffle = shuffle
        self.start = start

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.size)
        return np.random.default_rng([self.seed, self.epoch, 0x5EED]).permutation(self.size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :].tolist())

    def __len__(self) -> int:
        return self.size - self.start


def _worker_init(_: int) -> None:
    # Each worker decodes and resizes one item at a time; intra-op threads would
    # only oversubscribe the cores the other workers are using.
    torch.set_num_threads(1)


def make_loader(
    dataset: Dataset,
    sampler: Sampler[int],
    batch_size: int,
    num_workers: int,
    pin_memory: bool = False,
    drop_last: bool = True,
    timeout_s: float = 0.0,
) -> DataLoader:
    """A DataLoader that takes its order from ``sampler``. With workers, a batch
    that takes longer than ``timeout_s`` seconds (0: no limit) raises instead of hanging."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        timeout=timeout_s if num_workers > 0 else 0.0,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        # A fixed generator keeps the loader from drawing its worker seeds from the
        # global RNG, which would otherwise differ between a straight and a resumed run.
        generator=torch.Generator().manual_seed(0),
    )
