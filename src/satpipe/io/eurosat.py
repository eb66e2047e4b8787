"""EuroSAT on disk: layouts, archives, and validated reading of chips.

EuroSAT (Helber et al. 2019) has 27,000 Sentinel-2 chips of 64x64 pixels in 10 classes, published as
RGB JPEGs (``2750/<Class>/<Class>_<n>.jpg``) and as 13-band GeoTIFFs
(``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/<Class>_<n>.tif``, bands B01..B12
then B8A).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from satpipe.errors import DataError, DatasetNotFoundError
from satpipe.io.archive import extract_archive
from satpipe.io.chips import natural_key, read_image
from satpipe.io.download import RemoteFile, download
from satpipe.io.headers import raster_header

logger = logging.getLogger(__name__)

Bands = Literal["rgb", "ms"]

CLASSES = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)
#: Band names in file order for each product.
BAND_NAMES: dict[str, tuple[str, ...]] = {
    "rgb": ("B04", "B03", "B02"),
    "ms": ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A"),
}
#: Folder holding the class folders, relative to the extracted archive.
IMAGE_DIRS: dict[str, str] = {"rgb": "2750", "ms": "ds/images/remote_sensing/otherDatasets/sentinel_2/tif"}
SUFFIXES: dict[str, tuple[str, ...]] = {"rgb": (".jpg", ".jpeg"), "ms": (".tif", ".tiff")}
#: Divisor that turns stored values into reflectance-like units (JPEG 0..255, Sentinel-2 L1C DN 0..10000).
VALUE_SCALE: dict[str, float] = {"rgb": 255.0, "ms": 10000.0}

# TorchGeo's mirror, pinned to a commit so the bytes behind the URL cannot change. Only MD5 digests are
# published for these archives (TorchGeo and torchvision agree on them).
ARCHIVES: dict[str, RemoteFile] = {
    "rgb": RemoteFile(
        url="https://hf.co/datasets/torchgeo/eurosat/resolve/c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip",
        filename="EuroSAT.zip",
        checksum="md5:c8fa014336c82ac7804f0398fcb19387",
    ),
    "ms": RemoteFile(
        url="https://hf.co/datasets/torchgeo/eurosat/resolve/1ce6f1bfb56db63fd91b6ecc466ea67f2509774c/EuroSATallBands.zip",
        filename="EuroSATallBands.zip",
        checksum="md5:5ac12b3b2557aa56e1826e981e8e200e",
    ),
}
OFFLINE_HINT = (
    "pass --data-dir PATH with a local copy of EuroSAT, or use the synthetic source (uv run run.py quickstart)"
)


@dataclass(frozen=True)
class Sample:
    """One chip: its path relative to the image root and its class index."""

    path: str
    label: int


def fetch(dest: Path, bands: Bands, *, progress: bool = True) -> Path:
    """Download and extract the EuroSAT archive for ``bands`` and return the image root.

    Raises:
        DownloadError: Offline or the server failed (the message suggests --data-dir or synthetic data).
        ChecksumError: The archive does not match its published checksum.
    """
    archive = download(ARCHIVES[bands], Path(dest) / "archives", offline_hint=OFFLINE_HINT, progress=progress)
    extracted = Path(dest) / "extracted" / bands
    extract_archive(archive, extracted)
    return find_image_root(extracted, bands)


def _has_class_folders(path: Path, bands: Bands) -> bool:
    return any((path / name).is_dir() and any(_images(path / name, bands)) for name in CLASSES)


def _images(folder: Path, bands: Bands) -> list[Path]:
    return [p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES[bands] and not p.name.startswith(".")]


def find_image_root(root: Path, bands: Bands) -> Path:
    """Return the folder under ``root`` that holds the EuroSAT class folders.

    Looks at ``root`` itself, the archive's own layout, then anywhere up to six levels down.

    Raises:
        DatasetNotFoundError: If ``root`` is missing or holds no class folders with images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: data folder does not exist")
    for candidate in (root, root / IMAGE_DIRS[bands], root / "EuroSAT" / IMAGE_DIRS[bands]):
        if candidate.is_dir() and _has_class_folders(candidate, bands):
            return candidate
    for depth in range(1, 7):
        for candidate in sorted(root.glob("/".join(["*"] * depth))):
            if candidate.is_dir() and _has_class_folders(candidate, bands):
                return candidate
    kind = (
        "RGB JPEGs (2750/<Class>/*.jpg)" if bands == "rgb" else f"13-band GeoTIFFs ({IMAGE_DIRS['ms']}/<Class>/*.tif)"
    )
    raise DatasetNotFoundError(f"{root}: no EuroSAT class folders with {kind} found")


def list_samples(image_root: Path, bands: Bands) -> list[Sample]:
    """List every chip under the image root, in a stable order.

    Raises:
        DataError: If a folder is not a EuroSAT class, or a class folder is missing or empty.
    """
    image_root = Path(image_root)
    folders = {p.name: p for p in image_root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if unknown := sorted(set(folders) - set(CLASSES)):
        raise DataError(
            f"{folders[unknown[0]]}: unknown class folder {unknown[0]!r}; EuroSAT classes are {', '.join(CLASSES)}"
        )
    samples: list[Sample] = []
    for label, name in enumerate(CLASSES):
        if name not in folders:
            raise DataError(f"{image_root / name}: class folder missing")
        files = sorted((p.relative_to(image_root).as_posix() for p in _images(folders[name], bands)), key=natural_key)
        if not files:
            raise DataError(f"{folders[name]}: class folder holds no {'/'.join(SUFFIXES[bands])} files")
        samples.extend(Sample(f, label) for f in files)
    return samples


def _check_rgb(im: Image.Image, path: Path) -> None:
    if im.mode != "RGB":
        raise DataError(f"{path}: expected a 3-band RGB image, got mode {im.mode!r}")


def _check_ms(count: int, path: Path) -> None:
    if count != len(BAND_NAMES["ms"]):
        raise DataError(f"{path}: expected 13 bands (B01..B12, B8A), got {count}")


def chip_header(path: Path, bands: Bands) -> tuple[tuple[int, int, int], str]:
    """A chip's ``(C, H, W)`` and stored type from its header alone, checked as :func:`read_chip` checks them.

    Call it within :func:`satpipe.io.headers.quiet_gdal` when reading many GeoTIFFs.

    Raises:
        DataError: If the header is unreadable or gives the wrong band count.
    """
    if bands == "rgb":
        try:
            with Image.open(path) as im:
                _check_rgb(im, path)
                return (3, im.height, im.width), "uint8"
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise DataError(f"{path}: unreadable image ({e})") from None
    header = raster_header(path)
    _check_ms(header.count, path)
    return (header.count, header.height, header.width), header.dtype


def read_chip(path: Path, bands: Bands) -> np.ndarray:
    """Read one chip of the ``bands`` product as a ``(C, H, W)`` array in its stored dtype, checking that it is sound.

    Raises:
        DataError: If the file is unreadable, has the wrong band count, or holds NaN values.
    """
    return read_image(path, len(BAND_NAMES[bands]))
