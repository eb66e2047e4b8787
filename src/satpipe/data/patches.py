"""Segmentation patches: cut scenes with 38-Cloud-style padding, skip empty ones, split by scene, fit percentiles.

A prepared folder holds ``<split>_images.npy`` (N, C, P, P in the source dtype), ``<split>_masks.npy``
(N, P, P uint8: 1 cloud, 0 clear, 255 no data) and a manifest with the scenes of each split and the
per-band percentiles of the training split's valid pixels. Scenes without labels (for semi-supervised
training) are cut the same way into a folder of one split, ``unlabelled``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from satpipe.artifacts import atomic_dir, write_manifest
from satpipe.data.npy import NpyAppender
from satpipe.errors import DataError, DatasetNotFoundError
from satpipe.io.cloud38 import (
    BANDS,
    Patch,
    check_test_split,
    common_type,
    find_cross_dataset,
    group_by_scene,
    list_patches,
    patch_band_types,
    read_patch,
)

logger = logging.getLogger(__name__)

PATCH_STAGE = "patch"
UNLABELLED_STAGE = "unlabelled-patch"
IGNORE = 255  #: mask value of pixels without data
SPLITS = ("train", "val")
PERCENTILES = (1.0, 99.0)
SAMPLES_PER_PATCH = 1024  #: valid pixels per patch drawn for the percentile estimate


def grid(size: int, patch: int, overlap: int) -> tuple[int, list[int]]:
    """Padded length and patch starts along one axis: the smallest stride grid covering ``size``."""
    stride = patch - overlap
    count = 1 + max(0, -(-(size - patch) // stride))
    return (count - 1) * stride + patch, [i * stride for i in range(count)]


def cut(image: np.ndarray, mask: np.ndarray, patch: int, overlap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cut ``image`` (C, H, W) and ``mask`` (H, W) into patches after 38-Cloud-style symmetric zero padding.

    Padding (half before, rounded down) is nodata: zeros in the image, :data:`IGNORE` in the mask.
    """
    (ph, ys), (pw, xs) = grid(image.shape[1], patch, overlap), grid(image.shape[2], patch, overlap)
    top, left = (ph - image.shape[1]) // 2, (pw - image.shape[2]) // 2
    padded_image = np.zeros((image.shape[0], ph, pw), image.dtype)
    padded_mask = np.full((ph, pw), IGNORE, np.uint8)
    padded_image[:, top : top + image.shape[1], left : left + image.shape[2]] = image
    padded_mask[top : top + image.shape[1], left : left + image.shape[2]] = mask
    return [
        (padded_image[:, y : y + patch, x : x + patch], padded_mask[y : y + patch, x : x + patch])
        for y in ys
        for x in xs
    ]


def valid_pieces(
    image: np.ndarray, mask: np.ndarray, patch: int, overlap: int, min_valid_fraction: float
) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """The patches of :func:`cut` with at least ``min_valid_fraction`` of pixels with data, and how many were skipped.

    A pixel has data where any band is non-zero (the padding has none), labelled or not.
    """
    pieces = cut(image, mask, patch, overlap)
    kept = [(piece, m) for piece, m in pieces if np.any(piece != 0, axis=0).mean() >= min_valid_fraction]
    return kept, len(pieces) - len(kept)


def patch_writers(folder: Path, split: str, image: np.ndarray, patch_size: int) -> tuple[NpyAppender, NpyAppender]:
    """Appenders of a split's patches (``image``'s bands and dtype) and their uint8 masks."""
    return (
        NpyAppender(folder / f"{split}_images.npy", (image.shape[0], patch_size, patch_size), image.dtype),
        NpyAppender(folder / f"{split}_masks.npy", (patch_size, patch_size), np.uint8),
    )


