"""38-Cloud, 95-Cloud and GhalamClouds on disk: patch layouts, scene ground truths, validated reading.

38-Cloud (Mohajerani & Saeedi) cuts Landsat-8 scenes, zero-padded symmetrically to a multiple of 384,
into 384x384 patches stored one band per file: ``{split}_{band}/{band}_patch_{n}_{row}_by_{col}_{scene}.TIF``
with 1-based ``row`` and ``col`` (uint16 DN; ground truth uint8 0/255). Test ground truth exists only per
scene: ``Entire_scene_gts/edited_corrected_gts_{scene}.TIF``. 95-Cloud adds scenes in the same layout.
GhalamClouds uses the same folders with uint8 bands and names ``{band}_{id}.tif``. A folder holding all
band files side by side (no per-band folders) is read too.

No data: 0 in every band (the scenes' margins and the padding). Float bands may also mark missing values
as NaN or infinite; a pixel with such a value in any band is no data too, read as 0 in every band, so it
is left out of training, of the percentiles and of every score, as CloudMask's reader does.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from satpipe.errors import DataError, DatasetNotFoundError
from satpipe.io.headers import common_value, quiet_gdal, raster_header
from satpipe.io.rasters import blank_non_finite

BANDS = ("red", "green", "blue", "nir")
PATCH_SIZE = 384
SUFFIXES = (".tif", ".tiff")
_LANDSAT = re.compile(r"^patch_(?P<index>\d+)_(?P<row>\d+)_by_(?P<col>\d+)_(?P<scene>.+)$", re.IGNORECASE)
_GRID = re.compile(r"^(?P<scene>.+?)_(?P<row>\d+)_(?P<col>\d+)$")


@dataclass(frozen=True)
class Patch:
    """One patch: its band files in :data:`BANDS` order, its ground truth, and where it sits in its scene."""

    name: str
    scene: str
    row: int | None
    col: int | None
    bands: tuple[Path, ...]
    gt: Path | None


def _parse(name: str) -> tuple[str, int | None, int | None]:
    if m := _LANDSAT.match(name):
        return m["scene"], int(m["row"]), int(m["col"])
    if m := _GRID.match(name):
        return m["scene"], int(m["row"]), int(m["col"])
    return name, None, None


def _band_folders(root: Path, split: str) -> dict[str, Path]:
    wanted = {f"{split}_{band}".lower(): band for band in (*BANDS, "gt")}
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_dir() and path.name.lower() in wanted and len(path.relative_to(root).parts) <= 4:
            found.setdefault(wanted[path.name.lower()], path)
    return found


def _files_by_name(folder: Path, band: str) -> dict[str, Path]:
    prefix = f"{band}_"
    return {
        p.stem[len(prefix) :]: p
        for p in folder.iterdir()
        if p.suffix.lower() in SUFFIXES and p.name.lower().startswith(prefix) and not p.name.startswith(".")
    }


def list_patches(root: Path, split: str, *, require_gt: bool) -> list[Patch]:
    """List the patches of a split (``"train"`` or ``"test"``), checking every band has every patch.

    Raises:
        DatasetNotFoundError: If ``root`` is missing or holds no patches of this split.
        DataError: If a band folder or a band file is missing.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: data folder does not exist")
    folders = _band_folders(root, split)
    if not folders:  # a flat folder with every band side by side
        folders = {band: root for band in (*BANDS, "gt") if _files_by_name(root, band)}
    if not folders:
        raise DatasetNotFoundError(
            f"{root}: no {split} patches found (expected {split}_red/, {split}_green/, {split}_blue/, {split}_nir/ "
            "folders of {band}_patch_*.TIF files, or those files side by side)"
        )
    for band in (*BANDS, "gt") if require_gt else BANDS:
        if band not in folders:
            where = next(iter(folders.values())).parent
            raise DataError(f"{where}: band folder '{split}_{band}' missing")
    files = {band: _files_by_name(folders[band], band) for band in folders}
    names = sorted(files["red"])
    if not names:
        raise DatasetNotFoundError(f"{folders['red']}: no red_*.tif patches")
    patches = []
    for name in names:
        paths = []
        for band in BANDS:
            if name not in files[band]:
                raise DataError(f"{folders[band]}: {band}_{name}.TIF missing (red_{name} has no {band} band)")
            paths.append(files[band][name])
        gt = files.get("gt", {}).get(name)
        if require_gt and gt is None:
            raise DataError(f"{folders['gt']}: gt_{name}.TIF missing")
        scene, row, col = _parse(name)
        patches.append(Patch(name, scene, row, col, tuple(paths), gt))
    return patches


