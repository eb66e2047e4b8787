"""Full-scene evaluation of a K-class segmenter on the test scenes of a dataset described by ``dataset.yaml``.

Each test scene streams through the windowed engine once for the model and once for the per-pixel
baseline. A sink turns each finished strip of class probabilities into class ids, writes them (model only)
as Cloud-Optimized GeoTIFFs on the scene's grid, and adds the strip to a K x K confusion matrix against
the same rows of the scene's mask, so memory does not grow with the scene's height. Pixels whose mask
value is no class (``ignore_index``, unknown values) and pixels without image data are not scored.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window
from rich.progress import track

from satpipe.artifacts import atomic_dir, read_manifest, write_manifest
from satpipe.data.patches import PATCH_STAGE
from satpipe.errors import DataError
from satpipe.evaluation.engine import Predictor, predict_scene
from satpipe.evaluation.segmentation import EVALUATE_STAGE, METRICS_JSON, PREVIEW_DIR, PREVIEW_SIDE, model_predictor
from satpipe.io.dataset_files import Scene, list_scenes
from satpipe.io.description import IGNORE, DatasetDescription, hex_rgb, read_description
from satpipe.io.rasters import MASK_NODATA, MaskWriter, RasterScene, Source, classify, percentile_stretch
from satpipe.training.checkpoints import load_trained
from satpipe.training.pixel_baseline import fit_pixel_classifier, sample_pixels

logger = logging.getLogger(__name__)

PREDICTIONS_DIR = "predictions"
BASELINE_PIXELS = 50_000  #: training pixels the per-pixel baseline is fitted on
BASELINE_SEED = 0
GDAL_CACHE_MB = 256  # GDAL's default block cache is 5% of RAM; a fixed cap keeps memory flat whatever the scene


def confusion_metrics(confusion: np.ndarray, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Per-class and mean scores from a K x K confusion matrix (rows: true class, columns: predicted).

    A class absent from both truth and prediction has no score (None) and is left out of ``miou`` and
    ``macro_f1``: nothing was there to find or to get wrong. A class present in one of them but never
    predicted (or never true) scores 0 precision (recall). Means are None when no class is present.

    Args:
        confusion: Pixel counts ``(K, K)``.
        classes: Class names for the ``class`` field (default: the class ids).
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(confusion)
    true, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    per_class, ious, f1s = [], [], []
    for k in range(len(confusion)):
        fp, fn = int(predicted[k] - tp[k]), int(true[k] - tp[k])
        row: dict[str, Any] = {"class": classes[k] if classes is not None else k, "pixels": int(true[k])}
        if tp[k] + fp + fn == 0:
            row |= {"iou": None, "precision": None, "recall": None, "f1": None}
        else:
            row |= {
                "iou": float(tp[k] / (tp[k] + fp + fn)),
                "precision": float(tp[k] / predicted[k]) if predicted[k] else 0.0,
                "recall": float(tp[k] / true[k]) if true[k] else 0.0,
                "f1": float(2 * tp[k] / (2 * tp[k] + fp + fn)),
            }
            ious.append(row["iou"])
            f1s.append(row["f1"])
        per_class.append(row)
    total = int(confusion.sum())
    return {
        "per_class": per_class,
        "miou": float(np.mean(ious)) if ious else None,
        "overall_accuracy": float(tp.sum() / total) if total else None,
        "macro_f1": float(np.mean(f1s)) if f1s else None,
    }


def rgb_bands(desc: DatasetDescription, count: int) -> list[int]:
    """Band indices shown as red, green, blue: those so named in ``desc.bands``, else the first three."""
    names = [b.lower() for b in desc.bands] if desc.bands else []
    if all(colour in names for colour in ("red", "green", "blue")):
        return [names.index(colour) for colour in ("red", "green", "blue")]
    return [min(i, count - 1) for i in range(3)]  # one or two bands show as grey


@dataclass(frozen=True)
class SceneStats:
    """What a scene cost, and the labelled pixels left unscored because the image has no data there."""

    windows_run: int
    windows_skipped: int
    labelled_without_data: int


class _PreviewSource:
    """Passes windows to the engine and keeps every ``step``-th row and column of the display bands.

    The engine reads on a worker thread; only disjoint slices of the preview are written there, and they
    are read after the engine returns.
    """

    def __init__(self, source: Source, bands: list[int], step: int) -> None:
        self.source, self.bands, self.step = source, bands, step
        self.height, self.width, self.count = source.height, source.width, source.count
        self.rgb = np.zeros((3, -(-self.height // step), -(-self.width // step)), np.float32)

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        data = self.source.read(row, col, height, width)
        first_row, first_col = -(-row // self.step) * self.step, -(-col // self.step) * self.step
        rows, cols = slice(first_row - row, height, self.step), slice(first_col - col, width, self.step)
        shown = np.where(self.source.valid(data)[rows, cols], data[self.bands, rows, cols], 0)
        r0, c0 = first_row // self.step, first_col // self.step
        self.rgb[:, r0 : r0 + shown.shape[1], c0 : c0 + shown.shape[2]] = shown
        return data

    def valid(self, data: np.ndarray) -> np.ndarray:
        return self.source.valid(data)


class _ScoringSink:
    """Turns probability strips into class ids, scores them against the mask's rows, and writes them on."""

    def __init__(self, desc: DatasetDescription, mask: Any, writer: MaskWriter | None, step: int) -> None:
        self.desc, self.mask, self.writer, self.step = desc, mask, writer, step
        k = desc.num_classes
        self.confusion = np.zeros((k, k), np.int64)
        self.labelled_without_data = 0
        shape = (-(-mask.height // step), -(-mask.width // step))
        self.gt, self.pred = np.full(shape, IGNORE, np.uint8), np.full(shape, MASK_NODATA, np.uint8)

    def write(self, row: int, prob: np.ndarray) -> None:
        if self.writer is not None:
            self.writer.write(row, prob)
        ids, _ = classify(prob)  # as the writer classifies, so the COG and the scores agree
        rows, width = ids.shape
        try:
            values = self.mask.read(1, window=Window(0, row, width, rows))
        except RasterioError as e:
            raise DataError(f"{self.mask.name}: unreadable mask at rows {row}..{row + rows} ({e})") from None
        truth = self.desc.class_ids(values)
        labelled = truth != IGNORE
        scored = labelled & (ids != MASK_NODATA)
        k = self.desc.num_classes
        pairs = truth[scored].astype(np.int64) * k + ids[scored]
        self.confusion += np.bincount(pairs, minlength=k * k).reshape(k, k)
        self.labelled_without_data += int((labelled & ~scored).sum())
        first = -(-row // self.step) * self.step
        kept = slice(first // self.step, first // self.step + len(range(first, row + rows, self.step)))
        self.gt[kept] = truth[first - row :: self.step, :: self.step]
        self.pred[kept] = ids[first - row :: self.step, :: self.step]


def score_scene(
    scene: Scene,
    desc: DatasetDescription,
    predict: Predictor,
    out_predictions_dir: Path | None,
    *,
    window: int,
    overlap: int,
    blend: str,
    batch_size: int,
    device: torch.device | str,
    colors: Sequence[tuple[int, int, int]] | None = None,
) -> tuple[np.ndarray, SceneStats, dict[str, np.ndarray]]:
    """Predict one scene whole and score it against its mask.

    Args:
        scene: The scene's image and mask.
        desc: The description (classes, mask values, band names, nodata).
        predict: Raw windows ``(B, C, h, w)`` -> class probabilities ``(B, K, h, w)``, K = ``desc.num_classes``.
        out_predictions_dir: Where ``<stem>.tif`` (class ids, uint8, 255 no data, colour table) and
            ``<stem>.confidence.tif`` (float32, NaN no data) go, on the image's grid; None writes nothing.
        window: Window side in pixels.
        overlap: Pixels shared by neighbouring windows.
        blend: How overlapping windows are weighted.
        batch_size: Windows per model call.
        device: Where the model runs.
        colors: RGB per class for the colour table (default: the description's).

    Returns:
        The confusion matrix ``(K, K)`` (rows true, columns predicted), what the scene cost, and a preview
        at most :data:`PREVIEW_SIDE` pixels across: ``rgb`` (H, W, 3 uint8), ``gt`` (class ids, 255 not
        labelled) and ``pred`` (class ids, 255 no data).

    Raises:
        DataError: If the image or mask is unreadable or they differ in size. Nothing is written then.
    """
    if desc.num_classes < 2:
        raise DataError(f"{desc.path}: scoring needs at least two classes, got {list(desc.classes)}")
    with RasterScene([scene.image]) as image, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        if desc.nodata is not None and math.isfinite(desc.nodata):
            image.nodata = desc.nodata  # the description's no-data value, as the patches were cut with
        if not scene.mask.is_file():
            raise DataError(f"{scene.mask}: mask of {scene.image.name} does not exist")
        with rasterio.open(scene.mask) as mask:
            if (mask.height, mask.width) != (image.height, image.width):
                size = f"{image.width}x{image.height}"
                raise DataError(f"{scene.mask}: {mask.width}x{mask.height} pixels, but its image is {size}")
            step = max(1, -(-max(image.height, image.width) // PREVIEW_SIDE))
            source = _PreviewSource(image, rgb_bands(desc, image.count), step)
            writer = None
            if out_predictions_dir is not None:
                writer = MaskWriter(
                    Path(out_predictions_dir) / f"{scene.stem}.tif",
                    Path(out_predictions_dir) / f"{scene.stem}.confidence.tif",
                    height=image.height,
                    width=image.width,
                    crs=image.crs,
                    transform=image.transform,
                    colors=list(colors) if colors is not None else desc.rgb_colors(),
                )
            sink = _ScoringSink(desc, mask, writer, step)
            try:
                engine = predict_scene(
                    source,
                    predict,
                    sink,
                    channels=desc.num_classes,
                    window=window,
                    overlap=overlap,
                    blend=blend,
                    batch_size=batch_size,
                    device=device,
                )
            except BaseException:
                if writer is not None:
                    writer.abort()
                raise
            if writer is not None:
                writer.close()
    stats = SceneStats(engine.windows_run, engine.windows_skipped, sink.labelled_without_data)
    preview = {"rgb": percentile_stretch(source.rgb), "gt": sink.gt, "pred": sink.pred}
    return sink.confusion, stats, preview


def _module_predictor(module: torch.nn.Module, device: torch.device) -> Predictor:
    """A module that already returns class probabilities (the per-pixel baseline), without gradients."""
    module = module.to(device).eval()

    @torch.inference_mode()
    def predict(x: torch.Tensor) -> torch.Tensor:
        return module(x)

    return predict


def _check_model(module: Any, train_dir: Path, prepared_dir: Path, classes: list[str], scenes: list[Scene]) -> None:
    """Refuse a model whose classes or bands are not the data's, before any scene is scored."""
    names = list(getattr(module, "class_names", None) or getattr(module, "hparams", {}).get("class_names") or [])
    if len(names) != len(classes):
        raise DataError(
            f"{train_dir}: the model predicts {len(names)} classes ({', '.join(names)}), but {prepared_dir} "
            f"holds {len(classes)} ({', '.join(classes)})"
        )
    if names != classes:
        logger.warning("the model's classes %s are named unlike the data's %s; scoring them in order", names, classes)
    for scene in scenes:  # headers only: a wrong band count is refused before the first scene is predicted
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(scene.image) as ds:
                count = ds.count
        if count != module.in_channels:
            raise DataError(
                f"{scene.image}: {count} band(s), but the model in {train_dir} expects {module.in_channels}"
            )


def evaluate_described(
    data_dir: Path,
    prepared_dir: Path,
    train_dir: Path,
    out_dir: Path,
    *,
    window: int,
    overlap: int,
    blend: str,
    batch_size: int,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score the best checkpoint and a per-pixel baseline on every test scene, and write ``metrics.json``.

    Writes ``predictions/<stem>.tif`` and ``.confidence.tif`` (the model's), ``previews/<stem>.npz`` (rgb,
    gt, pred, baseline_pred), ``metrics.json`` and the manifest into ``out_dir``, all or nothing.

    Returns:
        What ``metrics.json`` holds.

    Raises:
        DataError: If the description's classes differ from the prepared ones, a test scene is missing, or
            the model's class or band count differs from the data's. Nothing is written then.
    """
    data_dir, prepared_dir, train_dir = Path(data_dir), Path(prepared_dir), Path(train_dir)
    desc = read_description(data_dir)
    prepared = read_manifest(prepared_dir, PATCH_STAGE)
    classes, colors = list(prepared["classes"]), list(prepared["colors"])
    if list(desc.classes) != classes:
        raise DataError(f"{desc.path}: classes {list(desc.classes)}, but {prepared_dir} was prepared with {classes}")
    wanted = set(prepared["test_scenes"])
    scenes = [s for s in list_scenes(desc) if s.stem in wanted]
    if missing := sorted(wanted - {s.stem for s in scenes}):
        raise DataError(f"{desc.path}: test scene(s) {', '.join(missing)} of {prepared_dir} are not described")
    if not scenes:
        raise DataError(f"{prepared_dir}: no test scene to evaluate")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module = load_trained(train_dir, device)
    _check_model(module, train_dir, prepared_dir, classes, scenes)

    images = np.load(prepared_dir / "train_images.npy", mmap_mode="r")
    masks = np.load(prepared_dir / "train_masks.npy", mmap_mode="r")
    values, labels = sample_pixels(images, masks, BASELINE_PIXELS, np.random.default_rng(BASELINE_SEED))
    low, high = prepared["percentiles"]["low"], prepared["percentiles"]["high"]
    baseline = fit_pixel_classifier(values, labels, num_classes=len(classes), low=low, high=high, seed=BASELINE_SEED)
    predictors = {"model": model_predictor(module, device), "baseline": _module_predictor(baseline, device)}

    settings = {"window": window, "overlap": overlap, "blend": blend, "batch_size": batch_size, "device": device}
    table = [hex_rgb(c) for c in colors]
    pooled = {name: np.zeros((len(classes), len(classes)), np.int64) for name in predictors}
    rows = []
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), atomic_dir(Path(out_dir)) as tmp:
        (tmp / PREVIEW_DIR).mkdir()
        for scene in track(scenes, description="evaluating scenes", disable=not progress):
            confusion, stats, preview = score_scene(
                scene, desc, predictors["model"], tmp / PREDICTIONS_DIR, colors=table, **settings
            )
            base_confusion, _, base_preview = score_scene(scene, desc, predictors["baseline"], None, **settings)
            np.savez_compressed(tmp / PREVIEW_DIR / f"{scene.stem}.npz", **preview, baseline_pred=base_preview["pred"])
            pooled["model"] += confusion
            pooled["baseline"] += base_confusion
            scores = confusion_metrics(confusion)
            rows.append(
                {
                    "scene": scene.stem,
                    "miou": scores["miou"],
                    "overall_accuracy": scores["overall_accuracy"],
                    "baseline_miou": confusion_metrics(base_confusion)["miou"],
                    "pixels": int(confusion.sum()),
                    "labelled_without_data": stats.labelled_without_data,
                    "windows": stats.windows_run,
                    "confusion": confusion.tolist(),
                }
            )
        model, base = confusion_metrics(pooled["model"], classes), confusion_metrics(pooled["baseline"], classes)
        if model["miou"] is None:
            raise DataError(
                f"{desc.path}: the test scenes ({', '.join(prepared['test_scenes'])}) hold no labelled pixel"
            )
        result: dict[str, Any] = {
            "protocol": "full-scene K-class segmentation: one confusion matrix pooled over the labelled pixels of "
            "every test scene (pixels of no class or without image data left out); mIoU and macro F1 average "
            "the classes present in truth or prediction",
            "classes": classes,
            "colors": colors,
            "inference": {"window": window, "overlap": overlap, "blend": blend},
            "confusion": pooled["model"].tolist(),
            **model,
            "per_scene": rows,
            "baseline": {"name": "per-pixel MLP on band values", "confusion": pooled["baseline"].tolist(), **base},
            "class_frequencies": prepared.get("class_frequencies"),
        }
        result["headline"] = [  # an ordered list of (name, value): manifests sort their keys
            ["mIoU", model["miou"]],
            ["overall accuracy", model["overall_accuracy"]],
            ["macro F1", model["macro_f1"]],
            ["per-pixel baseline mIoU", base["miou"]],
        ]
        (tmp / METRICS_JSON).write_text(json.dumps(result, indent=2) + "\n")
        write_manifest(tmp, EVALUATE_STAGE, headline=result["headline"], **(provenance or {}))
    logger.info("mIoU %.4f (per-pixel baseline %.4f) over %d test scenes", model["miou"], base["miou"], len(rows))
    return result