def label_mask(image: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """uint8 mask: 1 cloud, 0 clear, :data:`IGNORE` where every band is 0 (no data)."""
    return np.where(np.all(image == 0, axis=0), IGNORE, gt).astype(np.uint8)


def split_scenes(scenes: list[str], val_fraction: float, seed: int) -> dict[str, list[str]]:
    """Assign whole scenes to train and val, so no scene contributes to both (no leakage)."""
    if len(scenes) < 2:
        raise DataError(f"found {len(scenes)} training scene(s); a split by scene needs at least 2")
    order = np.random.default_rng(seed).permutation(len(scenes))
    n_val = min(len(scenes) - 1, max(1, round(len(scenes) * val_fraction)))
    val = sorted(scenes[i] for i in order[:n_val])
    return {"train": sorted(set(scenes) - set(val)), "val": val}


def prepare_cloud_patches(
    source: Path,
    out_dir: Path,
    *,
    patch_size: int,
    overlap: int,
    min_valid_fraction: float,
    val_fraction: float,
    split_seed: int,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn 38-Cloud-layout training patches (with ground truth) into train/val patch arrays.

    Source patches are cut again to ``patch_size`` with ``overlap``; patches with less than
    ``min_valid_fraction`` of valid pixels are skipped. Every file's header is checked first, and nothing
    is placed unless every file reads.

    Returns:
        The manifest written to ``out_dir``.
    """
    patches = list_patches(Path(source), "train", require_gt=True)
    common_type(patch_band_types(patches))
    scenes = group_by_scene(patches)
    split = split_scenes(list(scenes), val_fraction, split_seed)
    rng = np.random.default_rng(split_seed)
    samples: list[np.ndarray] = []
    kept: dict[str, dict[str, int]] = {name: {} for name in SPLITS}
    skipped = 0
    with atomic_dir(Path(out_dir)) as tmp:
        writers: dict[str, tuple[NpyAppender, NpyAppender]] = {}
        jobs = [(name, scene, p) for name in SPLITS for scene in split[name] for p in scenes[scene]]
        for name, scene, patch in track(jobs, description="cutting patches", disable=not progress):
            image, gt = read_patch(patch)
            if name not in writers:
                writers[name] = patch_writers(tmp, name, image, patch_size)
            pieces, dropped = valid_pieces(image, label_mask(image, gt), patch_size, overlap, min_valid_fraction)  # type: ignore[arg-type]
            skipped += dropped
            for piece, mask in pieces:
                valid = mask != IGNORE
                writers[name][0].append(piece)
                writers[name][1].append(mask)
                kept[name][scene] = kept[name].get(scene, 0) + 1
                if name == "train":
                    pixels = piece[:, valid]
                    samples.append(
                        pixels[:, rng.choice(pixels.shape[1], min(SAMPLES_PER_PATCH, pixels.shape[1]), replace=False)]
                    )
        for name in SPLITS:
            if name not in writers or writers[name][0].count == 0:
                raise DataError(
                    f"{source}: no {name} patch has {min_valid_fraction:.0%} valid pixels; "
                    "lower data.min_valid_fraction"
                )
            for writer in writers[name]:
                writer.close()
        sample = np.concatenate(samples, axis=1)
        low, high = np.percentile(sample, PERCENTILES, axis=1)
        manifest = write_manifest(
            tmp,
            PATCH_STAGE,
            bands=list(BANDS),
            dtype=str(writers["train"][0].dtype),
            value_max=float(np.iinfo(writers["train"][0].dtype).max) if writers["train"][0].dtype.kind in "iu" else 1.0,
            patch_size=patch_size,
            overlap=overlap,
            min_valid_fraction=min_valid_fraction,
            counts={name: writers[name][0].count for name in SPLITS},
            skipped=skipped,
            scenes={name: kept[name] for name in SPLITS},
            # Percentiles of valid training pixels (Sat-UNet's normalisation), in stored units.
            percentiles={"low": low.tolist(), "high": high.tolist(), "q": list(PERCENTILES)},
            split={"val_fraction": val_fraction, "seed": split_seed},
            **(provenance or {}),
        )
    logger.info("patches: %s, %d skipped as mostly empty", manifest["counts"], skipped)
    return manifest


def prepare_unlabelled_patches(
    source: Path,
    out_dir: Path,
    *,
    patch_size: int,
    overlap: int,
    min_valid_fraction: float,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Cut scenes without labels (38-Cloud layout, ``train_*`` or ``test_*`` band folders) into ``unlabelled`` patches.

    Patches are cut and skipped exactly as the labelled ones. Where a patch does have ground truth it is
    kept as the hidden mask, used only to measure pseudo-labels; elsewhere the mask is all :data:`IGNORE`.

    Returns:
        The manifest written to ``out_dir``.
    """
    patches = unlabelled_patches(Path(source))
    common_type(patch_band_types(patches))
    skipped = 0
    scenes: dict[str, int] = {}
    with atomic_dir(Path(out_dir)) as tmp:
        writers: tuple[NpyAppender, NpyAppender] | None = None
        for patch in track(patches, description="cutting unlabelled patches", disable=not progress):
            image, gt = read_patch(patch)
            hidden = label_mask(image, gt) if gt is not None else np.full(image.shape[1:], IGNORE, np.uint8)
            if writers is None:
                writers = patch_writers(tmp, "unlabelled", image, patch_size)
            pieces, dropped = valid_pieces(image, hidden, patch_size, overlap, min_valid_fraction)
            skipped += dropped
            for piece, mask in pieces:
                writers[0].append(piece)
                writers[1].append(mask)
            scenes[patch.scene] = scenes.get(patch.scene, 0) + len(pieces)
        if writers is None or writers[0].count == 0:
            raise DataError(f"{source}: no unlabelled patch has {min_valid_fraction:.0%} valid pixels")
        for writer in writers:
            writer.close()
        manifest = write_manifest(
            tmp,
            UNLABELLED_STAGE,
            bands=list(BANDS),
            dtype=str(writers[0].dtype),
            patch_size=patch_size,
            counts={"unlabelled": writers[0].count},
            skipped=skipped,
            scenes=scenes,
            **(provenance or {}),
        )
    logger.info("unlabelled patches: %d, %d skipped as mostly empty", manifest["counts"]["unlabelled"], skipped)
    return manifest


def unlabelled_patches(root: Path) -> list[Patch]:
    """The patches of the first of the ``train``/``test`` splits found below ``root`` (ground truth optional)."""
    try:
        return list_patches(root, "train", require_gt=False)
    except DatasetNotFoundError:
        return list_patches(root, "test", require_gt=False)


def check_cloud_folders(
    data_dir: Path | None, unlabelled_dir: Path | None, *, val_fraction: float, split_seed: int, cross_dataset: bool
) -> None:
    """Check from layouts and headers everything a cloud segmentation run will read from local folders.

    For ``data_dir`` (38-Cloud layout): the training patches and their ground truth, at least two training
    scenes (the split is by scene), the test patches and one ground truth per test scene, every band file of
    both splits in one stored type, and the GhalamClouds-layout set of the cross-dataset evaluation when
    ``cross_dataset`` and present. For ``unlabelled_dir``: its patches, in the labelled bands' type when
    ``data_dir`` is given too. No pixel is read, so this runs before any stage.

    Raises:
        DatasetNotFoundError: If a folder or a split is missing.
        DataError: Naming the file (or folder) that is missing, unreadable or unlike the others.
    """
    dtype = None
    if data_dir is not None:
        patches = list_patches(data_dir, "train", require_gt=True)
        dtype = common_type(patch_band_types(patches) + check_test_split(data_dir))
        split_scenes(list(group_by_scene(patches)), val_fraction, split_seed)
        if cross_dataset and (other := find_cross_dataset(data_dir)) is not None:
            common_type(patch_band_types(list_patches(other, "test", require_gt=True)))
    if unlabelled_dir is not None:
        extra = common_type(patch_band_types(unlabelled_patches(unlabelled_dir)))
        if dtype is not None and extra != dtype:
            raise DataError(
                f"{unlabelled_dir}: bands stored as {extra}, the labelled scenes' as {dtype}; "
                "both must come from the same sensor and product"
            )