def _read_single_band(path: Path) -> np.ndarray:
    try:
        with quiet_gdal():
            src = rasterio.open(path)
        with src:
            if src.count != 1:
                raise DataError(f"{path}: expected one band per file, got {src.count}")
            return src.read(1)
    except RasterioIOError as e:
        raise DataError(f"{path}: unreadable raster ({e})") from None


def read_ground_truth(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a cloud mask stored as 0/255 (or 0/1) into booleans.

    Raises:
        DataError: If it has another shape than expected or values other than the two allowed.
    """
    gt = _read_single_band(Path(path))
    if shape is not None and gt.shape != shape:
        raise DataError(f"{path}: ground truth is {gt.shape[1]}x{gt.shape[0]}, the image is {shape[1]}x{shape[0]}")
    values = np.unique(gt)
    if not (set(values.tolist()) <= {0, 255} or set(values.tolist()) <= {0, 1}):
        odd = [v for v in values.tolist() if v not in (0, 1, 255)][:5] or values.tolist()[:5]
        raise DataError(f"{path}: ground truth holds values {odd}; expected only 0 and 255")
    return gt > 0


def read_patch(patch: Patch) -> tuple[np.ndarray, np.ndarray | None]:
    """Bands ``(4, H, W)`` in the stored dtype and the boolean mask (or None without ground truth).

    Pixels with a NaN or infinite value in any band are read as no data (0 in every band).

    Raises:
        DataError: If a band file is unreadable, or the band files differ in size or stored type.
    """
    bands = [_read_single_band(p) for p in patch.bands]
    for path, band in zip(patch.bands, bands, strict=True):
        if band.shape != bands[0].shape:
            raise DataError(
                f"{path}: {band.shape[1]}x{band.shape[0]} pixels, but {patch.bands[0].name} is "
                f"{bands[0].shape[1]}x{bands[0].shape[0]}"
            )
        if band.dtype != bands[0].dtype:
            raise DataError(f"{path}: {band.dtype} values, but {patch.bands[0].name} holds {bands[0].dtype}")
    image = blank_non_finite(np.stack(bands), 0)
    gt = read_ground_truth(patch.gt, image.shape[1:]) if patch.gt is not None else None
    return image, gt


def scene_ground_truth(root: Path, scene: str) -> Path:
    """The whole-scene ground truth of a test scene.

    Raises:
        DataError: If ``Entire_scene_gts/edited_corrected_gts_{scene}.TIF`` is not below ``root``.
    """
    for path in Path(root).rglob(f"edited_corrected_gts_{scene}.*"):
        if path.suffix.lower() in SUFFIXES:
            return path
    raise DataError(f"{root}: no Entire_scene_gts/edited_corrected_gts_{scene}.TIF for test scene {scene}")


def find_test_root(root: Path) -> Path:
    """The folder holding ``Entire_scene_gts/`` and the test band folders: the first below ``root``.

    Raises:
        DataError: If there is no ``Entire_scene_gts/`` folder below ``root``.
    """
    found = next((p.parent for p in sorted(Path(root).rglob("Entire_scene_gts")) if p.is_dir()), None)
    if found is None:
        raise DataError(f"{root}: no test split (Entire_scene_gts/ and test_* band folders) found")
    return found


def find_cross_dataset(root: Path) -> Path | None:
    """The GhalamClouds-layout set beside the test split (a ``test_gt/`` folder below one named Ghalam*), if any."""
    root = Path(root)
    return next(
        (p.parent for p in sorted(root.rglob("test_gt")) if "ghalam" in p.relative_to(root).as_posix().lower()), None
    )


def group_by_scene(patches: list[Patch]) -> dict[str, list[Patch]]:
    """Patches keyed by scene, each list in file-name order."""
    scenes: dict[str, list[Patch]] = defaultdict(list)
    for patch in patches:
        scenes[patch.scene].append(patch)
    return dict(sorted(scenes.items()))


def assemble_scene(patches: list[Patch], patch_size: int = PATCH_SIZE) -> np.ndarray:
    """The zero-padded scene ``(4, rows * size, cols * size)`` rebuilt from its patches' rows and columns."""
    if any(p.row is None or p.col is None for p in patches):
        raise DataError(f"{patches[0].bands[0]}: patch names carry no row/column, so the scene cannot be rebuilt")
    rows, cols = max(p.row for p in patches), max(p.col for p in patches)  # type: ignore[type-var]
    scene: np.ndarray | None = None
    for patch in patches:
        image, _ = read_patch(patch)
        if scene is None:
            scene = np.zeros((image.shape[0], rows * patch_size, cols * patch_size), dtype=image.dtype)
        if image.dtype != scene.dtype:
            first = patches[0].bands[0].name
            raise DataError(f"{patch.bands[0]}: {image.dtype} values, but {first} holds {scene.dtype}")
        r, c = (patch.row - 1) * patch_size, (patch.col - 1) * patch_size  # type: ignore[operator]
        scene[:, r : r + patch_size, c : c + patch_size] = image
    assert scene is not None
    return scene


def padding_offsets(padded: tuple[int, int], original: tuple[int, int]) -> tuple[int, int]:
    """Top and left zero padding of a 38-Cloud scene: half of the extra rows and columns, rounded down."""
    return (padded[0] - original[0]) // 2, (padded[1] - original[1]) // 2


def unpad(array: np.ndarray, original: tuple[int, int]) -> np.ndarray:
    """Remove 38-Cloud's symmetric zero padding from ``(..., H, W)``, as the official evaluation does."""
    top, left = padding_offsets(array.shape[-2:], original)
    return array[..., top : top + original[0], left : left + original[1]]


# -- checks from headers, before any stage ---------------------------------------------------------------


def patch_band_types(patches: list[Patch], *, size: int | None = None) -> list[tuple[Path, str]]:
    """Check every file of ``patches`` from its header and return each band file with its stored type.

    Each file holds one band, and a patch's files (ground truth included) share one size: ``size`` x
    ``size`` when given. Pass the result to :func:`common_type`.

    Raises:
        DataError: If a file is unreadable, holds several bands or differs in size.
    """
    types: list[tuple[Path, str]] = []
    with quiet_gdal():
        for patch in patches:
            headers = [raster_header(p) for p in (*patch.bands, *([patch.gt] if patch.gt else []))]
            first = headers[0]
            for h in headers:
                if h.count != 1:
                    raise DataError(f"{h.path}: expected one band per file, got {h.count}")
                if (h.height, h.width) != (first.height, first.width):
                    raise DataError(
                        f"{h.path}: {h.width}x{h.height} pixels, but {first.path.name} is {first.width}x{first.height}"
                    )
            if size is not None and (first.height, first.width) != (size, size):
                raise DataError(f"{first.path}: {first.width}x{first.height} pixels; expected {size}x{size}")
            types.extend((h.path, h.dtype) for h in headers[: len(BANDS)])
    return types


def common_type(types: list[tuple[Path, str]]) -> str:
    """The stored type of the band files, refusing by name a file of another type than most have."""
    return common_value(types, "type", "band files")


def check_test_split(root: Path) -> list[tuple[Path, str]]:
    """Check from headers what the full-scene evaluation reads below ``root``; return the band files' types.

    Every test patch is a 384 x 384 patch named by its row and column, and every test scene has one
    single-band ground truth no larger than the scene its patches rebuild.

    Raises:
        DataError: If the test split is missing, incomplete or inconsistent (the message names the file).
    """
    test_root = find_test_root(root)
    patches = list_patches(test_root, "test", require_gt=False)
    if unplaced := next((p for p in patches if p.row is None), None):
        raise DataError(f"{unplaced.bands[0]}: a test patch's name must give its row and column in the scene")
    types = patch_band_types(patches, size=PATCH_SIZE)
    with quiet_gdal():
        for scene, members in group_by_scene(patches).items():
            gt = raster_header(scene_ground_truth(test_root, scene))
            height = max(p.row for p in members) * PATCH_SIZE  # type: ignore[type-var,operator]
            width = max(p.col for p in members) * PATCH_SIZE  # type: ignore[type-var,operator]
            if gt.count != 1:
                raise DataError(f"{gt.path}: expected one band, got {gt.count}")
            if gt.height > height or gt.width > width:
                raise DataError(
                    f"{gt.path}: {gt.width}x{gt.height} pixels, larger than the {width}x{height} of scene {scene}'s "
                    "test patches"
                )
    return types
