"""Image chips on disk: JPEG, PNG or GeoTIFF files of any band count and dtype, read whole and checked.

EuroSAT's chips (RGB JPEGs, 13-band GeoTIFFs) and the chips a classifier predicts are read here alike.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, UnidentifiedImageError
from rasterio.errors import RasterioIOError

from satpipe.errors import DataError, DatasetNotFoundError

#: Suffixes read with Pillow (8- or 16-bit images) and with GDAL (any GeoTIFF).
PILLOW_SUFFIXES = (".jpg", ".jpeg", ".png")
GDAL_SUFFIXES = (".tif", ".tiff")
CHIP_SUFFIXES = PILLOW_SUFFIXES + GDAL_SUFFIXES


def natural_key(path: str) -> tuple[object, ...]:
    """Sort key that puts ``chip_2`` before ``chip_10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path))


def is_chip(path: Path) -> bool:
    """True for a visible file with a chip suffix."""
    return path.suffix.lower() in CHIP_SUFFIXES and not path.name.startswith(".")


def find_chips(inputs: list[Path]) -> list[Path]:
    """The chip files named, and those under the folders named (recursively, in natural order).

    Raises:
        DatasetNotFoundError: If an input does not exist or a folder holds no chip.
        DataError: If a file named is not a chip format.
    """
    chips: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = [p for p in item.rglob("*") if is_chip(p) and p.is_file()]
            if not found:
                raise DatasetNotFoundError(f"{item}: no chips ({', '.join(CHIP_SUFFIXES)}) in this folder")
            chips.extend(sorted(found, key=lambda p: natural_key(p.as_posix())))
        elif not item.exists():
            raise DatasetNotFoundError(f"{item}: does not exist")
        elif item.suffix.lower() not in CHIP_SUFFIXES:
            raise DataError(f"{item}: not a chip format; expected one of {', '.join(CHIP_SUFFIXES)}")
        else:
            chips.append(item)
    return chips


def read_image(path: Path, bands: int) -> np.ndarray:
    """Read a chip as a ``(bands, H, W)`` array in its stored dtype, checking that it is sound.

    Raises:
        DataError: If the file is unreadable or not a chip format, has another band count, or holds
            NaN or infinite values.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PILLOW_SUFFIXES:
        try:
            with Image.open(path) as im:
                im.load()
                mode, chip = im.mode, np.asarray(im)
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise DataError(f"{path}: unreadable image ({e})") from None
        chip = chip[None] if chip.ndim == 2 else chip.transpose(2, 0, 1)  # (H, W[, C]) -> (C, H, W)
        if chip.shape[0] != bands:
            raise DataError(f"{path}: expected {bands} bands, got {chip.shape[0]} (mode {mode!r})")
    elif suffix in GDAL_SUFFIXES:
        try:
            with rasterio.open(path) as src:
                if src.count != bands:
                    raise DataError(f"{path}: expected {bands} bands, got {src.count}")
                chip = src.read()
        except RasterioIOError as e:
            raise DataError(f"{path}: unreadable GeoTIFF ({e})") from None
    else:
        raise DataError(f"{path}: not a chip format; expected one of {', '.join(CHIP_SUFFIXES)}")
    if np.issubdtype(chip.dtype, np.floating) and not np.isfinite(chip).all():
        raise DataError(f"{path}: holds NaN or infinite values")
    return chip
