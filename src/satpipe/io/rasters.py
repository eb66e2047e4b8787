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


def classify(prob: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Class ids and the probability shown beside them, from class probabilities ``(K, rows, width)``.

    With one or two channels the last is the probability of the positive class (cloud), thresholded, so a
    two-class model gives the same mask as a one-channel one; with more the ids are the argmax and the
    score is the winning probability (the confidence).

    Returns:
        Class ids (uint8, :data:`MASK_NODATA` where any channel is NaN) and the score (float32, NaN there).
    """
    if prob.ndim != 3 or prob.shape[0] < 1:
        raise ValueError(f"expected class probabilities (K, rows, width), got shape {prob.shape}")
    missing = np.isnan(prob).any(axis=0)
    if prob.shape[0] <= 2:
        score = prob[-1].astype(np.float32)
        ids = score > threshold
    else:
        filled = np.where(missing, 0, prob)  # argmax would pick NaN; those pixels are blanked below anyway
        ids = filled.argmax(axis=0)
        score = np.take_along_axis(filled, ids[None], axis=0)[0].astype(np.float32)
    score[missing] = PROB_NODATA
    return np.where(missing, MASK_NODATA, ids).astype(np.uint8), score


class MaskWriter:
    """Writes a class-id raster and its probability raster row strip by row strip, then publishes COGs.

    From class probabilities ``(K, rows, width)`` (see :func:`classify`): with ``K <= 2`` the mask holds 1
    where the last channel's probability exceeds ``threshold`` (a cloud mask), and the probability raster
    that probability; with ``K > 2`` the mask holds the argmax class and the probability raster its
    probability (the confidence). ``colors`` (RGB per class id) become the mask's colour table.

    Rows stream into tiled GeoTIFFs beside the destination; :meth:`close` converts them to
    Cloud-Optimized GeoTIFFs and renames them into place, so an interrupted prediction leaves no
    output behind.
    """

    def __init__(
        self,
        mask_path: Path,
        prob_path: Path,
        *,
        height: int,
        width: int,
        crs: Any,
        transform: Any,
        threshold: float = 0.5,
        colors: Sequence[tuple[int, int, int]] | None = None,
    ) -> None:
        if colors is not None and len(colors) > MASK_NODATA:
            raise ValueError(f"at most {MASK_NODATA} class colours fit a uint8 mask, got {len(colors)}")
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
        if colors is not None:
            table = {k: (*map(int, rgb), 255) for k, rgb in enumerate(colors)}
            self._mask.write_colormap(1, {**table, MASK_NODATA: (0, 0, 0, 0)})

    def write(self, row: int, prob: np.ndarray) -> np.ndarray:
        """Write class probabilities ``prob`` (K, rows, width; NaN where there is no data) starting at ``row``.

        Returns:
            The class ids written (:data:`MASK_NODATA` where there is no data).
        """
        ids, score = classify(prob, self.threshold)
        window = Window(0, row, prob.shape[2], prob.shape[1])
        self._prob.write(score, 1, window=window)
        self._mask.write(ids, 1, window=window)
        return ids

    def close(self) -> None:
        """Finish both files as COGs in their final places."""
        self._mask.close()
        self._prob.close()
        # Overviews of class ids must pick a class, not blend ids into another class; probabilities average.
        for key, final, resampling in (("mask", self.mask_path, "NEAREST"), ("prob", self.prob_path, "AVERAGE")):
            cog = final.with_name(f".{final.name}.cog.partial.tif")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                rasterio.shutil.copy(self._tmp[key], cog, driver="COG", compress="deflate", resampling=resampling)
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
