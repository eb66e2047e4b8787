"""MLCommons CloudMask (Sentinel-3 SLSTR) on disk: validated HDF5 reading, file layout, and download.

Each ``S3A*.hdf`` file holds ``refs`` (1200 x 1500 x 6 top-of-atmosphere reflectance), ``bts``
(1200 x 1500 x 3 brightness temperature, K) and ``bayes`` (the Bayesian cloud mask; > 0 is cloud). The
benchmark's model input is ``concat(refs - 0.5, (bts - 270) / 22)``. Training files live in ``one-day/``
and the test (inference) files in ``ssts/`` of the public object store.

No-data handling: a pixel whose reflectances or brightness temperatures are not finite (NaN or inf, as
SLSTR fill values are after conversion) is invalid. Its inputs are set to the values that normalise to
zero and it is left out of the loss and of every metric. A file without a single valid pixel is refused.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from satpipe.artifacts import atomic_write_text
from satpipe.errors import DataError, DatasetNotFoundError, DownloadError
from satpipe.io.download import RemoteFile, download_all, require_space

logger = logging.getLogger(__name__)

SCENE_SHAPE = (1200, 1500)
DATASETS = {"refs": 6, "bts": 3}
BAND_NAMES = ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9")
#: Raw values that normalise to 0 and to 1: the benchmark's ``refs - 0.5`` and ``(bts - 270) / 22``.
NORM_LOW = (0.5,) * 6 + (270.0,) * 3
NORM_HIGH = (1.5,) * 6 + (292.0,) * 3
SPLIT_FOLDERS = {"train": "one-day", "test": "ssts"}

ENDPOINT = "https://s3.echo.stfc.ac.uk"
BUCKET = "sciml-datasets"
PREFIXES = {"train": "es/cloud_slstr_ds1/one-day", "test": "es/cloud_slstr_ds1/ssts"}
OFFLINE_HINT = (
    "pass --data-dir PATH with a local copy (one-day/ and ssts/ folders of S3A*.hdf), or use the synthetic source"
)


@dataclass(frozen=True)
class SlstrBands:
    """A file's datasets as stored, ``refs`` (H, W, 6) and ``bts`` (H, W, 3) float32, with cloud and valid masks."""

    refs: np.ndarray
    bts: np.ndarray
    clouds: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class SlstrScene:
    """One file's inputs ``(9, H, W)`` in physical units, cloud mask and valid-pixel mask ``(H, W)``."""

    image: np.ndarray
    clouds: np.ndarray
    valid: np.ndarray


def _check_layout(f: h5py.File, path: Path) -> None:
    for key in (*DATASETS, "bayes"):
        if key not in f:
            raise DataError(f"{path}: dataset '{key}' missing (found: {', '.join(sorted(f.keys())) or 'none'})")
        if not np.issubdtype(f[key].dtype, np.number):
            raise DataError(f"{path}: '{key}' holds {f[key].dtype}, not numbers")
    for key, channels in DATASETS.items():
        if f[key].shape != (*SCENE_SHAPE, channels):
            raise DataError(f"{path}: '{key}' has shape {f[key].shape}; expected {(*SCENE_SHAPE, channels)}")
    if f["bayes"].shape not in (SCENE_SHAPE, (*SCENE_SHAPE, 1)):
        raise DataError(f"{path}: 'bayes' has shape {f['bayes'].shape}; expected {SCENE_SHAPE}")


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e})") from None


def check_file(path: Path) -> None:
    """Check a file's datasets, shapes and types without reading the pixels.

    Raises:
        DataError: If the file is unreadable or a dataset is missing or of the wrong shape or type.
    """
    with _open(Path(path)) as f:
        _check_layout(f, Path(path))


