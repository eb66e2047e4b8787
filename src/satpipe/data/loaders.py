"""DataLoader settings shared by every datamodule."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def make_loader(
    dataset: Dataset[Any], batch_size: int, num_workers: int, train: bool, sampler: Sampler[int] | None = None
) -> DataLoader[Any]:
    """A loader that shuffles (or draws from ``sampler``) and drops a ragged last batch for training.

    Memory is pinned when a GPU is there to copy to.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        # A ragged last batch would make the steps per epoch, and so step-based LR schedules, depend on it.
        drop_last=train and len(dataset) > batch_size,  # type: ignore[arg-type]
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
