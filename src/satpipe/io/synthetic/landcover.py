"""Synthetic multi-class land-cover scenes, written as GeoTIFF image/mask pairs with their ``dataset.yaml``.

Seven classes, named after LoveDA's, with mask values 1..7 and 0 for no data (as LoveDA's masks). Several
classes share their spectra and differ only in spatial context, so a per-pixel rule cannot reach the
ceiling: roads (long, thin, connected), buildings (small rectangles on street blocks, casting shadows)
and barren land (large irregular patches) are the same mineral surface; building and forest shadows fall
on the classes beneath them and darken them towards water; cropland parcels (rectangles with row
texture) pass through tilled soil, green and ripe stages that resemble barren land and grassland.

Scenes also differ from one another along continuous axes that no photometric augmentation reproduces:
the season moves each vegetation class along its own spectral path (grass dormant -> green -> dry,
parcels each at their own growth stage, deciduous forest leafless -> green -> autumn), the mineral
surface and water turbidity change, and streets, lots, road widths, field sizes and orientations, urban
density and shadow lengths are drawn per scene. A model that saw the labels of a few scenes has seen a
few points of that manifold; unlabelled scenes fill the rest. Illumination, haze and per-band sensor gain
vary on top. Values are Sentinel-2 L2A-like digital numbers (``reflectance * 10000 + 1000``, uint16,
0 = no data), 4 bands (blue, green, red, nir), 2 m pixels in UTM.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
import yaml
from rasterio.transform import from_origin
from rich.progress import track
from scipy.ndimage import binary_opening

from satpipe.io.synthetic.textures import fractal_noise

#: Mask value -> class name (0 is no data, LoveDA's convention).
CLASSES: dict[int, str] = {
    1: "grassland",
    2: "building",
    3: "road",
    4: "water",
    5: "barren",
    6: "forest",
    7: "cropland",
}
IGNORE_INDEX = 0
COLORS: dict[str, str] = {
    "grassland": "#a6d96a",
    "building": "#d7301f",
    "road": "#f0f0f0",
    "water": "#2b83ba",
    "barren": "#c8a46e",
    "forest": "#1a9641",
    "cropland": "#ffd92f",
}
BANDS = ("blue", "green", "red", "nir")
PIXEL_SIZE = 2.0  # metres
_ID = {name: value for value, name in CLASSES.items()}

# Reflectance (blue, green, red, nir) of the vegetation end members that the season interpolates between.
_GREEN = np.array([0.030, 0.070, 0.035, 0.420], np.float32)
_DRY = np.array([0.085, 0.115, 0.150, 0.270], np.float32)  # straw, ripe grain, dry grass
_DORMANT = np.array([0.055, 0.075, 0.085, 0.210], np.float32)  # grass before green-up
_EVERGREEN = np.array([0.020, 0.038, 0.022, 0.260], np.float32)
_LEAFLESS = np.array([0.045, 0.055, 0.065, 0.160], np.float32)
_AUTUMN = np.array([0.030, 0.055, 0.075, 0.260], np.float32)
_CLEAR_WATER = np.array([0.050, 0.045, 0.030, 0.012], np.float32)
_TURBID_WATER = np.array([0.080, 0.095, 0.085, 0.035], np.float32)
_SKY = np.array([0.030, 0.024, 0.015, 0.008], np.float32)  # diffuse light that still reaches shadows
_SHADOW = np.array([0.30, 0.24, 0.19, 0.10], np.float32)  # share of the direct light a shadow keeps


@dataclass(frozen=True)
class SceneStyle:
    """What makes one scene differ from another (drawn per scene by :func:`draw_style`)."""

    season: float  # 0 early spring (tilled fields, dormant grass) .. 1 late summer (ripe grain, dry grass)
    deciduous: float  # share of broadleaf trees in forests
    mineral: tuple[float, float, float, float]  # reflectance of roads, roofs and barren land
    turbidity: float
    illumination: float
    haze: float
    band_gain: tuple[float, float, float, float]
    sun_azimuth: float  # radians; shadows fall away from the sun
    shadow_px: float  # shadow length in pixels per unit of object height
    urban_fraction: float
    building_density: float  # share of lots with a building
    lot_px: float
    lots_per_block: tuple[int, int]
    road_px: int
    urban_angle: float
    crop_fraction: float
    field_px: tuple[float, float]  # smallest and largest parcel side
    field_angle: float
    forest_fraction: float
    barren_fraction: float
    lake_fraction: float
    river_px: float  # 0 = no river
    nodata_margin: float  # share of the scene cut off as no data (0 = none)


def draw_style(rng: np.random.Generator) -> SceneStyle:
    """Draw the parameters of one scene."""
    brightness = rng.uniform(0.13, 0.28)
    tint = np.array([0.72, 0.84, 1.0, 1.08]) * (1 + rng.normal(0, 0.06, 4))
    lake = rng.uniform(0.03, 0.09) if rng.random() < 0.7 else 0.0
    min_field = rng.uniform(18, 32)
    return SceneStyle(
        season=float(rng.uniform(0, 1)),
        deciduous=float(rng.uniform(0, 1)),
        mineral=tuple(float(x) for x in brightness * tint),  # type: ignore[arg-type]
        turbidity=float(rng.uniform(0, 1)),
        illumination=float(rng.uniform(0.8, 1.2)),
        haze=float(rng.uniform(0, 0.04)),
        band_gain=tuple(float(x) for x in rng.normal(1, 0.04, 4)),  # type: ignore[arg-type]
        sun_azimuth=float(rng.uniform(0, 2 * np.pi)),
        shadow_px=float(rng.uniform(1.2, 3.5)),
        urban_fraction=float(rng.uniform(0.12, 0.32)),
        building_density=float(rng.uniform(0.45, 0.95)),
        lot_px=float(rng.uniform(9, 16)),
        lots_per_block=(int(rng.integers(2, 5)), int(rng.integers(2, 5))),
        road_px=int(rng.integers(3, 8)),
        urban_angle=float(rng.uniform(0, np.pi)),
        crop_fraction=float(rng.uniform(0.2, 0.45)),
        field_px=(float(min_field), float(min_field + rng.uniform(10, 40))),
        field_angle=float(rng.uniform(0, np.pi)),
        forest_fraction=float(rng.uniform(0.08, 0.25)),
        barren_fraction=float(rng.uniform(0.04, 0.12)),
        lake_fraction=float(lake),
        river_px=float(rng.uniform(6, 16)) if lake == 0 or rng.random() < 0.4 else 0.0,
        nodata_margin=float(rng.uniform(0.08, 0.25)) if rng.random() < 0.3 else 0.0,
    )


@dataclass(frozen=True)
class LandcoverScene:
    """A rendered scene: reflectance ``(4, H, W)`` and mask values ``(H, W)`` (0 = no data)."""

    reflectance: np.ndarray
    labels: np.ndarray
    style: SceneStyle


def _rotated(shape: tuple[int, int], angle: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates rotated by ``angle`` about a random origin: ``u`` along it, ``v`` across it."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy -= rng.uniform(0, h)
    xx -= rng.uniform(0, w)
    return xx * np.cos(angle) + yy * np.sin(angle), -xx * np.sin(angle) + yy * np.cos(angle)


def _zone(
    rng: np.random.Generator, shape: tuple[int, int], fraction: float, beta: float, within: np.ndarray | None = None
) -> np.ndarray:
    """An irregular region covering about ``fraction`` of the scene (inside ``within``), without specks."""
    field = fractal_noise(rng, shape, beta)
    room = field if within is None else field[within]
    if room.size == 0:
        return np.zeros(shape, bool)
    zone = field > np.quantile(room, max(0.0, 1 - fraction * field.size / room.size))
    return binary_opening(zone if within is None else zone & within, iterations=2)


def _vegetation(path: list[np.ndarray], phase: np.ndarray | float) -> np.ndarray:
    """Interpolate ``(4,)`` end members along ``path`` at ``phase`` in [0, 1] (any shape) -> ``(4, *shape)``."""
    phase = np.clip(np.asarray(phase, np.float32), 0, 1) * (len(path) - 1)
    i = np.minimum(phase.astype(int), len(path) - 2)
    t = phase - i
    table = np.stack(path)  # (stages, 4)
    return np.moveaxis(table[i] * (1 - t)[..., None] + table[i + 1] * t[..., None], -1, 0)


def _lot_table(rng: np.random.Generator, size: int = 97) -> dict[str, np.ndarray]:
    """Per-lot random attributes, looked up by lot index modulo ``size`` (a prime, so the pattern does not repeat)."""
    return {name: rng.random((size, size)).astype(np.float32) for name in ("present", "su", "sv", "height", "gain")}


def _urban(
    rng: np.random.Generator, s: SceneStyle, shape: tuple[int, int], zone: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Street grid and buildings inside ``zone``: street mask, building mask, building height, roof gain."""
    u, v = _rotated(shape, s.urban_angle, rng)
    lot, road = s.lot_px, s.road_px
    building = zone.copy()
    key = []
    local = []
    street = np.zeros(shape, bool)
    for coord, lots in ((u, s.lots_per_block[0]), (v, s.lots_per_block[1])):
        period = lots * lot + road
        within = np.mod(coord, period)
        street |= within < road
        index = np.minimum((within - road) // lot, lots - 1)
        key.append((np.floor(coord / period) * lots + index).astype(np.int64) % 97)
        local.append((within - road) - index * lot - lot / 2)
    table = _lot_table(rng)
    attrs = {name: values[key[0], key[1]] for name, values in table.items()}
    half_u = lot * (0.28 + 0.17 * attrs["su"])
    half_v = lot * (0.28 + 0.17 * attrs["sv"])
    building &= ~street & (attrs["present"] < s.building_density)
    building &= (np.abs(local[0]) < half_u) & (np.abs(local[1]) < half_v)
    height = np.where(building, 1 + 2 * attrs["height"], 0).astype(np.float32)
    roof_gain = (0.85 + 0.3 * attrs["gain"]).astype(np.float32)
    return street & zone, building, height, roof_gain


def _road(rng: np.random.Generator, shape: tuple[int, int], width: float) -> np.ndarray:
    """A long meandering road across the scene."""
    u, v = _rotated(shape, rng.uniform(0, np.pi), rng)
    meander = rng.uniform(0, 25) * np.sin(2 * np.pi * u / rng.uniform(120, 400) + rng.uniform(0, 2 * np.pi))
    return np.abs(v - meander) < width / 2


def _parcels(rng: np.random.Generator, s: SceneStyle, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Parcels on an irregular rotated grid: parcel id, row phase in radians, number of parcels."""
    u, v = _rotated(shape, s.field_angle, rng)
    extent = 1.5 * max(shape)
    cuts = []
    for _ in range(2):
        sides = rng.uniform(*s.field_px, size=int(2 * extent / s.field_px[0]) + 2)
        cuts.append(np.cumsum(sides) - extent)
    iu, iv = np.searchsorted(cuts[0], u), np.searchsorted(cuts[1], v)
    parcel = iu * (len(cuts[1]) + 1) + iv
    count = (len(cuts[0]) + 1) * (len(cuts[1]) + 1)
    across = rng.random(count) < 0.5  # rows run along u or along v
    period = rng.uniform(3.5, 7.0, count).astype(np.float32)
    phase = 2 * np.pi * np.where(across[parcel], v, u) / period[parcel]
    return parcel, phase, count


def _cast_shadows(height: np.ndarray, azimuth: float, px_per_unit: float) -> np.ndarray:
    """Pixels in the shadow of objects of ``height`` (0 = ground) with the sun at ``azimuth``."""
    dy, dx = -np.cos(azimuth), np.sin(azimuth)  # shadows fall away from the sun
    reach = height * px_per_unit
    shadow = np.zeros(height.shape, bool)
    h, w = height.shape
    for t in range(1, int(np.ceil(reach.max())) + 1):
        oy, ox = round(t * dy), round(t * dx)
        src = reach[max(0, -oy) : h - max(0, oy), max(0, -ox) : w - max(0, ox)]
        shadow[max(0, oy) : h - max(0, -oy), max(0, ox) : w - max(0, -ox)] |= src >= t
    return shadow & (height == 0)


def render_scene(rng: np.random.Generator, size: int, style: SceneStyle | None = None) -> LandcoverScene:
    """Render one ``size`` x ``size`` scene (style drawn from ``rng`` unless given)."""
    s = style or draw_style(rng)
    shape = (size, size)
    labels = np.full(shape, _ID["grassland"], np.uint8)
    parcel, row_phase, count = _parcels(rng, s, shape)
    # Farmland takes whole parcels: those whose larger part lies in a smooth region.
    share = np.bincount(parcel.ravel(), _zone(rng, shape, s.crop_fraction, 3.2).ravel(), minlength=count)
    crop_zone = (share > 0.5 * np.bincount(parcel.ravel(), minlength=count))[parcel]
    is_crop = rng.random(count) < 0.8  # the rest are meadows: grassland parcels
    labels[crop_zone] = np.where(is_crop[parcel[crop_zone]], _ID["cropland"], _ID["grassland"])
    urban_zone = _zone(rng, shape, s.urban_fraction, 3.5, within=~crop_zone)
    streets, buildings, building_height, roof_gain = _urban(rng, s, shape, urban_zone)
    labels[buildings] = _ID["building"]  # the rest of the town is gardens and lawns: grassland
    labels[streets] = _ID["road"]
    # Forest and barren land share the open country, so every scene has both.
    forest = _zone(rng, shape, s.forest_fraction, 2.8, within=~crop_zone & ~urban_zone)
    labels[forest] = _ID["forest"]
    labels[_zone(rng, shape, s.barren_fraction, 3.4, within=~crop_zone & ~urban_zone & ~forest)] = _ID["barren"]
    water = _zone(rng, shape, s.lake_fraction, 3.4) if s.lake_fraction else np.zeros(shape, bool)
    if s.river_px:
        water |= _road(rng, shape, s.river_px)
    labels[water] = _ID["water"]
    building_height[water] = 0
    for _ in range(int(rng.integers(1, 3))):
        labels[_road(rng, shape, s.road_px)] = _ID["road"]  # bridges cross the water
    building_height[labels != _ID["building"]] = 0

    def texture(beta: float, amount: float) -> np.ndarray:
        return 1 + amount * fractal_noise(rng, shape, beta)

    mineral = np.array(s.mineral, np.float32)
    grass = _vegetation([_DORMANT, _GREEN, _DRY], s.season)
    broadleaf = _vegetation([_LEAFLESS, _GREEN * 0.85, _AUTUMN], s.season)
    forest = s.deciduous * broadleaf + (1 - s.deciduous) * _EVERGREEN
    water_colour = _CLEAR_WATER + s.turbidity * (_TURBID_WATER - _CLEAR_WATER)
    # Each parcel is at its own growth stage: tilled soil (furrows) -> green canopy (rows) -> ripe.
    stage = np.clip(1.25 * s.season + rng.uniform(-0.35, 0.25, count), 0, 1)[parcel]
    cover = np.clip((stage - 0.15) / 0.35, 0, 1) * (1 - 0.5 * (0.5 + 0.5 * np.sin(row_phase)))
    canopy = _vegetation([_GREEN, _GREEN, _DRY], np.clip((stage - 0.5) / 0.5, 0, 1))
    soil = mineral[:, None, None] * 0.7 * (1 + 0.12 * np.sin(row_phase))  # moist tilled soil, furrowed
    crop = soil * (1 - cover) + canopy * cover

    refl = np.empty((4, *shape), np.float32)
    surfaces = {
        "grassland": grass[:, None, None] * texture(2.2, 0.06),
        "forest": forest[:, None, None] * texture(0.9, 0.2),
        "barren": mineral[:, None, None] * texture(2.3, 0.1),
        "cropland": crop,
        "building": mineral[:, None, None] * roof_gain,
        "road": mineral[:, None, None] * texture(2.0, 0.04),
        "water": water_colour[:, None, None] * texture(2.0, 0.03),
    }
    for name, surface in surfaces.items():
        where = labels == _ID[name]
        refl[:, where] = np.broadcast_to(surface, refl.shape)[:, where]

    forest_height = np.where(labels == _ID["forest"], 2.0, 0).astype(np.float32)
    shadow = _cast_shadows(np.maximum(building_height, forest_height), s.sun_azimuth, s.shadow_px)
    refl[:, shadow] = refl[:, shadow] * _SHADOW[:, None] + _SKY[:, None]

    gain = s.illumination * np.array(s.band_gain, np.float32)
    haze = s.haze * np.array([1.0, 0.75, 0.5, 0.25], np.float32)
    refl = refl * gain[:, None, None] + haze[:, None, None] + rng.normal(0, 0.003, refl.shape).astype(np.float32)
    if s.nodata_margin:
        u, _ = _rotated(shape, rng.uniform(0, 2 * np.pi), rng)
        labels[u < np.quantile(u, s.nodata_margin)] = IGNORE_INDEX
    refl[:, labels == IGNORE_INDEX] = 0
    return LandcoverScene(np.clip(refl, 0, None), labels, s)


def digital_numbers(scene: LandcoverScene) -> np.ndarray:
    """Sentinel-2 L2A-like digital numbers (uint16): ``reflectance * 10000 + 1000``, 0 where there is no data."""
    dn = np.clip(scene.reflectance * 10000 + 1000, 1, 65535)
    return np.where(scene.labels[None] == IGNORE_INDEX, 0, dn).astype(np.uint16)


def scene_stem(index: int) -> str:
    """File stem of scene ``index``."""
    return f"scene_{index:04d}"


def _write_pair(root: Path, stem: str, scene: LandcoverScene, index: int) -> None:
    size = scene.labels.shape[0]
    # Scenes lie side by side in one UTM zone, so georeferenced outputs of different scenes never overlap.
    transform = from_origin(500000 + index * size * PIXEL_SIZE, 5500000, PIXEL_SIZE, PIXEL_SIZE)
    profile = {"driver": "GTiff", "height": size, "width": size, "crs": "EPSG:32632", "transform": transform}
    profile |= {"tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    with rasterio.open(root / "images" / f"{stem}.tif", "w", count=4, dtype="uint16", nodata=0, **profile) as dst:
        dst.write(digital_numbers(scene))
        dst.descriptions = BANDS
    with rasterio.open(root / "masks" / f"{stem}.tif", "w", count=1, dtype="uint8", **profile) as dst:
        dst.write(scene.labels, 1)
        palette = {v: (*(int(COLORS[n][i : i + 2], 16) for i in (1, 3, 5)), 255) for v, n in CLASSES.items()}
        dst.write_colormap(1, {IGNORE_INDEX: (0, 0, 0, 0), **palette})


def write_landcover_dataset(
    root: Path,
    *,
    train_scenes: int,
    test_scenes: int,
    size: int = 256,
    seed: int = 0,
    first_index: int = 0,
    progress: bool = True,
) -> Path:
    """Write scenes as ``images/<stem>.tif`` and ``masks/<stem>.tif`` with a ``dataset.yaml`` describing them.

    The last ``test_scenes`` scenes are listed in ``test.txt`` (the description's test split); validation
    scenes are left to the seeded split by scene. Scene ``i`` is drawn from the seed ``[seed, i]``, so
    ``first_index`` continues a series (more scenes, say unlabelled ones, are new scenes, never copies).
    ``scenes.json`` records each scene's :class:`SceneStyle` for analysis; readers ignore it.

    Returns:
        The path of ``dataset.yaml``.
    """
    root = Path(root)
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    indices = range(first_index, first_index + train_scenes + test_scenes)
    styles, test = {}, []
    for i in track(indices, description="synthesizing land-cover scenes", disable=not progress):
        stem = scene_stem(i)
        scene = render_scene(np.random.default_rng([seed, i]), size)
        _write_pair(root, stem, scene, i)
        styles[stem] = asdict(scene.style)
        if i >= first_index + train_scenes:
            test.append(stem)
    (root / "test.txt").write_text("".join(f"{stem}\n" for stem in test))
    (root / "scenes.json").write_text(json.dumps(styles, indent=1))
    description = {
        "name": "synthetic land cover",
        "task": "segmentation",
        "classes": dict(CLASSES),
        "ignore_index": IGNORE_INDEX,
        "bands": list(BANDS),
        "nodata": 0,
        "images": "images/*.tif",
        "masks": "masks/{stem}.tif",
        "splits": {"test": "test.txt"} if test else {},
        "colors": dict(COLORS),
    }
    path = root / "dataset.yaml"
    path.write_text(yaml.safe_dump(description, sort_keys=False))
    return path
