"""Evaluation of a cloud segmenter: full scenes by the 38-Cloud protocol, held-out patches, other datasets."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import track

from satpipe.artifacts import atomic_dir, read_manifest, write_manifest
from satpipe.data.patches import IGNORE, PATCH_STAGE
from satpipe.data.segmentation import PatchDataset
from satpipe.errors import DataError
from satpipe.evaluation import clouds
from satpipe.evaluation.engine import ArraySink, Predictor, predict_scene
from satpipe.io.cloud38 import (
    assemble_scene,
    check_test_split,
    common_type,
    find_cross_dataset,
    find_test_root,
    group_by_scene,
    list_patches,
    read_ground_truth,
    read_patch,
    scene_ground_truth,
    unpad,
)
from satpipe.io.rasters import ArraySource, percentile_stretch
from satpipe.training.segmentation import Segmenter

logger = logging.getLogger(__name__)

EVALUATE_STAGE = "evaluate"
METRICS_JSON = "metrics.json"
PREVIEW_DIR = "previews"
PREVIEW_SIDE = 384
#: Side of the tiles searched for a scene's worst errors (shown at full resolution).
TILE_SIDE = 256
SWEEP_THRESHOLDS = [round(t, 3) for t in np.arange(0.02, 0.99, 0.02)]
CLOUD = 1  #: class id of cloud in a two-class (clear, cloud) model


def load_segmenter(train_dir: Path, map_location: str | torch.device = "cpu") -> Segmenter:
    """The best checkpoint of a training output, in eval mode, as the module class that trained it."""
    from satpipe.training.checkpoints import load_trained

    return load_trained(Path(train_dir), map_location)  # type: ignore[return-value]


def model_predictor(module: Segmenter, device: torch.device) -> Predictor:
    """Raw windows -> class probabilities (B, K, h, w), in bf16 autocast on GPUs that have it."""
    module = module.to(device).eval()
    autocast = device.type == "cuda" and torch.cuda.is_bf16_supported()

    @torch.inference_mode()
    def predict(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            return module(x).float().softmax(dim=1)

    return predict


def cloud_predictor(module: Segmenter, device: torch.device) -> Predictor:
    """Raw windows -> the cloud probability alone (B, 1, h, w): what the cloud protocols score and blend."""
    if module.num_classes != 2:
        raise DataError(f"a cloud protocol scores two-class models; this one has classes {module.class_names}")
    predict = model_predictor(module, device)
    return lambda x: predict(x)[:, CLOUD:]


def worst_tile(gt: np.ndarray, pred: np.ndarray, side: int = TILE_SIDE) -> tuple[int, int, int]:
    """Top-left row and column of the ``side``-pixel tile with the most wrong pixels, and their count.

    Tiles lie on a grid from the top-left corner; those at the right and bottom edges may be smaller.
    """
    rows, cols = -(-gt.shape[0] // side), -(-gt.shape[1] // side)
    wrong = np.zeros((rows * side, cols * side), np.int64)
    wrong[: gt.shape[0], : gt.shape[1]] = gt != pred
    per_tile = wrong.reshape(rows, side, cols, side).sum(axis=(1, 3))
    r, c = np.unravel_index(int(per_tile.argmax()), per_tile.shape)
    return int(r) * side, int(c) * side, int(per_tile[r, c])


def _preview(path: Path, image: np.ndarray, gt: np.ndarray, pred: np.ndarray) -> None:
    """A scene at most PREVIEW_SIDE pixels across, and its worst tile at full resolution."""
    step = max(1, max(gt.shape) // PREVIEW_SIDE)
    row, col, wrong = worst_tile(gt, pred)
    tile = np.s_[row : row + TILE_SIDE, col : col + TILE_SIDE]
    np.savez_compressed(
        path,
        rgb=percentile_stretch(image[:3, ::step, ::step].astype(np.float32)),
        gt=gt[::step, ::step],
        pred=pred[::step, ::step],
        tile_rgb=percentile_stretch(image[(slice(0, 3), *tile)].astype(np.float32)),
        tile_gt=gt[tile],
        tile_pred=pred[tile],
        tile_origin=np.array([row, col]),
        tile_wrong=np.array(wrong),
    )


def evaluate_scenes(
    test_root: Path,
    predict: Predictor,
    out_dir: Path,
    *,
    threshold: float,
    window: int,
    overlap: int,
    blend: str,
    batch_size: int,
    device: torch.device,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Rebuild each test scene from its patches, predict it whole, and score it against its ground truth."""
    scenes = group_by_scene(list_patches(Path(test_root), "test", require_gt=False))
    rows, hists = [], []
    for scene, patches in track(list(scenes.items()), description="evaluating scenes", disable=not progress):
        gt = read_ground_truth(scene_ground_truth(Path(test_root), scene))
        image = assemble_scene(patches)
        sink = ArraySink(1, image.shape[1], image.shape[2])
        stats = predict_scene(
            ArraySource(image),
            predict,
            sink,
            channels=1,
            window=window,
            overlap=overlap,
            blend=blend,
            batch_size=batch_size,
            device=device,
        )
        prob = np.nan_to_num(unpad(sink.prob[0], gt.shape), nan=0.0)  # no data counts as clear, as in the protocol
        counts = clouds.counts(prob, gt, threshold)
        rows.append(
            {
                "scene": scene,
                **clouds.counts_dict(counts),
                **counts.metrics(),
                "windows": stats.windows_run,
                "windows_skipped": stats.windows_skipped,
                "cloud_fraction": float(gt.mean()),
            }
        )
        hists.append(clouds.histograms(prob, gt))
        _preview(out_dir / PREVIEW_DIR / f"{scene}.npz", unpad(image, gt.shape), gt, prob > threshold)
    if not rows:
        raise DataError(f"{test_root}: no test scenes")
    return rows, hists


