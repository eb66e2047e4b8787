"""Labelled subsets and paired labelled/unlabelled loaders for semi-supervised segmentation.

The labelled subset is a fraction of the prepared training patches, drawn by patch or by whole scene
with a seed; the rest of the training patches form the unlabelled pool, their labels hidden from the
loss (kept only to measure pseudo-labels), joined by the patches of any scenes prepared without labels
(:func:`satpipe.data.patches.prepare_unlabelled_patches`). Every arm of an experiment, at every labelled share,
takes the same number of steps per epoch: one per batch of all the training patches (and any unlabelled
scenes), the labelled patches and the unlabelled pool each cycled to match. A share of 1 labels every
training patch: the supervised reference that tells how much the hidden labels were worth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import ConcatDataset, Dataset, Subset

from satpipe.artifacts import read_manifest
from satpipe.data.loaders import make_loader
from satpipe.data.patches import UNLABELLED_STAGE
from satpipe.data.segmentation import PatchDataModule, PatchDataset
from satpipe.errors import DataError


def labelled_indices(scenes: dict[str, int], fraction: float, split_by: str, seed: int) -> np.ndarray:
    """Indices of the labelled training patches, sorted.

    Args:
        scenes: Patches per training scene, in the order the patches are stored.
        fraction: Share of the patches to label (at least one patch, or one scene); 1 labels them all.
        split_by: ``"patch"`` draws patches; ``"scene"`` draws whole scenes until the share is reached.
        seed: Random seed of the draw.
    """
    total = sum(scenes.values())
    rng = np.random.default_rng(seed)
    if split_by == "patch":
        return np.sort(rng.permutation(total)[: max(1, round(total * fraction))])
    starts = np.cumsum([0, *scenes.values()])
    chosen: list[np.ndarray] = []
    for i in rng.permutation(len(scenes)):
        if chosen and sum(map(len, chosen)) >= total * fraction:
            break
        chosen.append(np.arange(starts[i], starts[i + 1]))
    return np.sort(np.concatenate(chosen))


class UnlabelledPatches(Dataset[dict[str, Any]]):
    """Patches as unlabelled samples: ``image``, ``valid`` (1 where the pixel has data) and the hidden ``mask``."""

    def __init__(self, patches: Dataset[dict[str, Any]]) -> None:
        self.patches = patches

    def __len__(self) -> int:
        return len(self.patches)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.patches[index]
        return {**sample, "valid": (sample["image"] != 0).any(dim=0).to(torch.uint8)}


class SemiDataModule(PatchDataModule):
    """Train batches ``{"labelled": ..., "unlabelled": ...}`` (the latter only with ``unlabelled``); val as usual."""

    def __init__(
        self,
        prepared_dir: Path,
        batch_size: int,
        *,
        fraction: float,
        split_by: str,
        split_seed: int,
        unlabelled: bool,
        unlabelled_dir: Path | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__(prepared_dir, batch_size=batch_size, num_workers=num_workers)
        scenes = self.manifest["scenes"]["train"]
        self.labelled = labelled_indices(scenes, fraction, split_by, split_seed)
        self.pool = np.setdiff1d(np.arange(sum(scenes.values())), self.labelled)
        self.use_unlabelled = unlabelled
        self.unlabelled_dir = Path(unlabelled_dir) if unlabelled_dir is not None else None
        self.extra = 0
        if self.unlabelled_dir is not None:
            extra = read_manifest(self.unlabelled_dir, UNLABELLED_STAGE)
            for key in ("dtype", "bands", "patch_size"):
                if extra[key] != self.manifest[key]:
                    raise DataError(
                        f"{self.unlabelled_dir}: unlabelled patches have {key} {extra[key]}, the labelled ones "
                        f"{self.manifest[key]}; both must come from the same sensor, product and patch size"
                    )
            self.extra = extra["counts"]["unlabelled"]
        if unlabelled and len(self.pool) + self.extra == 0:
            raise DataError(f"{self.prepared_dir}: every training patch is labelled; nothing is left unlabelled")

    @property
    def steps_per_epoch(self) -> int:
        """One step per batch of every training patch and unlabelled scene, whatever the share and the arm."""
        return max(1, (len(self.labelled) + len(self.pool) + self.extra) // self.batch_size)

    def train_dataloader(self) -> Any:
        patches = PatchDataset(self.prepared_dir, "train")
        labelled = Subset(patches, self.labelled.tolist())
        cycled = self.steps_per_epoch * self.batch_size  # each side's samples per epoch
        loaders = {"labelled": make_loader(labelled, self.batch_size, self.num_workers, train=True, num_samples=cycled)}
        if self.use_unlabelled:
            pool: Dataset[dict[str, Any]] = Subset(patches, self.pool.tolist())
            if self.unlabelled_dir is not None:
                pool = ConcatDataset([pool, PatchDataset(self.unlabelled_dir, "unlabelled")])
            loaders["unlabelled"] = make_loader(
                UnlabelledPatches(pool), self.batch_size, self.num_workers, train=True, num_samples=cycled
            )
        return CombinedLoader(loaders, mode="min_size")
