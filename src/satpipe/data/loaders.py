"""DataLoader settings shared by every datamodule, and a shuffling sampler that can resume mid-epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochSampler(Sampler[int]):
    """Shuffles ``size`` indices afresh each epoch, the order a function of the seed and the epoch alone.

    ``num_samples`` (default ``size``) may exceed ``size``: further permutations follow, so a small set
    can be cycled to match a larger one. :meth:`skip` drops the start of the next epoch's order, so a
    run resumed mid-epoch sees exactly the batches the interrupted one had not yet seen. No index is
    drawn from the global random number generator, so resuming does not shift anything else.
    """

    def __init__(self, size: int, seed: int, num_samples: int | None = None) -> None:
        self.size, self.seed, self.num_samples = size, seed, num_samples or size
        self.epoch, self._skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch."""
        self.epoch = epoch

    def skip(self, count: int) -> None:
        """Leave out the first ``count`` indices of the next epoch."""
        self._skip = count

    def __iter__(self) -> Iterator[int]:  # a generator: the order is drawn when iteration starts
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
        rounds = -(-self.num_samples // self.size)
        order = torch.cat([torch.randperm(self.size, generator=generator) for _ in range(rounds)])[: self.num_samples]
        start, self._skip = self._skip, 0
        yield from order[start:].tolist()

    def __len__(self) -> int:
        return self.num_samples


def make_loader(
    dataset: Dataset[Any], batch_size: int, num_workers: int, train: bool, num_samples: int | None = None
) -> DataLoader[Any]:
    """A loader that shuffles by epoch (:class:`EpochSampler`) and drops a ragged last batch for training.

    The shuffling seed is the process's torch seed (set by ``seed_everything``); memory is pinned when a
    GPU is there to copy to.
    """
    seed = torch.initial_seed() % 2**63  # an unseeded process's seed may not fit a signed 64-bit integer
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(len(dataset), seed, num_samples) if train else None,  # type: ignore[arg-type]
        # A ragged last batch would make the steps per epoch, and so step-based LR schedules, depend on it.
        drop_last=train and (num_samples or len(dataset)) > batch_size,  # type: ignore[arg-type]
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        # Seeds of worker processes come from here, not from the global generator, which a resumed run
        # restores at the batch it stopped at.
        generator=torch.Generator().manual_seed(seed),
    )
