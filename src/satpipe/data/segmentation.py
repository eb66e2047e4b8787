"""Patch datasets for segmentation over a prepared folder (see :mod:`satpipe.data.patches`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from satpipe.artifacts import read_manifest
from satpipe.data.loaders import make_loader
from satpipe.data.patches import PATCH_STAGE


class PatchDataset(Dataset[dict[str, Any]]):
    """Samples ``{"image": float32 (C, P, P) raw values, "mask": int64 (P, P) with 0/1/255}``."""

    def __init__(self, prepared_dir: Path, split: str) -> None:
        self.images = np.load(Path(prepared_dir) / f"{split}_images.npy", mmap_mode="r")
        self.masks = np.load(Path(prepared_dir) / f"{split}_masks.npy", mmap_mode="r")

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "image": torch.from_numpy(self.images[index].astype(np.float32)),
            "mask": torch.from_numpy(self.masks[index].astype(np.int64)),
        }


class PatchDataModule(pl.LightningDataModule):
    """Train/val loaders over a prepared patch folder."""

    def __init__(self, prepared_dir: Path, batch_size: int, num_workers: int = 0) -> None:
        super().__init__()
        self.prepared_dir = Path(prepared_dir)
        self.manifest = read_manifest(self.prepared_dir, PATCH_STAGE)
        self.batch_size, self.num_workers = batch_size, num_workers

    def _loader(self, split: str, train: bool) -> DataLoader[dict[str, Any]]:
        return make_loader(PatchDataset(self.prepared_dir, split), self.batch_size, self.num_workers, train)

    def train_dataloader(self) -> DataLoader[dict[str, Any]]:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader[dict[str, Any]]:
        return self._loader("val", train=False)
