"""Synthetic Sentinel-3 SLSTR scenes in MLCommons CloudMask's HDF5 format.

Scenes are mostly ocean with some land. Low clouds are warm and moderately bright; high clouds are cold,
very bright and visible in the 1.375 um cirrus channel (S4). Cloud edges are thin, so the mask (opacity >=
0.4, as a Bayesian classifier might call it) is not trivially separable. Reflectances (S1-S6) are
top-of-atmosphere; brightness temperatures (S7-S9) are in kelvin. Some files carry a NaN stripe in ``bts``
along the swath edge, as real products can, so that no-data masking is exercised.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from rich.progress import track

from satpipe.io.cloudmask import SCENE_SHAPE, SPLIT_FOLDERS
from satpipe.io.synthetic.textures import fractal_noise

#: Reflectance of each surface in S1..S6 (0.555, 0.659, 0.865, 1.375, 1.61, 2.25 um).
OCEAN = np.array([0.045, 0.03, 0.02, 0.001, 0.012, 0.006], np.float32)
LAND = np.array([0.08, 0.10, 0.26, 0.002, 0.22, 0.13], np.float32)
LOW_CLOUD = np.array([0.42, 0.40, 0.40, 0.01, 0.30, 0.18], np.float32)
HIGH_CLOUD = np.array([0.62, 0.61, 0.60, 0.25, 0.22, 0.10], np.float32)  # ice: bright at 1.375, darker in SWIR


def _layer(rng: np.random.Generator, shape: tuple[int, int], cover: float) -> np.ndarray:
    field = fractal_noise(rng, shape, rng.uniform(2.6, 3.3)) + 0.3 * fractal_noise(rng, shape, 1.8)
    onset = np.quantile(field, 1 - 1.25 * cover)
    return np.clip((field - onset) / rng.uniform(0.6, 1.2), 0, 1).astype(np.float32)


def render_slstr(rng: np.random.Generator, shape: tuple[int, int] = SCENE_SHAPE) -> dict[str, np.ndarray]:
    """One scene as the HDF5 datasets: ``refs`` (H, W, 6), ``bts`` (H, W, 3) and ``bayes`` (H, W)."""
    land = fractal_noise(rng, shape, 2.8) > rng.uniform(0.4, 1.2)
    surface = np.where(land[..., None], LAND, OCEAN) * (1 + 0.08 * fractal_noise(rng, shape, 1.6))[..., None]
    gradient = np.linspace(-1, 1, shape[0], dtype=np.float32)[:, None] * rng.uniform(2, 8)  # latitude
    surface_bt = np.where(land, 296.0, 289.0) + gradient + 1.5 * fractal_noise(rng, shape, 2.2)
    low, high = _layer(rng, shape, rng.uniform(0.1, 0.35)), _layer(rng, shape, rng.uniform(0.05, 0.3))
    high_top = rng.uniform(215, 245)
    refs, bt = surface, surface_bt
    for opacity, cloud_refs, cloud_bt in ((low, LOW_CLOUD, rng.uniform(270, 282)), (high, HIGH_CLOUD, high_top)):
        texture = 1 + 0.08 * fractal_noise(rng, shape, 2.0)
        refs = refs * (1 - opacity[..., None]) + cloud_refs * texture[..., None] * opacity[..., None]
        bt = bt * (1 - opacity) + cloud_bt * opacity
    channels = np.stack([bt, bt - 1.5 - 2 * high, bt - 2.5 - 3 * high], axis=-1)  # split-window differences
    refs += rng.normal(0, 0.004, refs.shape)
    channels += rng.normal(0, 0.15, channels.shape)
    opacity = 1 - (1 - low) * (1 - high)
    return {
        "refs": refs.astype(np.float32),
        "bts": channels.astype(np.float32),
        "bayes": (opacity >= 0.4).astype(np.uint8),
    }


def write_scene(path: Path, datasets: dict[str, np.ndarray]) -> None:
    """Write the datasets as CloudMask's HDF5 layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, data in datasets.items():
            f.create_dataset(key, data=data, compression="gzip", compression_opts=1, shuffle=True)


def file_name(index: int) -> str:
    """An SLSTR Level-1 RBT product name, made unique by ``index``."""
    day, minute = 1 + index % 28, index * 3 % 60
    return f"S3A_SL_1_RBT____201905{day:02d}T10{minute:02d}00_synthetic_{index:04d}.hdf"


def write_cloudmask_dataset(
    root: Path, *, train_files: int, test_files: int, seed: int = 0, progress: bool = True
) -> Path:
    """Write ``one-day/`` (training) and ``ssts/`` (test) folders of synthetic SLSTR files; returns ``root``."""
    jobs = [("train", i) for i in range(train_files)] + [("test", train_files + i) for i in range(test_files)]
    for split, index in track(jobs, description="synthesizing SLSTR scenes", disable=not progress):
        rng = np.random.default_rng([seed, index])
        datasets = render_slstr(rng)
        if index % 5 == 2:  # a NaN stripe along the swath edge, reaching into the reference's centre crop
            datasets["bts"][:, : int(rng.integers(120, 220)), :] = np.nan
        write_scene(Path(root) / SPLIT_FOLDERS[split] / file_name(index), datasets)
    return Path(root)
