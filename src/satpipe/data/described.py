"""Segmentation patches of a user's own dataset, described by its ``dataset.yaml``.

A prepared folder holds ``<split>_images.npy`` (N, C, P, P in the source dtype) and ``<split>_masks.npy``
(N, P, P uint8: class ids ``0 .. K-1`` in the order of the description's classes, 255 for pixels without
data, without a label, and for padding) for the ``train`` and ``val`` splits, and a manifest with the
scenes of every split (test scenes are only named: they are evaluated whole), the classes and their
colours, the labelled pixels per class, and the per-band percentiles of the training split's pixels with
data. Scenes go whole to one split, so no scene leaks into another split's patches.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rich.progress import track

from satpipe.artifacts import atomic_dir, write_manifest
from satpipe.data.npy import NpyAppender
from satpipe.data.patches import IGNORE, PATCH_STAGE, PERCENTILES, SAMPLES_PER_PATCH, cut, split_scenes
from satpipe.errors import DataError
from satpipe.io.dataset_files import Scene, SceneCheck, check_scenes, list_scenes
from satpipe.io.description import DatasetDescription, read_description

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
PATCHED = ("train", "val")  #: the splits cut into patches; test scenes are evaluated whole


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def split_described(
    desc: DatasetDescription, scenes: list[Scene], *, val_fraction: float, test_fraction: float, split_seed: int
) -> dict[str, list[str]]:
    """Assign whole scenes to train, val and test: the description's splits first, then a seeded draw.

    Scenes whose split the description fixes keep it. Unless some scene is fixed to test,
    ``round(n * test_fraction)`` (at least 1) of the ``n`` others are held out as test; unless some scene
    is fixed to val, ``val_fraction`` of those left (at least 1) go to val; the rest are train.

    Returns:
        The sorted stems of each split.

    Raises:
        DataError: Naming the description, if a split would end up without a scene.
    """
    fixed = {name: sorted(s.stem for s in scenes if s.split == name) for name in SPLITS}
    free = sorted(s.stem for s in scenes if s.split is None)
    drawn = [name for name in SPLITS if not fixed[name]]
    if len(free) < len(drawn):
        if fixed["train"]:  # list_scenes leaves out every unlisted image once train is listed
            raise DataError(
                f"{desc.path}: splits lists train, so images in no split are left out, and no scene is left for "
                f"{_listed(drawn)}; list {_listed(drawn)} scenes under splits too"
            )
        given = [name for name in SPLITS if fixed[name]]
        outside = f" outside the {_listed(given)} split{'s' if len(given) > 1 else ''}" if given else ""
        raise DataError(
            f"{desc.path}: {len(free)} scene(s){outside}; a split by scene into {_listed(drawn)} "
            f"needs at least {len(drawn)}"
        )
    split = {name: list(stems) for name, stems in fixed.items()}
    rest = free
    if "test" in drawn:
        order = np.random.default_rng(split_seed).permutation(len(rest))
        # Leave at least one scene for each split still to be drawn.
        n_test = min(len(rest) - len(drawn) + 1, max(1, round(len(rest) * test_fraction)))
        split["test"] = [rest[i] for i in order[:n_test]]
        rest = sorted(set(rest) - set(split["test"]))
    if "val" in drawn and "train" in drawn:
        # Drawn as the cloud datasets draw their val scenes, so both stages mean the same by split_seed.
        train_val = split_scenes(rest, val_fraction, split_seed)
        split["val"], split["train"] = train_val["val"], train_val["train"]
    elif "val" in drawn:
        split["val"] = rest
    else:
        split["train"] += rest
    for name in SPLITS:
        if not split[name]:
            raise DataError(f"{desc.path}: no scene is left for the {name} split")
    return {name: sorted(split[name]) for name in SPLITS}


def _check(
    data_dir: Path, val_fraction: float, test_fraction: float, split_seed: int, progress: bool
) -> tuple[DatasetDescription, list[Scene], SceneCheck, dict[str, list[str]]]:
    desc = read_description(Path(data_dir))
    if desc.task != "segmentation":
        raise DataError(
            f"{desc.path}: task: {desc.task!r}, but scenes are segmented from task: segmentation datasets only"
        )
    scenes = list_scenes(desc)
    check = check_scenes(desc, scenes, progress=progress)
    split = split_described(desc, scenes, val_fraction=val_fraction, test_fraction=test_fraction, split_seed=split_seed)
    return desc, scenes, check, split


def check_described_folder(
    data_dir: Path, *, val_fraction: float, test_fraction: float, split_seed: int, progress: bool = False
) -> tuple[DatasetDescription, SceneCheck, dict[str, list[str]]]:
    """Check everything a run will read from a described segmentation folder, before any stage runs.

    Reads the description, lists the scenes, reads every image's last rows and every mask whole (see
    :func:`~satpipe.io.dataset_files.check_scenes`) and splits the scenes.

    Returns:
        The description, what the check found, and the stems of each split.

    Raises:
        DatasetNotFoundError: If the folder or its ``dataset.yaml`` does not exist.
        DataError: One line naming the file and the problem.
    """
    desc, _, check, split = _check(data_dir, val_fraction, test_fraction, split_seed, progress)
    return desc, check, split


def _read_scene(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    try:
        with warnings.catch_warnings():  # PNG and JPEG carry no georeference, which is fine
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(scene.image) as img, rasterio.open(scene.mask) as msk:
                return img.read(), msk.read(1)
    except RasterioError as e:
        raise DataError(f"{scene.image}: unreadable scene ({str(e).splitlines()[0][:200]})") from None


def _has_data(desc: DatasetDescription, image: np.ndarray) -> np.ndarray:
    """Pixels where some band differs from the no-data value (0 when the description gives none)."""
    nodata = 0 if desc.nodata is None else desc.nodata
    if isinstance(nodata, float) and math.isnan(nodata):
        return ~np.all(np.isnan(image), axis=0)
    return ~np.all(image == nodata, axis=0)


def prepare_described_patches(
    data_dir: Path,
    out_dir: Path,
    *,
    patch_size: int,
    overlap: int,
    min_valid_fraction: float,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Cut the train and val scenes of a described segmentation dataset into patch arrays.

    Every file is checked first (:func:`check_described_folder`). Scenes are padded and cut as the cloud
    scenes are (:func:`~satpipe.data.patches.cut`); patches with less than ``min_valid_fraction`` of
    pixels with data are skipped. Nothing is placed in ``out_dir`` unless every split has a patch.

    Returns:
        The manifest written to ``out_dir``.

    Raises:
        DataError: If a file is bad, a split has no scene, or a split ends up without a patch.
    """
    data_dir = Path(data_dir)
    desc, scenes, check, split = _check(data_dir, val_fraction, test_fraction, split_seed, progress)
    by_stem = {scene.stem: scene for scene in scenes}
    dtype = np.dtype(check.image.dtype)
    shape = (check.image.count, patch_size, patch_size)
    rng = np.random.default_rng(split_seed)
    samples: list[np.ndarray] = []
    kept: dict[str, dict[str, int]] = {name: {} for name in PATCHED}
    class_pixels = {name: np.zeros(desc.num_classes, np.int64) for name in PATCHED}
    skipped = 0
    with atomic_dir(Path(out_dir)) as tmp:
        writers = {
            name: (
                NpyAppender(tmp / f"{name}_images.npy", shape, dtype),
                NpyAppender(tmp / f"{name}_masks.npy", shape[1:], np.uint8),
            )
            for name in PATCHED
        }
        jobs = [(name, stem) for name in PATCHED for stem in split[name]]
        for name, stem in track(jobs, description="cutting patches", disable=not progress):
            image, values = _read_scene(by_stem[stem])
            has_data = _has_data(desc, image)
            mask = np.where(has_data, desc.class_ids(values), IGNORE).astype(np.uint8)
            # The description's nodata need not be 0, so validity is cut alongside rather than read off the image.
            data_pieces = cut(has_data[None], mask, patch_size, overlap)
            kept[name][stem] = 0
            for (piece, piece_mask), (data, _) in zip(cut(image, mask, patch_size, overlap), data_pieces, strict=True):
                if data.mean() < min_valid_fraction:
                    skipped += 1
                    continue
                writers[name][0].append(piece)
                writers[name][1].append(piece_mask)
                kept[name][stem] += 1
                class_pixels[name] += np.bincount(piece_mask.ravel(), minlength=IGNORE + 1)[: desc.num_classes]
                pixels = piece[:, data[0]]
                if name == "train" and pixels.shape[1]:
                    take = rng.choice(pixels.shape[1], min(SAMPLES_PER_PATCH, pixels.shape[1]), replace=False)
                    samples.append(pixels[:, take])
        for name in PATCHED:
            if writers[name][0].count == 0:
                raise DataError(
                    f"{data_dir}: no {name} patch has {min_valid_fraction:.0%} pixels with data; "
                    "lower data.min_valid_fraction"
                )
            for writer in writers[name]:
                writer.close()
        labelled = int(class_pixels["train"].sum())
        if labelled == 0:
            raise DataError(f"{data_dir}: the train patches hold no labelled pixel (every mask value is ignored)")
        low, high = np.percentile(np.concatenate(samples, axis=1), PERCENTILES, axis=1)
        manifest = write_manifest(
            tmp,
            PATCH_STAGE,
            bands=list(desc.bands) if desc.bands else [f"band{i + 1}" for i in range(check.image.count)],
            dtype=str(dtype),
            value_max=float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0,
            patch_size=patch_size,
            overlap=overlap,
            min_valid_fraction=min_valid_fraction,
            counts={name: writers[name][0].count for name in PATCHED},
            skipped=skipped,
            scenes=kept,
            test_scenes=sorted(split["test"]),
            # Percentiles of training pixels with data (Sat-UNet's normalisation), in stored units.
            percentiles={"low": low.tolist(), "high": high.tolist(), "q": list(PERCENTILES)},
            split={"val_fraction": val_fraction, "test_fraction": test_fraction, "seed": split_seed},
            classes=list(desc.classes),
            colors=list(desc.colors),
            ignore_index=IGNORE,
            nodata=desc.nodata,
            class_pixels={name: class_pixels[name].tolist() for name in PATCHED},
            class_frequencies=(class_pixels["train"] / labelled).tolist(),
            dataset=desc.name,
            georeferenced=check.georeferenced,
            **(provenance or {}),
        )
    logger.info("%s patches: %s, %d skipped as mostly empty", desc.name, manifest["counts"], skipped)
    return manifest
