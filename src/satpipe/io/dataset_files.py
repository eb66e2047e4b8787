"""The files a ``dataset.yaml`` names: scenes or chips listed by its patterns, then checked before any stage runs.

Listing opens no file. Checking does: each image must open and read to its last row; band counts and
data types must agree across images (and with ``bands``); each mask must exist, hold one band of whole
numbers, match its image's size (and CRS and transform when both are georeferenced) and hold only class
values or ``ignore_index``. Masks are read block by block, so memory does not grow with scene size. The
first problem stops with one line naming the file; pixel counts of every class per scene come back for
the manifest.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window
from rich.progress import track

from satpipe.errors import DataError
from satpipe.io.description import DatasetDescription, description_error, suggest


@dataclass(frozen=True)
class Scene:
    """A segmentation scene: image, mask, and the split its description puts it in (None: decided by seed)."""

    stem: str
    image: Path
    mask: Path
    split: str | None


@dataclass(frozen=True)
class Chip:
    """A classification chip: image, class id, and the split its description puts it in (None: by seed)."""

    stem: str
    image: Path
    label: int
    split: str | None


def _glob(desc: DatasetDescription, key: str, pattern: str, *, required: bool = True) -> list[Path]:
    try:
        found = sorted(p for p in desc.root.glob(pattern) if p.is_file() and not p.name.startswith("."))
    except (ValueError, NotImplementedError) as e:
        raise description_error(desc.path, key, f"bad glob {pattern!r} ({e})") from None
    if required and not found:
        raise description_error(desc.path, key, f"{pattern!r} matches no file under {desc.root}")
    return found


def _unique_stems(desc: DatasetDescription, paths: list[Path]) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for p in paths:
        if p.stem in stems and stems[p.stem] != p:
            other = stems[p.stem].relative_to(desc.root)
            raise description_error(
                desc.path,
                "images",
                f"{p.relative_to(desc.root)} and {other} share the stem {p.stem!r}; stems name scenes in splits "
                "and outputs, so they must be unique",
            )
        stems[p.stem] = p
    return stems


def _split_of(desc: DatasetDescription, stems: dict[str, Path]) -> dict[str, str]:
    """Stem -> split for every stem a split names; checks that the lists name known stems and do not overlap."""
    assigned: dict[str, str] = {}
    for split, source in desc.splits.items():
        key = f"splits.{split}"
        if source.endswith(".txt") and not any(c in source for c in "*?["):
            listing = desc.root / source
            if not listing.is_file():
                raise description_error(desc.path, key, f"list file {listing} does not exist")
            members = []
            for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
                entry = line.strip()
                if not entry or entry.startswith("#"):
                    continue
                stem = PurePosixPath(entry).stem if PurePosixPath(entry).suffix else PurePosixPath(entry).name
                if stem not in stems:
                    hint = suggest(stem, list(stems))
                    raise DataError(f"{listing}: line {number}: {entry!r} names no image of {desc.path}{hint}")
                members.append(stem)
        else:
            members = [p.stem for p in _glob(desc, key, source) if p.stem in stems and stems[p.stem] == p]
            if not members:
                raise description_error(desc.path, key, f"{source!r} matches none of the images")
        for stem in members:
            if assigned.get(stem, split) != split:
                raise description_error(
                    desc.path, key, f"{stem!r} is in both the {assigned[stem]} and the {split} split"
                )
            assigned[stem] = split
    return assigned


def _mask_path(desc: DatasetDescription, image: Path) -> Path:
    assert desc.masks is not None
    parent = image.parent.relative_to(desc.root).as_posix()
    relative = desc.masks.format(stem=image.stem, parent=parent)
    return desc.root / os.path.normpath(relative)


def list_scenes(desc: DatasetDescription) -> list[Scene]:
    """Every segmentation scene the description names, sorted by stem (files are not opened).

    Where ``splits`` lists ``train``, images in no split are left out; otherwise they have split None
    (train or val by the seeded split by scene).

    Raises:
        DataError: If a glob matches nothing, stems repeat, or a split names unknown stems or overlaps another.
    """
    if desc.task != "segmentation":
        raise description_error(desc.path, "task", f"{desc.task!r}: list_scenes reads segmentation datasets")
    paths = [p for pattern in desc.images for p in _glob(desc, "images", pattern)]
    stems = _unique_stems(desc, paths)
    split = _split_of(desc, stems)
    keep = (lambda s: s in split) if "train" in desc.splits else (lambda s: True)
    return [Scene(s, p, _mask_path(desc, p), split.get(s)) for s, p in sorted(stems.items()) if keep(s)]


def list_chips(desc: DatasetDescription) -> list[Chip]:
    """Every classification chip: the glob of each pattern with ``{class}`` set to each class name.

    Raises:
        DataError: If a class has no image, stems repeat, or a split names unknown stems or overlaps another.
    """
    if desc.task != "classification":
        raise description_error(desc.path, "task", f"{desc.task!r}: list_chips reads classification datasets")
    labelled: list[tuple[Path, int]] = []
    for label, name in enumerate(desc.classes):
        patterns = [p.replace("{class}", glob_escape(name)) for p in desc.images]
        found = [path for p in patterns for path in _glob(desc, "images", p, required=False)]
        if not found:
            shown = ", ".join(map(repr, patterns))
            raise description_error(desc.path, "images", f"class {name!r}: {shown} matches no file under {desc.root}")
        labelled += [(p, label) for p in found]
    stems = _unique_stems(desc, [p for p, _ in labelled])
    split = _split_of(desc, stems)
    keep = (lambda s: s in split) if "train" in desc.splits else (lambda s: True)
    chips = [Chip(p.stem, p, label, split.get(p.stem)) for p, label in labelled if keep(p.stem)]
    return sorted(chips, key=lambda chip: chip.stem)


def glob_escape(text: str) -> str:
    """``text`` with glob wildcards made literal (a class named 'a[1]' matches its folder only)."""
    return re.sub(r"([*?[])", r"[\1]", text)


_TRANSFORM_TOLERANCE = 1e-6  # relative to the pixel size
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ImageInfo:
    """What every image of a dataset shares."""

    count: int
    dtype: str


@dataclass(frozen=True)
class SceneCheck:
    """The result of :func:`check_scenes`: shared image properties and per-scene pixel counts per class id."""

    image: ImageInfo
    class_pixels: dict[str, list[int]]
    ignored_pixels: dict[str, int]
    georeferenced: bool


def _open(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: {what} does not exist")
    try:
        with warnings.catch_warnings():  # PNG and JPEG carry no georeference, which is fine
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioError as e:
        raise DataError(f"{path}: unreadable {what} ({_short(e)})") from None


def _short(error: Exception) -> str:
    # rasterio's read error says only "see previous exception": the GDAL error it chains says what failed.
    error = error.__cause__ if isinstance(error.__cause__, Exception) else error
    return str(error).splitlines()[0][:200]


def _blocks(ds: Any) -> list[Window]:
    """Windows of whole rows of the file's blocks (strips for PNG/JPEG), covering the raster top to bottom."""
    height = max(1, min(ds.height, ds.block_shapes[0][0] if ds.block_shapes else 256))
    height *= max(1, 256 // height)  # a few strips at a time
    return [Window(0, row, ds.width, min(height, ds.height - row)) for row in range(0, ds.height, height)]


def _read(ds: Any, path: Path, what: str, window: Window | None = None, bands: int | list[int] | None = None) -> Any:
    try:
        return ds.read(bands, window=window)
    except RasterioError as e:
        raise DataError(f"{path}: unreadable {what}, truncated or corrupt ({_short(e)})") from None


def _image_info(desc: DatasetDescription, path: Path, ds: Any) -> ImageInfo:
    if desc.bands and ds.count != len(desc.bands):
        raise DataError(f"{path}: {ds.count} band(s), but {desc.path.name} lists {len(desc.bands)} under bands")
    if len(set(ds.dtypes)) > 1:
        raise DataError(f"{path}: bands of different data types ({', '.join(ds.dtypes)})")
    last = _blocks(ds)[-1]  # reading the last rows finds a truncated file without reading all of it
    _read(ds, path, "image", Window(0, last.row_off + last.height - 1, ds.width, 1))
    return ImageInfo(ds.count, ds.dtypes[0])


def _agree(path: Path, info: ImageInfo, first: tuple[Path, ImageInfo]) -> None:
    other, expected = first
    if info.count != expected.count:
        raise DataError(f"{path}: {info.count} band(s), but {other} has {expected.count}; band counts must agree")
    if info.dtype != expected.dtype:
        raise DataError(f"{path}: data type {info.dtype}, but {other} is {expected.dtype}; data types must agree")


def _georeferenced(ds: Any) -> bool:
    return ds.crs is not None and not ds.transform.is_identity


def _check_geometry(image: Path, img: Any, mask: Path, msk: Any) -> None:
    if (msk.height, msk.width) != (img.height, img.width):
        size = f"{img.width}x{img.height}"
        raise DataError(f"{mask}: {msk.width}x{msk.height} pixels, but its image {image.name} is {size}")
    if _georeferenced(img) and _georeferenced(msk):
        if msk.crs != img.crs:
            raise DataError(f"{mask}: CRS {msk.crs}, but its image {image.name} has {img.crs}")
        tolerance = _TRANSFORM_TOLERANCE * max(abs(img.transform.a), abs(img.transform.e))
        if not msk.transform.almost_equals(img.transform, precision=tolerance):
            raise DataError(f"{mask}: transform differs from its image {image.name}'s (the pixels do not line up)")


def _count_values(desc: DatasetDescription, path: Path, ds: Any) -> np.ndarray:
    """Pixels of every mask value (index = value), read block by block; refuses values of no class."""
    if ds.count != 1:
        raise DataError(f"{path}: mask has {ds.count} bands; a mask holds one band of class values")
    if not np.issubdtype(np.dtype(ds.dtypes[0]), np.integer):
        raise DataError(f"{path}: mask data type {ds.dtypes[0]}; masks hold whole-number class values")
    allowed = set(desc.values) | ({desc.ignore_index} if desc.ignore_index is not None else set())
    counts = np.zeros(max(allowed) + 1, np.int64)
    for window in _blocks(ds):
        block = _read(ds, path, "mask", window, 1)
        if block.dtype.kind == "u" and block.dtype.itemsize <= 2:  # a histogram is much faster than sorting
            histogram = np.bincount(block.ravel())
            values = np.flatnonzero(histogram)
            found = histogram[values]
        else:
            values, found = np.unique(block, return_counts=True)
        bad = [int(v) for v in values if int(v) not in allowed]
        if bad:
            shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
            raise DataError(f"{path}: mask value(s) {shown} {_not_allowed(desc)}")
        counts[values] += found
    return counts


def _not_allowed(desc: DatasetDescription) -> str:
    values = ", ".join(map(str, desc.values)) if len(desc.values) <= 8 else f"{desc.values[0]}..{desc.values[-1]}"
    ignore = f" or ignore_index {desc.ignore_index}" if desc.ignore_index is not None else ""
    return f"not in classes ({values}){ignore} of {desc.path}"


def _in_order(check: Callable[[T], R], items: Sequence[T], description: str, progress: bool) -> Iterator[R]:
    """``check`` of every item on a few threads (file reads release the GIL), yielded in order.

    The first failure in order is raised, and checks not yet started are dropped.
    """
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        yield from track(pool.map(check, items), total=len(items), description=description, disable=not progress)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _scene_facts(desc: DatasetDescription, scene: Scene) -> tuple[ImageInfo, np.ndarray, bool]:
    with _open(scene.image, "image") as img:
        info = _image_info(desc, scene.image, img)
        with _open(scene.mask, f"mask of {scene.image.name}") as msk:
            _check_geometry(scene.image, img, scene.mask, msk)
            return info, _count_values(desc, scene.mask, msk), _georeferenced(img)


def check_scenes(desc: DatasetDescription, scenes: Sequence[Scene], *, progress: bool = False) -> SceneCheck:
    """Check every scene's image and mask (see the module docstring); the first problem raises.

    Returns:
        Shared image properties and, per scene stem, the pixels of each class id and of no class.

    Raises:
        DataError: One line naming the file and the problem.
    """
    if not scenes:
        raise DataError(f"{desc.path}: the description names no scene")
    facts = _in_order(partial(_scene_facts, desc), scenes, "checking scenes", progress)
    first: tuple[Path, ImageInfo] | None = None
    class_pixels: dict[str, list[int]] = {}
    ignored: dict[str, int] = {}
    georeferenced = True
    for scene, (info, counts, geo) in zip(scenes, facts, strict=True):
        first = first or (scene.image, info)
        _agree(scene.image, info, first)
        class_pixels[scene.stem] = [int(counts[v]) if v < len(counts) else 0 for v in desc.values]
        ignored[scene.stem] = int(counts.sum()) - sum(class_pixels[scene.stem])
        georeferenced &= geo
    assert first is not None
    return SceneCheck(first[1], class_pixels, ignored, georeferenced)


def _chip_info(desc: DatasetDescription, chip: Chip) -> ImageInfo:
    with _open(chip.image, "image") as ds:
        _read(ds, chip.image, "image")  # chips are small: read them whole
        return _image_info(desc, chip.image, ds)


def check_chips(desc: DatasetDescription, chips: Sequence[Chip], *, progress: bool = False) -> ImageInfo:
    """Check that every chip reads whole and that band counts and data types agree.

    Raises:
        DataError: One line naming the file and the problem.
    """
    if not chips:
        raise DataError(f"{desc.path}: the description names no image")
    first: tuple[Path, ImageInfo] | None = None
    for chip, info in zip(chips, _in_order(partial(_chip_info, desc), chips, "checking chips", progress), strict=True):
        first = first or (chip.image, info)
        _agree(chip.image, info, first)
    assert first is not None
    return first[1]