def evaluate_patches(
    images: list[np.ndarray] | Any,
    masks: Any,
    predict: Predictor,
    device: torch.device,
    threshold: float,
    batch_size: int,
) -> dict[str, Any]:
    """Pixel counts pooled over patches (pixels without data are left out)."""
    total = clouds.Counts(0, 0, 0, 0)
    for start in range(0, len(masks), batch_size):
        x = torch.from_numpy(np.asarray(images[start : start + batch_size], dtype=np.float32)).to(device)
        prob = predict(x)[:, 0].float().cpu().numpy()
        mask = np.asarray(masks[start : start + batch_size])
        valid = mask != IGNORE
        total = total + clouds.counts(prob[valid], mask[valid] == 1, threshold)
    return {**clouds.counts_dict(total), **total.metrics(), "patches": len(masks)}


def _patches_with_gt(root: Path) -> tuple[np.ndarray, np.ndarray]:
    images, masks = [], []
    for patch in list_patches(root, "test", require_gt=True):
        image, gt = read_patch(patch)
        images.append(image)
        masks.append(np.where(np.all(image == 0, axis=0), IGNORE, gt).astype(np.uint8))  # type: ignore[arg-type]
    return np.stack(images), np.stack(masks)


def evaluate_cross_dataset(
    root: Path, module: Segmenter, device: torch.device, threshold: float, batch_size: int
) -> dict[str, Any]:
    """Patch-level metrics on another dataset, with the training normalisation and with one re-fitted to it.

    Re-fitting uses only the target's images (its 1st/99th band percentiles), never its labels.
    """
    images, masks = _patches_with_gt(Path(root))
    if images.shape[1] != module.in_channels:
        raise DataError(f"{root}: patches have {images.shape[1]} bands, the model expects {module.in_channels}")
    as_trained = evaluate_patches(images, masks, cloud_predictor(module, device), device, threshold, batch_size)
    result = {"dataset": str(root), "dtype": str(images.dtype), "as_trained": as_trained}
    valid = masks != IGNORE
    low, high = np.percentile(images.transpose(1, 0, 2, 3)[:, valid], (1, 99), axis=1)
    refit = Segmenter(**{**module.hparams, "low": low.tolist(), "high": high.tolist()})
    refit.model.load_state_dict(module.model.state_dict())
    result["renormalized"] = evaluate_patches(
        images, masks, cloud_predictor(refit, device), device, threshold, batch_size
    )
    return result


def evaluate_segmenter(
    data_dir: Path,
    prepared_dir: Path,
    train_dir: Path,
    out_dir: Path,
    *,
    threshold: float,
    window: int,
    overlap: int,
    blend: str,
    batch_size: int,
    cross_dataset: bool,
    progress: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score the best checkpoint three ways and write ``metrics.json``.

    (a) Test scenes by the 38-Cloud full-scene protocol, with a threshold sweep; (b) the held-out
    validation scenes patch by patch; (c) GhalamClouds-layout data below ``data_dir``, when present.

    Returns:
        What ``metrics.json`` holds.
    """
    data_dir = Path(data_dir)
    # Every test file in place, and stored as the training patches were, before the first scene is scored.
    test_root, stored = find_test_root(data_dir), common_type(check_test_split(data_dir))
    if stored != (trained := read_manifest(Path(prepared_dir), PATCH_STAGE)["dtype"]):
        raise DataError(f"{test_root}: test bands stored as {stored}, the training patches as {trained}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module = load_segmenter(Path(train_dir), map_location=device)
    predict = cloud_predictor(module, device)
    with atomic_dir(Path(out_dir)) as tmp:
        (tmp / PREVIEW_DIR).mkdir()
        rows, hists = evaluate_scenes(
            test_root,
            predict,
            tmp,
            threshold=threshold,
            window=window,
            overlap=overlap,
            blend=blend,
            batch_size=batch_size,
            device=device,
            progress=progress,
        )
        val = PatchDataset(Path(prepared_dir), "val")
        result: dict[str, Any] = {
            "protocol": "38-Cloud full-scene (per-scene metrics of the cloud class over all ground-truth pixels, "
            "averaged over scenes)",
            "threshold": threshold,
            "inference": {"window": window, "overlap": overlap, "blend": blend},
            "full_scene": clouds.summarize([clouds.Counts(r["tp"], r["fp"], r["fn"], r["tn"]) for r in rows]),
            "per_scene": rows,
            "sweep": clouds.sweep(hists, SWEEP_THRESHOLDS),
            "patch_level_val": evaluate_patches(val.images, val.masks, predict, device, threshold, batch_size),
        }
        if cross_dataset and (ghalam := find_cross_dataset(data_dir)) is not None:
            result["cross_dataset"] = evaluate_cross_dataset(ghalam, module, device, threshold, batch_size)
        mean = result["full_scene"]["mean_over_scenes"]
        result["headline"] = [  # an ordered list of (name, value): manifests sort their keys
            ["Jaccard", mean["jaccard"]],
            ["precision", mean["precision"]],
            ["recall", mean["recall"]],
            ["F1 (mean of scenes)", result["full_scene"]["f1"]["mean_of_scene_f1"]],
        ]
        (tmp / METRICS_JSON).write_text(json.dumps(result, indent=2) + "\n")
        write_manifest(tmp, EVALUATE_STAGE, headline=result["headline"], **(provenance or {}))
    logger.info("full-scene Jaccard %.4f over %d scenes", mean["jaccard"], len(rows))
    return result
