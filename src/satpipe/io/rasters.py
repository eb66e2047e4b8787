"""Windowed raster I/O: scenes read band-stacked from one or many GeoTIFFs, masks written as COGs.

A scene is read window by window, so memory does not grow with its size. Nodata is explicit: a pixel
is invalid where every band equals the file's nodata value (0 when the file declares none or NaN, as
Landsat scene margins are) or where any band is NaN or infinite; such a pixel is read as the nodata value
in every band, so no NaN reaches a model, and invalid pixels are written as nodata in every output.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from satpipe.errors import DataError

#: Nodata written into probability (float32) and mask (uint8) outputs.
PROB_NODATA = float("nan")
MASK_NODATA = 255


def blank_non_finite(data: np.ndarray, nodata: float) -> np.ndarray:
    """Set every band of a pixel of ``data`` ``(bands, H, W)`` with a NaN or infinite value to ``nodata``, in place.

    A missing value in one band leaves the pixel without data: a model cannot use the others alone.
    """
    if np.issubdtype(data.dtype, np.floating):
        bad = ~np.isfinite(data).all(axis=0)
        if bad.any():
            data[:, bad] = nodata
    return data


class Source(Protocol):
    """Anything a scene can be read from window by window."""

    height: int
    width: int
    count: int

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """Bands ``(count, height, width)`` of the window, in the stored dtype."""
        ...

    def valid(self, data: np.ndarray) -> np.ndarray:
        """Boolean ``(height, width)``: True where the pixel holds data."""
        ...


class ArraySource:
    """A scene held in memory as ``(bands, height, width)``; ``nodata`` is one value or one per band."""

    def __init__(self, data: np.ndarray, nodata: float | Sequence[float] = 0) -> None:
        if data.ndim != 3:
            raise DataError(f"expected a (bands, height, width) array, got shape {data.shape}")
        self.data = data
        self.nodata = np.broadcast_to(np.asarray(nodata, dtype=data.dtype), (data.shape[0],))[:, None, None]
        self.count, self.height, self.width = data.shape

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        return self.data[:, row : row + height, col : col + width]

    def valid(self, data: np.ndarray) -> np.ndarray:
        return ~np.all(data == self.nodata, axis=0)


class RasterScene:
    """A scene from one multi-band GeoTIFF or from one single-band file per band (in model band order).

    Use as a context manager; it keeps the files open between window reads.

    Raises:
        DataError: If a file is missing or unreadable, or the band files differ in size, CRS or transform.
    """

    def __init__(self, paths: Sequence[Path | str]) -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise DataError("no scene files given")
        self._stack = ExitStack()
        self.datasets: list[Any] = []
        for path in self.paths:
            if not path.is_file():
                self._stack.close()
                raise DataError(f"{path}: scene file does not exist")
            try:
                with warnings.catch_warnings():  # 38-Cloud patches are not georeferenced; that is fine here
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    dataset = rasterio.open(path)
                self.datasets.append(self._stack.enter_context(dataset))
            except RasterioIOError as e:
                self._stack.close()
                raise DataError(f"{path}: unreadable raster ({e})") from None
        first = self.datasets[0]
        for path, ds in zip(self.paths, self.datasets, strict=True):
            if problem := _mismatch(ds, first, self.paths[0].name, per_band=len(self.paths) > 1):
                self._stack.close()
                raise DataError(f"{path}: {problem}")
            if ds.dtypes[0] != first.dtypes[0]:
                self._stack.close()
                raise DataError(f"{path}: {ds.dtypes[0]} values, but {self.paths[0].name} holds {first.dtypes[0]}")
        self.height, self.width = first.height, first.width
        self.count = sum(ds.count for ds in self.datasets)
        self.crs, self.transform = first.crs, first.transform
        self.dtype = np.dtype(first.dtypes[0])
        self.nodata = first.nodata if first.nodata is not None and np.isfinite(first.nodata) else 0

    def __enter__(self) -> RasterScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every file."""
        self._stack.close()

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        window = Window(col, row, width, height)
        try:
            data = np.concatenate([ds.read(window=window) for ds in self.datasets], axis=0)
        except RasterioIOError as e:
            raise DataError(f"{self.paths[0]}: read failed at rows {row}..{row + height} ({e})") from None
        return blank_non_finite(data, self.nodata)

    def valid(self, data: np.ndarray) -> np.ndarray:
        return ~np.all(data == self.nodata, axis=0)


