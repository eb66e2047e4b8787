"""CloudMask patches exactly as the MLCommons reference cuts them, in satpipe's prepared-patch format.

Each 1200 x 1500 scene is centre-cropped to 1024 x 1280 (rows 88..1112, columns 110..1390) and cut into
20 non-overlapping 256 x 256 patches; training files are split 80/20 by file with a seed. Patches keep
physical units (reflectance, kelvin); the benchmark's normalisation is applied by the model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from satpipe.artifacts import atomic_dir, write_manifest
from satpipe.data.npy import NpyAppender
from satpipe.data.patches import IGNORE, PATCH_STAGE
from satpipe.errors import DataError
from satpipe.io.cloudmask import BAND_NAMES, NORM_HIGH, NORM_LOW, check_file, list_files, read_bands

logger = logging.getLogger(__name__)

CROP_OFFSET = (88, 110)
CROP_SHAPE = (1024, 1280)
PATCH = 256


def _windows() -> list[tuple[slice, slice]]:
    """The reference's 20 patch windows within the centre crop, row by row."""
    h, w = CROP_SHAPE
    return [(slice(r, r + PATCH), slice(c, c + PATCH)) for r in range(0, h, PATCH) for c in range(0, w, PATCH)]


def reference_patches(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's 20 patches of a whole scene: ``(20, C, 256, 256)`` images and ``(20, 256, 256)`` masks."""
    (top, left), (h, w) = CROP_OFFSET, CROP_SHAPE
    crop, crop_mask = image[:, top : top + h, left : left + w], mask[top : top + h, left : left + w]
    return np.stack([crop[:, r, c] for r, c in _windows()]), np.stack([crop_mask[r, c] for r, c in _windows()])


def file_patches(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One file's reference patches, reading only its centre crop; no-data pixels are :data:`IGNORE` in the masks.

    The file stores channels last; each patch is copied to channels first straight from the file's
    two arrays, the only copy this stage makes.
    """
    (top, left), (h, w) = CROP_OFFSET, CROP_SHAPE
    bands = read_bands(path, slice(top, top + h), slice(left, left + w))
    mask = np.where(bands.valid, bands.clouds, IGNORE).astype(np.uint8)
    windows = _windows()
    images = np.empty((len(windows), len(BAND_NAMES), PATCH, PATCH), np.float32)
    for k, (r, c) in enumerate(windows):
        images[k, :6], images[k, 6:] = bands.refs[r, c].transpose(2, 0, 1), bands.bts[r, c].transpose(2, 0, 1)
    return images, np.stack([mask[r, c] for r, c in windows])


def split_files(files: list[Path], val_fraction: float, seed: int) -> dict[str, list[Path]]:
    """A seeded split of files into train and val (80/20 by default), whole files to one side."""
    if len(files) < 2:
        raise DataError(f"found {len(files)} training file(s); a split by file needs at least 2")
    order = np.random.default_rng(seed).permutation(len(files))
    n_val = min(len(files) - 1, max(1, round(len(files) * val_fraction)))
    return {"train": sorted(files[i] for i in order[n_val:]), "val": sorted(files[i] for i in order[:n_val])}


def prepare_cloudmask(
    raw: Path,
    out_dir: Path,
    *,
    val_fraction: float,
    split_seed: int,
    max_files: int | None,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Cut CloudMask training files into reference patches with train/val arrays and a manifest.

    Every training and test file is checked first (:func:`check_cloudmask_files`), and read before the output
    is placed; pixels without finite values are marked :data:`IGNORE` in the masks.

    Returns:
        The manifest written to ``out_dir``.
    """
    split, tests = check_cloudmask_files(raw, max_files=max_files, val_fraction=val_fraction, split_seed=split_seed)
    with atomic_dir(Path(out_dir)) as tmp:
        writers = {
            name: (
                NpyAppender(tmp / f"{name}_images.npy", (len(BAND_NAMES), PATCH, PATCH), np.float32),
                NpyAppender(tmp / f"{name}_masks.npy", (PATCH, PATCH), np.uint8),
            )
            for name in split
        }
        jobs = [(name, path) for name, paths in split.items() for path in paths]
        for name, path in track(jobs, description="cutting CloudMask patches", disable=not progress):
            images, masks = file_patches(path)
            writers[name][0].append(images)
            writers[name][1].append(masks)
        for pair in writers.values():
            for writer in pair:
                writer.close()
        manifest = write_manifest(
            tmp,
            PATCH_STAGE,
            dataset="cloudmask",
            bands=list(BAND_NAMES),
            dtype="float32",
            patch_size=PATCH,
            counts={name: writers[name][0].count for name in split},
            files={name: [p.name for p in paths] for name, paths in split.items()},
            test_files=[p.name for p in tests],
            normalization={"low": list(NORM_LOW), "high": list(NORM_HIGH), "clip": False},
            split={"val_fraction": val_fraction, "seed": split_seed, "max_files": max_files},
            **(provenance or {}),
        )
    logger.info("CloudMask patches: %s", manifest["counts"])
    return manifest


def check_cloudmask_files(
    raw: Path, *, max_files: int | None, val_fraction: float, split_seed: int
) -> tuple[dict[str, list[Path]], list[Path]]:
    """The training files split by file, and the test files, each checked from its header (no pixel read).

    Fast enough to run before any stage: a missing split, a file that ``filelist.json`` lists but that is
    absent or short, or a file with a missing or misshapen dataset is named now, not after training.

    Raises:
        DatasetNotFoundError: If a split has no files.
        DataError: Naming the file that is wrong, or if there are fewer than two training files.
    """
    files = list_files(Path(raw), "train", max_files)
    tests = list_files(Path(raw), "test", max_files)
    for path in (*files, *tests):
        check_file(path)
    return split_files(files, val_fraction, split_seed), tests
