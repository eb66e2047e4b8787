"""Preparation of EuroSAT for training: validate every chip, split, pack, and compute statistics."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from satpipe.artifacts import atomic_dir, write_manifest
from satpipe.data.chips import PREPARE_STAGE, band_stats
from satpipe.data.splits import SPLITS, stratified_split
from satpipe.errors import DataError
from satpipe.io.eurosat import BAND_NAMES, CLASSES, VALUE_SCALE, Bands, find_image_root, list_samples, read_chip

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

    Every chip is read and checked before anything is placed: a corrupt file, a wrong band count or a
    chip of another size stops the stage with the file's name, and no output folder appears.

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
    image_root = find_image_root(Path(raw_dir), bands)
    samples = list_samples(image_root, bands)
    labels = np.array([s.label for s in samples])
    if max_per_class is not None:
        rng = np.random.default_rng(split_seed)
        keep = np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in range(len(CLASSES))]
        )
        samples = [samples[i] for i in np.sort(keep)]
        labels = labels[np.sort(keep)]
    for label in range(len(CLASSES)):
        if (count := int((labels == label).sum())) < 3:
            raise DataError(
                f"{image_root / CLASSES[label]}: {count} chips; a train/val/test split needs at least 3 per class"
            )
    split = stratified_split(labels, train_fraction, val_fraction, split_seed)

    first = read_chip(image_root / samples[0].path, bands)
    with atomic_dir(Path(out_dir)) as tmp:
        arrays = {
            name: np.lib.format.open_memmap(tmp / f"{name}_images.npy", "w+", first.dtype, (len(idx), *first.shape))
            for name, idx in split.items()
        }
        jobs = [(name, row, samples[i]) for name, idx in split.items() for row, i in enumerate(idx)]

        def load(job: tuple[str, int, Any]) -> None:
            name, row, sample = job
            chip = read_chip(image_root / sample.path, bands)
            if chip.shape != first.shape:
                raise DataError(
                    f"{image_root / sample.path}: shape {chip.shape}, but chips in this dataset are {first.shape}"
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
            chip_shape=list(first.shape),
            dtype=str(first.dtype),
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