def _mismatch(ds: Any, first: Any, first_name: str, per_band: bool) -> str | None:
    """Why a band file cannot be stacked with the first one, or None."""
    if (ds.height, ds.width) != (first.height, first.width):
        return f"{ds.width}x{ds.height} pixels, but {first_name} is {first.width}x{first.height}"
    if per_band and ds.count != 1:
        return f"per-band scene files must hold one band each, this one holds {ds.count}"
    # The outputs take the first file's grid: a band on another grid would be predicted misplaced.
    if ds.crs != first.crs:
        return f"CRS {_crs_name(ds.crs)}, but {first_name} is in {_crs_name(first.crs)}"
    if not ds.transform.almost_equals(first.transform):
        return f"transform {tuple(ds.transform)[:6]}, but {first_name} has {tuple(first.transform)[:6]}"
    return None


def _crs_name(crs: Any) -> str:
    """``EPSG:32633`` where there is such a code, else the CRS's text, or ``none``."""
    return "none" if crs is None else crs.to_string()


class MaskWriter:
    """Writes a probability raster and its thresholded mask row strip by row strip, then publishes COGs.

    Rows stream into tiled GeoTIFFs beside the destination; :meth:`close` converts them to
    Cloud-Optimized GeoTIFFs and renames them into place, so an interrupted prediction leaves no
    output behind.
    """

    def __init__(
        self, mask_path: Path, prob_path: Path, *, height: int, width: int, crs: Any, transform: Any, threshold: float
    ) -> None:
        self.mask_path, self.prob_path, self.threshold = Path(mask_path), Path(prob_path), threshold
        self.mask_path.parent.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:8]
        self._tmp = {
            "mask": self.mask_path.with_name(f".{self.mask_path.name}.{tag}.partial.tif"),
            "prob": self.prob_path.with_name(f".{self.prob_path.name}.{tag}.partial.tif"),
        }
        base = {
            "driver": "GTiff",
            "height": height,
            "width": width,
            "count": 1,
            "crs": crs,
            "transform": transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
        }
        with warnings.catch_warnings():  # a source without georeferencing gives outputs without it
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._mask = rasterio.open(self._tmp["mask"], "w", dtype="uint8", nodata=MASK_NODATA, **base)
            self._prob = rasterio.open(self._tmp["prob"], "w", dtype="float32", nodata=PROB_NODATA, **base)

    def write(self, row: int, prob: np.ndarray) -> None:
        """Write ``prob`` (rows, width; NaN where there is no data) starting at ``row``."""
        window = Window(0, row, prob.shape[1], prob.shape[0])
        mask = np.where(np.isnan(prob), MASK_NODATA, prob > self.threshold).astype(np.uint8)
        self._prob.write(prob.astype(np.float32), 1, window=window)
        self._mask.write(mask, 1, window=window)

    def close(self) -> None:
        """Finish both files as COGs in their final places."""
        self._mask.close()
        self._prob.close()
        for key, final in (("mask", self.mask_path), ("prob", self.prob_path)):
            cog = final.with_name(f".{final.name}.cog.partial.tif")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                rasterio.shutil.copy(self._tmp[key], cog, driver="COG", compress="deflate")
            os.replace(cog, final)
            self._tmp[key].unlink()

    def abort(self) -> None:
        """Drop everything written so far."""
        for ds in (self._mask, self._prob):
            if not ds.closed:
                ds.close()
        for path in self._tmp.values():
            path.unlink(missing_ok=True)


def percentile_stretch(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) -> uint8 (H, W, 3) stretched between the 2nd and 98th percentiles of valid pixels."""
    valid = rgb.any(axis=0)
    out = np.zeros((*rgb.shape[1:], 3), np.uint8)
    if valid.any():
        lo, hi = np.percentile(rgb[:, valid], (2, 98), axis=1)
        out[valid] = (np.clip((rgb[:, valid].T - lo) / np.maximum(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
    return out
