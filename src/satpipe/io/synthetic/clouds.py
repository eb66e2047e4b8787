"""Synthetic cloudy Landsat-8-like scenes, written as full GeoTIFFs, 38-Cloud patches and GhalamClouds patches.

A scene has land covers (water, vegetation, forest, bare soil, bright sand, built-up), thick clouds with
thin edges, a sub-threshold haze layer, cloud shadows offset by a common sun direction, and no-data
margins around a rotated footprint, as Landsat scenes have. Ground truth marks clouds whose opacity
reaches one half. Reflectance becomes Landsat-8 L1 DN (``(rho + 0.1) / 2e-5``) for the 38-Cloud copy
and 8-bit values of another sensor for the GhalamClouds copy, so readers, normalisation and
cross-sensor evaluation all see realistic value ranges.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin
from rich.progress import track
from scipy.ndimage import shift as nd_shift

from satpipe.io.cloud38 import BANDS, PATCH_SIZE, padding_offsets
from satpipe.io.synthetic.textures import fractal_noise

#: Reflectance of each surface in (red, green, blue, nir).
SURFACES: dict[str, tuple[float, float, float, float]] = {
    "water": (0.03, 0.05, 0.07, 0.02),
    "vegetation": (0.05, 0.08, 0.05, 0.32),
    "forest": (0.03, 0.05, 0.03, 0.25),
    "soil": (0.18, 0.15, 0.12, 0.26),
    "sand": (0.36, 0.32, 0.26, 0.40),  # bright like thin cloud in the visible: a classic confounder
    "urban": (0.16, 0.15, 0.15, 0.19),
}
CLOUD = np.array([0.62, 0.63, 0.67, 0.64], dtype=np.float32)
#: Per-band gain and offset of the 8-bit sensor used for the GhalamClouds-style copy.
GHALAM_GAIN = np.array([300.0, 320.0, 340.0, 220.0], dtype=np.float32)
GHALAM_OFFSET = np.array([8.0, 10.0, 14.0, 4.0], dtype=np.float32)


@dataclass(frozen=True)
class CloudScene:
    """A rendered scene: reflectance ``(4, H, W)``, cloud mask and valid-data footprint ``(H, W)``."""

    reflectance: np.ndarray
    clouds: np.ndarray
    valid: np.ndarray


def _land_cover(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    elevation, moisture = fractal_noise(rng, shape, 2.8), fractal_noise(rng, shape, 2.4)
    names = list(SURFACES)
    cover = np.full(shape, names.index("soil"))
    cover[moisture > -0.3] = names.index("vegetation")
    cover[(moisture > 0.6) & (elevation > 0)] = names.index("forest")
    cover[fractal_noise(rng, shape, 2.0) > 1.6] = names.index("urban")
    water_level = np.quantile(elevation, rng.uniform(0.05, 0.25))
    cover[(elevation < water_level + 0.25) & (elevation >= water_level) & (moisture < 0.2)] = names.index("sand")
    cover[elevation < water_level] = names.index("water")
    table = np.array([SURFACES[n] for n in names], dtype=np.float32)  # (classes, 4)
    surface = table[cover].transpose(2, 0, 1)  # (4, H, W)
    return surface * (1 + 0.08 * fractal_noise(rng, shape, 1.5))[None]


def _footprint(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A rotated rectangle covering most of the raster, like a Landsat scene inside its WRS-2 frame."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = np.deg2rad(rng.uniform(-14, 14))
    u = (xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)
    v = -(xx - w / 2) * np.sin(angle) + (yy - h / 2) * np.cos(angle)
    return (np.abs(u) < rng.uniform(0.38, 0.47) * w) & (np.abs(v) < rng.uniform(0.38, 0.47) * h)


def render_scene(rng: np.random.Generator, height: int, width: int) -> CloudScene:
    """Render one cloudy scene."""
    shape = (height, width)
    surface = _land_cover(rng, shape)
    cover = rng.uniform(0.12, 0.5)
    field = fractal_noise(rng, shape, rng.uniform(2.6, 3.3)) + 0.25 * fractal_noise(rng, shape, 1.8)
    onset = np.quantile(field, 1 - 1.3 * cover)
    density = np.clip((field - onset) / rng.uniform(0.5, 1.1), 0, 1)  # opacity: thin edges, thick cores
    haze = 0.3 * np.clip(fractal_noise(rng, shape, 3.0), 0, 1) * rng.uniform(0, 1)  # never enough to count as cloud
    opacity = 1 - (1 - density) * (1 - haze)
    direction = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(0.02, 0.05) * max(shape)
    shadow = nd_shift(density, (distance * np.sin(direction), distance * np.cos(direction)), order=1, cval=0.0)
    ground = surface * (1 - 0.55 * shadow)[None]
    cloud_tops = CLOUD[:, None, None] * (1 + 0.06 * fractal_noise(rng, shape, 2.0))[None]
    reflectance = ground * (1 - opacity)[None] + cloud_tops * opacity[None]
    reflectance += rng.normal(0, 0.003, size=reflectance.shape)
    valid = _footprint(rng, shape)
    reflectance[:, ~valid] = 0
    clouds = (density >= 0.5) & valid
    return CloudScene(np.clip(reflectance, 0, None).astype(np.float32), clouds, valid)


def landsat_dn(scene: CloudScene) -> np.ndarray:
    """Landsat-8 L1 digital numbers (uint16), 0 outside the footprint."""
    dn = np.clip((scene.reflectance + 0.1) / 2e-5, 1, 65535)
    return np.where(scene.valid[None], dn, 0).astype(np.uint16)


def ghalam_dn(scene: CloudScene) -> np.ndarray:
    """8-bit values of another sensor (uint8), 0 outside the footprint."""
    dn = np.clip(scene.reflectance * GHALAM_GAIN[:, None, None] + GHALAM_OFFSET[:, None, None], 1, 255)
    return np.where(scene.valid[None], dn, 0).astype(np.uint8)


def _write(path: Path, data: np.ndarray, **profile: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = data if data.ndim == 3 else data[None]
    with warnings.catch_warnings():  # patches carry no georeferencing, as 38-Cloud's do not
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        _write_raster(path, data, **profile)


def _write_raster(path: Path, data: np.ndarray, **profile: object) -> None:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        count=data.shape[0],
        height=data.shape[1],
        width=data.shape[2],
        dtype=data.dtype.name,
        **profile,
    ) as dst:
        dst.write(data)


def pad_like_38cloud(data: np.ndarray, size: int = PATCH_SIZE) -> np.ndarray:
    """Zero-pad ``(..., H, W)`` to multiples of ``size``, half the padding before (rounded down)."""
    h, w = data.shape[-2:]
    padded = (-(-h // size) * size, -(-w // size) * size)
    top, left = padding_offsets(padded, (h, w))
    out = np.zeros((*data.shape[:-2], *padded), dtype=data.dtype)
    out[..., top : top + h, left : left + w] = data
    return out


def write_patches(root: Path, split: str, scene_id: str, dn: np.ndarray, gt: np.ndarray | None, *, style: str) -> None:
    """Cut a padded scene into 384x384 patches, one file per band, named as in 38-Cloud or GhalamClouds."""
    image, mask = pad_like_38cloud(dn), pad_like_38cloud(gt) if gt is not None else None
    rows, cols = image.shape[1] // PATCH_SIZE, image.shape[2] // PATCH_SIZE
    for r in range(rows):
        for c in range(cols):
            window = np.s_[r * PATCH_SIZE : (r + 1) * PATCH_SIZE, c * PATCH_SIZE : (c + 1) * PATCH_SIZE]
            if style == "38cloud":
                name = f"patch_{r * cols + c + 1}_{r + 1}_by_{c + 1}_{scene_id}.TIF"
            else:
                name = f"{scene_id}_{r + 1:03d}_{c + 1:03d}.tif"
            for b, band in enumerate(BANDS):
                _write(root / f"{split}_{band}" / f"{band}_{name}", image[b][window])
            if mask is not None:
                _write(root / f"{split}_gt" / f"gt_{name}", (mask[window] * 255).astype(np.uint8))


def scene_id(index: int) -> str:
    """A Landsat-8 product id (38-Cloud's evaluation finds scene ids by their 'LC' prefix)."""
    return f"LC08_L1TP_{900 + index:03d}{100 + index:03d}_20200101_20200115_01_T1"


def write_cloud_dataset(
    root: Path,
    *,
    train_scenes: int,
    test_scenes: int,
    size: int,
    seed: int = 0,
    first_index: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """Write a synthetic 38-Cloud, its full scenes as GeoTIFFs, and an 8-bit GhalamClouds-style test set.

    The 38-Cloud copy has training patches with ground truth, test patches and whole-scene ground
    truths; the full scenes carry a CRS; the GhalamClouds copy holds the test scenes as another sensor.
    Scene ``i`` is drawn from the seed ``[seed, i]``; ``first_index`` continues a series, so more scenes
    from one seed (say, unlabelled ones) are new scenes, never copies.

    Returns:
        The roots ``training``, ``test``, ``scenes`` and ``ghalam``.
    """
    root = Path(root)
    out = {
        "training": root / "38-Cloud_training",
        "test": root / "38-Cloud_test",
        "scenes": root / "scenes",
        "ghalam": root / "GhalamClouds",
    }
    jobs = [(first_index + i, "train" if i < train_scenes else "test") for i in range(train_scenes + test_scenes)]
    for index, split in track(jobs, description="synthesizing cloudy scenes", disable=not progress):
        scene = render_scene(np.random.default_rng([seed, index]), size, size)
        dn, sid = landsat_dn(scene), scene_id(index)
        transform = from_origin(300000 + 30 * size * index, 5200000, 30.0, 30.0)
        _write(out["scenes"] / f"{sid}.TIF", dn, crs="EPSG:32633", transform=transform, nodata=0)
        _write(
            out["scenes"] / f"{sid}_gt.TIF", scene.clouds.astype(np.uint8) * 255, crs="EPSG:32633", transform=transform
        )
        if split == "train":
            write_patches(out["training"], "train", sid, dn, scene.clouds, style="38cloud")
        else:
            write_patches(out["test"], "test", sid, dn, None, style="38cloud")
            _write(
                out["test"] / "Entire_scene_gts" / f"edited_corrected_gts_{sid}.TIF",
                scene.clouds.astype(np.uint8) * 255,
            )
            write_patches(out["ghalam"], "test", f"GC{index:04d}", ghalam_dn(scene), scene.clouds, style="ghalam")
    return out
