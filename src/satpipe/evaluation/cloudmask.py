"""CloudMask evaluation: the reference inference geometry, satpipe's blended engine, and per-scene accuracy.

The reference predicts 256 x 256 windows at a stride of 176 over the scene padded as TensorFlow's SAME
padding would (with values that normalise to zero), keeps each window's central 176 x 176, tiles them
and crops back to 1200 x 1500: a 7 x 9 window grid. The benchmark's metric is the pixel accuracy of
``p > 0.5`` against ``bayes > 0`` per scene, averaged over scenes; F1 and Jaccard are reported too.
Pixels without finite inputs are left out of every metric.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import track

from satpipe.artifacts import atomic_dir, read_manifest, write_manifest
from satpipe.data.patches import PATCH_STAGE
from satpipe.evaluation import clouds
from satpipe.evaluation.engine import ArraySink, Predictor, predict_scene
from satpipe.evaluation.segmentation import (
    EVALUATE_STAGE,
    METRICS_JSON,
    PREVIEW_DIR,
    cloud_predictor,
    load_segmenter,
)
from satpipe.io.cloudmask import NORM_LOW, list_files, read_scene
from satpipe.io.rasters import ArraySource, percentile_stretch
from satpipe.training.history import epoch_series, read_metrics_csv
from satpipe.training.trainer import METRICS_CSV, TRAIN_STAGE

logger = logging.getLogger(__name__)

WINDOW, KEEP = 256, 176
FALSE_COLOUR = (2, 1, 0)  #: S3 (0.865 um), S2 (0.659 um), S1 (0.555 um) as red, green, blue


def reference_grid(height: int, width: int, keep: int = KEEP) -> tuple[int, int]:
    """Rows and columns of windows the reference geometry uses for a scene."""
    return math.ceil(height / keep), math.ceil(width / keep)


def reference_predict(
    image: np.ndarray,
    predict: Predictor,
    fill: np.ndarray,
    *,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    window: int = WINDOW,
    keep: int = KEEP,
) -> np.ndarray:
    """Predict ``image`` (C, H, W) with the reference's tiling; returns probabilities (H, W).

    Args:
        image: The scene in physical units.
        predict: Raw windows -> cloud probabilities (B, 1, h, w) (the model normalises).
        fill: One value per band for padding (values that normalise to zero, as SAME padding of the
            normalised input does).
        batch_size: Windows per model call.
        device: Where the model runs.
        window: Window side.
        keep: Side of each window's central part that is kept.
    """
    channels, height, width = image.shape
    rows, cols = reference_grid(height, width, keep)
    margin = (window - keep) // 2
    tiled_h, tiled_w = rows * keep, cols * keep
    top, left = (tiled_h - height) // 2, (tiled_w - width) // 2
    padded = np.empty((channels, tiled_h + 2 * margin, tiled_w + 2 * margin), np.float32)
    padded[:] = np.asarray(fill, np.float32)[:, None, None]
    padded[:, margin + top : margin + top + height, margin + left : margin + left + width] = image
    tiles = np.empty((tiled_h, tiled_w), np.float32)
    positions = [(r, c) for r in range(rows) for c in range(cols)]
    for start in range(0, len(positions), batch_size):
        batch = positions[start : start + batch_size]
        x = torch.from_numpy(
            np.stack([padded[:, r * keep : r * keep + window, c * keep : c * keep + window] for r, c in batch])
        )
        probs = predict(x.to(device))[:, 0].float().cpu().numpy()
        for (r, c), p in zip(batch, probs, strict=True):
            tiles[r * keep : (r + 1) * keep, c * keep : (c + 1) * keep] = p[
                margin : margin + keep, margin : margin + keep
            ]
    return tiles[top : top + height, left : left + width]


def training_summary(train_dir: Path) -> dict[str, Any]:
    """The training run's facts that the benchmark reports: epochs, train accuracy, time per epoch.

    Train accuracy is the one of the epoch whose checkpoint is evaluated (the best by the monitored
    validation metric), not of the last epoch run.
    """
    rows = read_metrics_csv(Path(train_dir) / METRICS_CSV)
    manifest = read_manifest(Path(train_dir), TRAIN_STAGE)
    epochs, monitored = epoch_series(rows, manifest["monitor"])
    best_epoch = epochs[int(np.argmax(monitored))] if monitored else None
    accuracy = dict(zip(*epoch_series(rows, "train_accuracy"), strict=True))
    _, epoch_times = epoch_series(rows, "epoch_time")
    return {
        "seed": manifest.get("seed"),
        "epochs": manifest["epochs_run"],
        "best_epoch": best_epoch,
        "train_accuracy": accuracy.get(best_epoch) if best_epoch else None,
        "best_val_score": manifest["best_score"],
        "monitor": manifest["monitor"],
        "mean_epoch_time_s": float(np.mean(epoch_times)) if epoch_times else None,
        "precision": manifest["precision"],
        "device": manifest["device"],
    }


def _preview(path: Path, scene: Any, pred: np.ndarray, blended: np.ndarray) -> None:
    step = 3
    rgb = percentile_stretch(scene.image[list(FALSE_COLOUR), ::step, ::step])
    np.savez_compressed(
        path,
        rgb=rgb,
        gt=scene.clouds[::step, ::step],
        pred=pred[::step, ::step],
        blended=blended[::step, ::step],
        valid=scene.valid[::step, ::step],
    )


def evaluate_cloudmask(
    raw: Path,
    prepared_dir: Path,
    train_dir: Path,
    out_dir: Path,
    *,
    threshold: float,
    overlap: int,
    blend: str,
    batch_size: int,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score the best checkpoint on the test files with the reference geometry and the blended engine.

    Returns:
        What ``metrics.json`` holds: per-scene accuracy, F1, Jaccard and inference time for both
        geometries, their means, and the training run's epochs, train accuracy and epoch time.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module = load_segmenter(Path(train_dir), map_location=device)
    predict = cloud_predictor(module, device)
    prepared = read_manifest(Path(prepared_dir), PATCH_STAGE)
    tests = list_files(Path(raw), "test", prepared["split"]["max_files"])
    files = [p for p in tests if p.name in prepared["test_files"]]
    fill = np.asarray(NORM_LOW, np.float32)
    rows = []
    with atomic_dir(Path(out_dir)) as tmp:
        (tmp / PREVIEW_DIR).mkdir()
        for path in track(files, description="evaluating CloudMask scenes", disable=not progress):
            scene = read_scene(path)
            start = time.perf_counter()
            reference = reference_predict(scene.image, predict, fill, batch_size=batch_size, device=device)
            reference_time = time.perf_counter() - start
            sink = ArraySink(1, *scene.image.shape[1:])
            start = time.perf_counter()
            predict_scene(
                ArraySource(scene.image, nodata=fill),
                predict,
                sink,
                channels=1,
                window=WINDOW,
                overlap=overlap,
                blend=blend,
                batch_size=batch_size,
                device=device,
            )
            blended_time = time.perf_counter() - start
            blended = np.nan_to_num(sink.prob[0], nan=0.0)
            row: dict[str, Any] = {
                "file": path.name,
                "valid_fraction": float(scene.valid.mean()),
                "cloud_fraction": float(scene.clouds[scene.valid].mean()),
            }
            for name, prob, seconds in (("reference", reference, reference_time), ("blended", blended, blended_time)):
                metrics = clouds.counts(prob[scene.valid], scene.clouds[scene.valid], threshold).metrics()
                row[name] = {
                    "accuracy": metrics["accuracy"],
                    "f1": metrics["f1"],
                    "jaccard": metrics["jaccard"],
                    "seconds": seconds,
                }
            rows.append(row)
            _preview(tmp / PREVIEW_DIR / f"{path.stem}.npz", scene, reference > threshold, blended > threshold)
        summary = {
            name: {m: float(np.mean([r[name][m] for r in rows])) for m in ("accuracy", "f1", "jaccard", "seconds")}
            for name in ("reference", "blended")
        }
        result = {
            "protocol": "MLCommons CloudMask: per-scene pixel accuracy of p > threshold vs bayes > 0, averaged over "
            "scenes (pixels without finite inputs left out)",
            "threshold": threshold,
            "geometries": {
                "reference": f"{WINDOW} windows, stride {KEEP}, central {KEEP} kept",
                "blended": f"{WINDOW} windows, overlap {overlap}, {blend} blending",
            },
            "per_scene": rows,
            "summary": summary,
            "training": training_summary(Path(train_dir)),
            "headline": [
                ["test accuracy (reference)", summary["reference"]["accuracy"]],
                ["test accuracy (blended)", summary["blended"]["accuracy"]],
                ["F1", summary["reference"]["f1"]],
                ["Jaccard", summary["reference"]["jaccard"]],
            ],
        }
        (tmp / METRICS_JSON).write_text(json.dumps(result, indent=2) + "\n")
        write_manifest(tmp, EVALUATE_STAGE, headline=result["headline"], **(provenance or {}))
    logger.info(
        "CloudMask per-scene accuracy %.4f (reference), %.4f (blended)",
        summary["reference"]["accuracy"],
        summary["blended"]["accuracy"],
    )
    return result
