"""Packed image chips for classification: a dataset, a datamodule and band statistics.

A prepared folder holds ``<split>_images.npy`` (N, C, H, W in the source dtype),
``<split>_labels.npy`` (N,) and a manifest with class names, band names, the value scale and
per-band mean and standard deviation of the training split. Arrays are memory-mapped, so opening a
prepared folder costs nothing and workers share pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from satpipe.artifacts import read_manifest
from satpipe.data.loaders import make_loader

PREPARE_STAGE = "prepare"


def band_stats(images: np.ndarray, scale: float, chunk: int = 1024) -> tuple[list[float], list[float]]:
    """Per-band mean and standard deviation of ``images / scale`` over an (N, C, H, W) array.

    Accumulates in float64 chunk by chunk, so a multi-GB memory map never becomes one float copy.
    """
    n_bands = images.shape[1]
    total, total_sq, count = np.zeros(n_bands), np.zeros(n_bands), 0
    for start in range(0, len(images), chunk):
        block = np.asarray(images[start : start + chunk], dtype=np.float64) / scale
        total += block.sum(axis=(0, 2, 3))
        total_sq += (block**2).sum(axis=(0, 2, 3))
        count += block.shape[0] * block.shape[2] * block.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean.tolist(), np.maximum(std, 1e-6).tolist()


class ChipDataset(Dataset[dict[str, Any]]):
    """One split of a prepared folder; samples are ``{"image": float32 (C, H, W) raw values, "label": int}``."""

    def __init__(self, prepared_dir: Path, split: str) -> None:
        self.images = np.load(Path(prepared_dir) / f"{split}_images.npy", mmap_mode="r")
        self.labels = np.load(Path(prepared_dir) / f"{split}_labels.npy")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": torch.from_numpy(self.images[index].astype(np.float32)), "label": int(self.labels[index])}


class ChipDataModule(pl.LightningDataModule):
    """Train/val/test loaders over a prepared folder."""

    def __init__(self, prepared_dir: Path, batch_size: int, num_workers: int = 0) -> None:
        super().__init__()
        self.prepared_dir = Path(prepared_dir)
        self.manifest = read_manifest(self.prepared_dir, PREPARE_STAGE)
        self.batch_size = batch_size
        self.num_workers = num_workers

    def _loader(self, split: str, train: bool) -> DataLoader[dict[str, Any]]:
        return make_loader(ChipDataset(self.prepared_dir, split), self.batch_size, self.num_workers, train)

    def train_dataloader(self) -> DataLoader[dict[str, Any]]:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader[dict[str, Any]]:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader[dict[str, Any]]:
        return self._loader("test", train=False)