def read_bands(path: Path, rows: slice = slice(None), cols: slice = slice(None)) -> SlstrBands:
    """Read and check one ``S3A*.hdf`` file, or its window ``rows`` x ``cols``, as stored (channels last).

    Non-finite pixels are replaced by the values that normalise to zero and marked invalid.

    Raises:
        DataError: If the file is unreadable (also part-way), a dataset is missing or of the wrong shape
            or type, or no pixel of the window holds finite values.
    """
    path = Path(path)
    with _open(path) as f:
        _check_layout(f, path)
        try:
            refs = f["refs"][rows, cols].astype(np.float32, copy=False)
            bts = f["bts"][rows, cols].astype(np.float32, copy=False)
            bayes = f["bayes"][rows, cols].reshape(refs.shape[:2])
        except OSError as e:  # a truncated file opens but fails on reading its chunks
            raise DataError(f"{path}: cannot read its data ({e})") from None
    # A sum is finite exactly when every value is (barring overflow, which falls through to the full check).
    if all(np.isfinite(a.sum()) for a in (refs, bts, bayes)):
        return SlstrBands(refs, bts, bayes > 0, np.ones(bayes.shape, bool))
    valid = np.isfinite(refs).all(axis=2) & np.isfinite(bts).all(axis=2) & np.isfinite(bayes)
    if not valid.any():
        raise DataError(f"{path}: no pixel has finite reflectances and brightness temperatures")
    refs[~valid], bts[~valid] = NORM_LOW[:6], NORM_LOW[6:]
    return SlstrBands(refs, bts, (np.nan_to_num(bayes) > 0) & valid, valid)


def read_scene(path: Path) -> SlstrScene:
    """Read and check one ``S3A*.hdf`` file as model input: channels first, refs then bts (see :func:`read_bands`)."""
    bands = read_bands(path)
    image = np.empty((9, *SCENE_SHAPE), np.float32)
    image[:6], image[6:] = bands.refs.transpose(2, 0, 1), bands.bts.transpose(2, 0, 1)
    return SlstrScene(image, bands.clouds, bands.valid)


