"""Synthetic EuroSAT: 10 land-cover classes written as RGB JPEGs and 13-band GeoTIFFs.

Classes differ in spectrum (water dark in NIR, vegetation bright in NIR and dark in red, built-up
flat and bright) and in texture (field stripes, orchard dots, roads, rivers, building blocks), with
per-chip illumination, per-band offsets and sensor noise, so a model must look at both colour and
shape. Output is deterministic for a seed and uses EuroSAT's own folder layout and file names.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from rich.progress import track

from satpipe.io.eurosat import BAND_NAMES, CLASSES, IMAGE_DIRS, VALUE_SCALE
from satpipe.io.synthetic.textures import blend, fractal_noise, oriented_coords, rectangles

logger = logging.getLogger(__name__)

CHIP_SIZE = 64
#: Top-of-atmosphere reflectance of each material in EuroSAT MS band order (B01..B12, B8A).
MATERIALS: dict[str, np.ndarray] = {
    name: np.array(values, dtype=np.float32)
    for name, values in {
        #            B01   B02   B03   B04   B05   B06   B07   B08   B09   B10    B11   B12   B8A
        "crop": (0.12, 0.09, 0.10, 0.06, 0.12, 0.30, 0.36, 0.38, 0.12, 0.008, 0.20, 0.10, 0.40),
        "soil": (0.14, 0.13, 0.15, 0.18, 0.20, 0.22, 0.23, 0.24, 0.09, 0.012, 0.30, 0.24, 0.25),
        "forest": (0.11, 0.08, 0.07, 0.04, 0.07, 0.18, 0.23, 0.25, 0.08, 0.005, 0.11, 0.05, 0.26),
        "grass": (0.12, 0.09, 0.11, 0.08, 0.13, 0.24, 0.28, 0.30, 0.10, 0.008, 0.22, 0.13, 0.31),
        "pasture": (0.12, 0.09, 0.12, 0.07, 0.14, 0.31, 0.38, 0.41, 0.13, 0.008, 0.21, 0.11, 0.43),
        "asphalt": (0.13, 0.11, 0.11, 0.11, 0.12, 0.13, 0.14, 0.14, 0.06, 0.010, 0.15, 0.13, 0.15),
        "roof": (0.20, 0.20, 0.21, 0.23, 0.24, 0.25, 0.26, 0.26, 0.09, 0.015, 0.30, 0.27, 0.27),
        "tile": (0.14, 0.11, 0.11, 0.17, 0.19, 0.20, 0.21, 0.21, 0.08, 0.012, 0.25, 0.20, 0.22),
        "water": (0.11, 0.08, 0.06, 0.04, 0.035, 0.025, 0.02, 0.018, 0.01, 0.003, 0.01, 0.007, 0.016),
        "river": (0.11, 0.09, 0.08, 0.06, 0.05, 0.035, 0.03, 0.028, 0.012, 0.003, 0.015, 0.01, 0.026),
    }.items()
}
#: Multiplier from reflectance to 8-bit RGB, as if the JPEG product were stretched to 0..0.29 reflectance.
RGB_GAIN = 3.5 * 255
#: Indices of B04, B03, B02 in the MS band order.
RGB_INDICES = tuple(BAND_NAMES["ms"].index(b) for b in BAND_NAMES["rgb"])


def _textured(
    rng: np.random.Generator, material: str, shape: tuple[int, int], amount: float, beta: float
) -> np.ndarray:
    return MATERIALS[material][:, None, None] * (1 + amount * fractal_noise(rng, shape, beta))[None]


def render_chip(label: int, rng: np.random.Generator, size: int = CHIP_SIZE) -> np.ndarray:
    """Render one chip of class ``CLASSES[label]`` as ``(13, size, size)`` reflectance."""
    shape = (size, size)
    name = CLASSES[label]
    u, v = oriented_coords(rng, shape)
    M = MATERIALS
    if name == "AnnualCrop":  # parallel fields alternating crop and bare soil
        period = rng.uniform(8, 18)
        fields = np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi)) > rng.uniform(-0.3, 0.3)
        img = blend([(fields, M["crop"])], _textured(rng, "soil", shape, 0.08, 2))
    elif name == "Forest":
        img = _textured(rng, "forest", shape, 0.18, 1.2)
    elif name == "HerbaceousVegetation":  # patchy grass with bare spots
        soil = fractal_noise(rng, shape, 2.5) > rng.uniform(0.3, 0.9)
        img = blend([(soil, M["soil"] * 0.9)], _textured(rng, "grass", shape, 0.12, 1.8))
    elif name == "Highway":  # a straight road across fields
        road = np.abs(v - rng.uniform(-12, 12)) < rng.uniform(1.5, 3.5)
        img = blend([(road, M["asphalt"])], _textured(rng, rng.choice(["grass", "crop"]), shape, 0.12, 2))
    elif name == "Industrial":  # large flat roofs on concrete
        roofs = rectangles(rng, shape, int(rng.integers(3, 6)), (14, 30))
        img = blend([(roofs, M["roof"] * rng.uniform(0.95, 1.15))], _textured(rng, "asphalt", shape, 0.05, 2))
    elif name == "Pasture":
        img = _textured(rng, "pasture", shape, 0.05, 3)
    elif name == "PermanentCrop":  # orchard rows: a grid of tree crowns over grass
        period = rng.uniform(4.5, 7)
        trees = (np.sin(2 * np.pi * u / period) > 0.2) & (np.sin(2 * np.pi * v / period) > 0.2)
        img = blend(
            [(trees, M["forest"])], _textured(rng, "soil", shape, 0.06, 2) * 0.7 + M["grass"][:, None, None] * 0.3
        )
    elif name == "Residential":  # small houses between gardens and streets
        houses = rectangles(rng, shape, int(rng.integers(25, 40)), (3, 6))
        street = np.abs(v - rng.uniform(-16, 16)) < 1.5
        img = blend([(houses, M["tile"]), (street, M["asphalt"])], _textured(rng, "grass", shape, 0.15, 1.5))
    elif name == "River":  # a meandering channel through vegetation
        centre = rng.uniform(4, 10) * np.sin(2 * np.pi * u / rng.uniform(40, 90) + rng.uniform(0, 2 * np.pi))
        channel = np.abs(v - centre - rng.uniform(-8, 8)) < rng.uniform(3, 7)
        img = blend([(channel, M["river"])], _textured(rng, rng.choice(["grass", "forest", "crop"]), shape, 0.12, 2))
    else:  # SeaLake: open water, sometimes with a strip of shore
        img = _textured(rng, "water", shape, 0.04, 3)
        if rng.random() < 0.3:
            img = blend([(v > rng.uniform(18, 28), M["grass"])], img)
    illumination = rng.uniform(0.85, 1.15)
    band_offsets = 1 + rng.normal(0, 0.03, size=(img.shape[0], 1, 1))
    img = img * illumination * band_offsets + rng.normal(0, 0.004, size=img.shape)
    return np.clip(img, 0, None).astype(np.float32)


def write_dataset(root: Path, per_class: int, seed: int = 0, *, progress: bool = True) -> dict[str, Path]:
    """Write a synthetic EuroSAT with ``per_class`` chips per class in both published layouts.

    Args:
        root: Folder to write into (``root/2750/...`` and ``root/ds/.../tif/...``).
        per_class: Chips per class.
        seed: Everything written is a pure function of the seed and ``per_class``.
        progress: Show a progress bar.

    Returns:
        The image root for each product, keyed ``"rgb"`` and ``"ms"``.
    """
    roots = {bands: Path(root) / IMAGE_DIRS[bands] for bands in ("rgb", "ms")}
    jobs = [(label, n) for label in range(len(CLASSES)) for n in range(1, per_class + 1)]
    for label, n in track(jobs, description="synthesizing EuroSAT", disable=not progress):
        rng = np.random.default_rng([seed, label, n])
        reflectance = render_chip(label, rng)
        stem = f"{CLASSES[label]}_{n}"
        _write_tif(roots["ms"] / CLASSES[label] / f"{stem}.tif", reflectance, rng)
        rgb = np.clip(reflectance[list(RGB_INDICES)] * RGB_GAIN, 0, 255).round().astype(np.uint8)
        jpg = roots["rgb"] / CLASSES[label] / f"{stem}.jpg"
        jpg.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb.transpose(1, 2, 0)).save(jpg, quality=95)
    return roots


def _write_tif(path: Path, reflectance: np.ndarray, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    dn = np.clip(reflectance * VALUE_SCALE["ms"], 0, 65535).round().astype(np.uint16)
    # A random 10 m grid position in UTM zone 32N, where much of EuroSAT lies.
    transform = from_origin(rng.uniform(3e5, 7e5), rng.uniform(5.0e6, 5.6e6), 10.0, 10.0)
    profile = {
        "driver": "GTiff",
        "width": dn.shape[2],
        "height": dn.shape[1],
        "count": dn.shape[0],
        "dtype": "uint16",
        "crs": "EPSG:32632",
        "transform": transform,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn)
        dst.descriptions = BAND_NAMES["ms"]
