"""Preparation of EuroSAT for training: validate every chip, split, pack, and compute statistics."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from satpipe.artifacts import atomic_dir, write_manifest
from satpipe.data.chips import PREPARE_STAGE, band_stats
from satpipe.data.splits import SPLITS, stratified_split
from satpipe.errors import DataError
from satpipe.io.eurosat import (
    BAND_NAMES,
    CLASSES,
    VALUE_SCALE,
    Bands,
    Sample,
    chip_header,
    find_image_root,
    list_samples,
    read_chip,
)
from satpipe.io.headers import common_value, quiet_gdal

logger = logging.getLogger(__name__)


def prepare_eurosat(
    raw_dir: Path,
    out_dir: Path,
    *,
    bands: Bands,
    train_fraction: float,
    val_fraction: float,
    split_seed: int,
    max_per_class: int | None,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn a EuroSAT folder into packed train/val/test arrays with a manifest.

    Every chip is checked (:func:`check_chips`) and read before anything is placed: a corrupt file, a
    wrong band count or a chip of another size or type stops the stage with the file's name, and no output
    folder appears.

    Args:
        raw_dir: A EuroSAT folder in either published layout (or anything above it).
        out_dir: Folder to create.
        bands: ``"rgb"`` (JPEG product) or ``"ms"`` (13-band GeoTIFF product).
        train_fraction: Share of each class for training.
        val_fraction: Share of each class for validation; the rest is the test split.
        split_seed: Seed of the stratified split.
        max_per_class: Keep at most this many chips per class (chosen by the seed), or None for all.
        progress: Show a progress bar.
        provenance: Extra facts for the manifest (config, input digest, run).

    Returns:
        The manifest written to ``out_dir``.
    """
    chips = check_chips(raw_dir, bands=bands, max_per_class=max_per_class, split_seed=split_seed)
    image_root, samples = chips.image_root, chips.samples
    labels = np.array([s.label for s in samples])
    split = stratified_split(labels, train_fraction, val_fraction, split_seed)

    with atomic_dir(Path(out_dir)) as tmp:
        arrays = {
            name: np.lib.format.open_memmap(tmp / f"{name}_images.npy", "w+", chips.dtype, (len(idx), *chips.shape))
            for name, idx in split.items()
        }
        jobs = [(name, row, samples[i]) for name, idx in split.items() for row, i in enumerate(idx)]

        def load(job: tuple[str, int, Any]) -> None:
            name, row, sample = job
            chip = read_chip(image_root / sample.path, bands)
            if (chip.shape, chip.dtype) != (chips.shape, chips.dtype):  # the pixels disagree with the header
                raise DataError(
                    f"{image_root / sample.path}: {chip.dtype} {chip.shape}, but chips in this dataset are "
                    f"{chips.dtype} {chips.shape}"
                )
            arrays[name][row] = chip

        # Decoding releases the GIL in both PIL and GDAL, so threads read in parallel.
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in track(pool.map(load, jobs), total=len(jobs), description="reading chips", disable=not progress):
                pass
        for name, idx in split.items():
            arrays[name].flush()
            np.save(tmp / f"{name}_labels.npy", labels[idx])
        mean, std = band_stats(arrays["train"], VALUE_SCALE[bands])
        manifest = write_manifest(
            tmp,
            PREPARE_STAGE,
            dataset="eurosat",
            bands=bands,
            band_names=list(BAND_NAMES[bands]),
            classes=list(CLASSES),
            value_scale=VALUE_SCALE[bands],
            chip_shape=list(chips.shape),
            dtype=chips.dtype,
            # Statistics of the training split only, in units of value / value_scale.
            mean=mean,
            std=std,
            counts={name: np.bincount(labels[idx], minlength=len(CLASSES)).tolist() for name, idx in split.items()},
            files={name: [samples[i].path for i in idx] for name, idx in split.items()},
            split={"train": train_fraction, "val": val_fraction, "seed": split_seed, "max_per_class": max_per_class},
            **(provenance or {}),
        )
    logger.info("prepared %s: %s", out_dir, {n: len(split[n]) for n in SPLITS})
    return manifest


@dataclass(frozen=True)
class CheckedChips:
    """The chips a preparation reads: where they are, which ones, and the shape and stored type they share."""

    image_root: Path
    samples: list[Sample]
    shape: tuple[int, int, int]
    dtype: str


def check_chips(raw_dir: Path, *, bands: Bands, max_per_class: int | None, split_seed: int) -> CheckedChips:
    """Find, choose and check the chips :func:`prepare_eurosat` reads, from the folder layout and file headers.

    Fast enough to run before any stage (no pixel is decoded). The shape and type of the chips are those
    most of them have, so a chip unlike the others is named even when it is the first one.

    Args:
        raw_dir: A EuroSAT folder in either published layout (or anything above it).
        bands: ``"rgb"`` or ``"ms"``.
        max_per_class: Keep at most this many chips per class (chosen by the seed), or None for all.
        split_seed: Seed of the choice (and of the split).

    Raises:
        DatasetNotFoundError: If no EuroSAT class folders are found.
        DataError: If a class is missing or has fewer than 3 chips, or a chip is unreadable, has the wrong
            band count, or another shape or type than most.
    """
    image_root = find_image_root(Path(raw_dir), bands)
    samples = list_samples(image_root, bands)
    labels = np.array([s.label for s in samples])
    if max_per_class is not None:
        rng = np.random.default_rng(split_seed)
        keep = np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in range(len(CLASSES))]
        )
        samples, labels = [samples[i] for i in np.sort(keep)], labels[np.sort(keep)]
    for label in range(len(CLASSES)):
        if (count := int((labels == label).sum())) < 3:
            raise DataError(
                f"{image_root / CLASSES[label]}: {count} chips; a train/val/test split needs at least 3 per class"
            )
    with quiet_gdal():
        headers = [(image_root / s.path, chip_header(image_root / s.path, bands)) for s in samples]
    shape = common_value([(path, shape) for path, (shape, _) in headers], "shape", "chips")
    dtype = common_value([(path, dtype) for path, (_, dtype) in headers], "type", "chips")
    return CheckedChips(image_root, samples, shape, dtype)