def list_files(root: Path, split: str, max_files: int | None = None) -> list[Path]:
    """The (first ``max_files``) ``S3A*.hdf`` files of a split, from ``one-day/`` (train) or ``ssts/`` (test).

    Where ``root`` holds the ``filelist.json`` that :func:`fetch` writes, every file it lists for the
    split (the first ``max_files`` of them) must be present with its listed size (a stat, no reading).

    Raises:
        DatasetNotFoundError: If the folder is missing or holds no such files.
        DataError: If ``filelist.json`` is unreadable, or a file it lists is missing or has another size.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: data folder does not exist")
    folders = [p for p in root.rglob(SPLIT_FOLDERS[split]) if p.is_dir()]
    files = sorted(f for folder in folders for f in folder.rglob("S3A*.hdf"))
    if not files:
        raise DatasetNotFoundError(f"{root}: no {SPLIT_FOLDERS[split]}/S3A*.hdf files ({split} split of CloudMask)")
    if (root / FILELIST).is_file():
        sizes = {f.name: f.stat().st_size for f in files}
        for key, size in read_filelist(root / FILELIST).get(split, [])[:max_files]:
            name = Path(key).name
            if name not in sizes:
                raise DataError(f"{root}: {name} is in {FILELIST} but missing; download again to complete the copy")
            if sizes[name] != size:
                raise DataError(f"{root}: {name} has {sizes[name]} bytes, {FILELIST} lists {size}; download it again")
    return files[:max_files]


def read_filelist(path: Path) -> dict[str, list[tuple[str, int]]]:
    """The ``filelist.json`` that :func:`fetch` keeps: each split's object keys and sizes in bytes.

    Raises:
        DataError: If the file is not valid JSON or not ``{"train": [[key, size], ...], "test": [...]}``.
    """
    try:
        listing = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); delete it or download the copy again") from None
    if not isinstance(listing, dict) or not all(
        isinstance(files, list)
        and all(isinstance(f, list) and len(f) == 2 and isinstance(f[0], str) and type(f[1]) is int for f in files)
        for files in listing.values()
    ):
        raise DataError(
            f'{path}: expected {{"train": [[key, size], ...], "test": [...]}}; delete it or download the copy again'
        )
    return {split: [(key, size) for key, size in files] for split, files in listing.items()}


# -- download -----------------------------------------------------------------------------------------

_S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"
FILELIST = "filelist.json"


def listing_url(endpoint: str, bucket: str, prefix: str, token: str | None = None) -> str:
    """The anonymous S3 ListObjectsV2 request for one page of keys below ``prefix``."""
    query = {"list-type": "2", "prefix": prefix, **({"continuation-token": token} if token else {})}
    return f"{endpoint}/{bucket}?{urllib.parse.urlencode(query)}"


def list_objects(endpoint: str, bucket: str, prefix: str, timeout_s: float = 30.0) -> list[tuple[str, int]]:
    """Keys and sizes below ``prefix`` in a public S3 bucket (anonymous ListObjectsV2, all pages).

    Raises:
        DownloadError: If the store cannot be reached or answers with an error.
    """
    objects: list[tuple[str, int]] = []
    token: str | None = None
    while True:
        url = listing_url(endpoint, bucket, prefix, token)
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                tree = ET.fromstring(response.read())
        except (OSError, ET.ParseError) as e:
            raise DownloadError(f"cannot list {url} ({getattr(e, 'reason', e)}); {OFFLINE_HINT}") from None
        for item in tree.iter(f"{_S3}Contents"):
            objects.append((item.findtext(f"{_S3}Key", ""), int(item.findtext(f"{_S3}Size", "0"))))
        token = tree.findtext(f"{_S3}NextContinuationToken")
        if tree.findtext(f"{_S3}IsTruncated") != "true" or not token:
            return objects


def file_list(dest: Path, endpoint: str = ENDPOINT) -> dict[str, list[tuple[str, int]]]:
    """Every training and test file (key, size) of the benchmark, listed once and kept in ``dest/filelist.json``.

    The benchmark's files do not change, so a list already on disk is used as it is and a resumed
    download needs no listing.
    """
    path = Path(dest) / FILELIST
    if path.is_file():
        return read_filelist(path)
    listing: dict[str, list[tuple[str, int]]] = {}
    for split, prefix in PREFIXES.items():
        files = sorted((k, s) for k, s in list_objects(endpoint, BUCKET, prefix) if Path(k).name.startswith("S3A"))
        if not files:
            raise DownloadError(f"{endpoint}/{BUCKET}/{prefix}: the listing names no S3A*.hdf files")
        listing[split] = files
    atomic_write_text(path, json.dumps(listing, indent=1) + "\n")
    return listing


def fetch(
    dest: Path, *, max_files: int | None = None, endpoint: str = ENDPOINT, progress: bool = True, workers: int = 8
) -> Path:
    """Download CloudMask's training and test files (or the first ``max_files`` of each) into ``dest``.

    Driven by :func:`file_list`. Nothing is fetched unless the files still missing fit on the disk; then
    ``workers`` files download at a time, each resumably (HTTP Range) with retries, and each must have its
    listed size before it is placed, so an interrupted run picks up where it stopped.

    Returns:
        ``dest``, holding ``one-day/``, ``ssts/`` and ``filelist.json``.

    Raises:
        DownloadError: If the files do not fit on the disk, or a file cannot be fetched.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    files = [
        (RemoteFile(f"{endpoint}/{BUCKET}/{key}", Path(key).name, size=size), dest / SPLIT_FOLDERS[split])
        for split, listed in file_list(dest, endpoint).items()
        for key, size in listed[:max_files]
    ]
    require_space(files, hint="on a cluster raise data.disk; or fetch fewer files with data.max_files")
    download_all(files, workers=workers, offline_hint=OFFLINE_HINT, progress=progress)
    return dest
