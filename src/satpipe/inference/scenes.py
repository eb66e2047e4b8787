"""Class maps of whole scenes, read and written window by window, so memory does not grow with the scene.

A scene is one multi-band GeoTIFF, or one single-band file per band in the model's band order. Outputs are
Cloud-Optimized GeoTIFFs with the scene's CRS and transform: the class ids (uint8, 255 no data; for a
two-class cloud model 1 cloud, 0 clear; with the model's class colours as a colour table) and beside them
the probability (float32, NaN no data): of cloud for a two-class model, of the chosen class (the
confidence) for more classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from satpipe.errors import DataError
from satpipe.evaluation.engine import EngineStats, predict_scene
from satpipe.inference.models import SEGMENTATION, LoadedModel, load_model, resolve_device
from satpipe.inference.settings import (
    BLEND,
    OVERLAP,
    THRESHOLD,
    WINDOW,
    WINDOW_BATCH,
    check_outputs,
    check_scene_settings,
    probability_path,
)
from satpipe.io.description import hex_rgb
from satpipe.io.rasters import MASK_NODATA, MaskWriter, RasterScene

GDAL_CACHE_MB = 256


@dataclass
class Prediction:
    """What was written, with the engine's statistics."""

    mask: Path
    probability: Path
    height: int
    width: int
    class_fractions: dict[str, float]  #: share of the pixels with data given to each class
    stats: EngineStats


class _CountingWriter:
    """Passes rows to the writer and counts the pixels of each class on the way."""

    def __init__(self, writer: MaskWriter, classes: int) -> None:
        self.writer, self.pixels = writer, np.zeros(classes, np.int64)

    def write(self, row: int, prob: np.ndarray) -> None:
        ids = self.writer.write(row, prob)
        self.pixels += np.bincount(ids[ids != MASK_NODATA], minlength=len(self.pixels))


def predict_scene_file(
    scene_paths: list[Path],
    model: LoadedModel | Path,
    out: Path,
    prob_out: Path | None = None,
    *,
    threshold: float = THRESHOLD,
    window: int = WINDOW,
    overlap: int = OVERLAP,
    blend: str = BLEND,
    batch_size: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> Prediction:
    """Predict a scene into a class-id COG and a probability COG.

    Every setting, output path and file header is checked before a pixel is read.

    Args:
        scene_paths: One multi-band GeoTIFF, or one single-band file per band in the model's band order.
        model: A segmentation model, or the path of a checkpoint, training output or exported model.
        out: The mask to write.
        prob_out: The probability to write (default: :func:`probability_path`).
        threshold: Cloud where the probability exceeds it, in (0, 1) (two-class models).
        window: Window side, a multiple of 32.
        overlap: Pixels shared by neighbouring windows, in [0, window).
        blend: How overlapping windows are weighted (:data:`satpipe.evaluation.blending.BLEND_MODES`).
        batch_size: Windows per model call (default: 16 on a GPU, 2 on a CPU).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; used when ``model`` is a path.
        progress: Show a progress bar.

    Raises:
        ConfigError: For a setting out of range or a device this machine lacks.
        DataError: For an output that would replace an input, unreadable or mismatched band files (size,
            CRS, transform), a band count other than the model's, a model that is not a segmenter, or a
            scene without any valid pixel. Nothing is written in that case.
    """
    scene_paths, out = [Path(p) for p in scene_paths], Path(out)
    prob_out = Path(prob_out) if prob_out else probability_path(out)
    check_scene_settings(threshold=threshold, window=window, overlap=overlap, blend=blend, batch_size=batch_size)
    model_path = model.path if isinstance(model, LoadedModel) else Path(model)
    check_outputs([*scene_paths, model_path], {"--out": out, "--prob-out": prob_out})
    if not isinstance(model, LoadedModel):
        model = load_model(model_path, resolve_device(device))
    if model.task != SEGMENTATION:
        raise DataError(f"{model.path}: a {model.task} model, not a segmentation model")
    bands, classes, colors = model.info["bands"], model.info["classes"], model.info.get("colors")
    batch_size = batch_size or WINDOW_BATCH[model.device.type]
    # GDAL caches raster blocks up to 5% of RAM by default; a fixed cap keeps memory flat whatever the scene.
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), RasterScene(scene_paths) as scene:
        if scene.count != len(bands):
            raise DataError(
                f"{scene_paths[0]}: {scene.count} band(s), but {model.path} expects {len(bands)} ({', '.join(bands)})"
            )
        writer = MaskWriter(
            out,
            prob_out,
            height=scene.height,
            width=scene.width,
            crs=scene.crs,
            transform=scene.transform,
            threshold=threshold,
            colors=[hex_rgb(c) for c in colors] if colors else None,
        )
        counter = _CountingWriter(writer, len(classes))
        try:
            stats = predict_scene(
                scene,
                model.predict,
                counter,
                channels=len(classes),
                window=window,
                overlap=overlap,
                blend=blend,
                batch_size=batch_size,
                device=model.device,
                progress=progress,
            )
            if stats.windows_run == 0:
                raise DataError(
                    f"{scene_paths[0]}: every pixel is no data ({scene.nodata:g} in all bands); nothing to predict"
                )
        except BaseException:
            writer.abort()
            raise
        writer.close()
    fractions = dict(zip(classes, (counter.pixels / max(int(counter.pixels.sum()), 1)).tolist(), strict=True))
    return Prediction(out, prob_out, scene.height, scene.width, fractions, stats)
