import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from satpipe.artifacts import write_manifest
from satpipe.data.patches import PATCH_STAGE
from satpipe.errors import DataError
from satpipe.evaluation.clouds import METRICS
from satpipe.evaluation.segmentation import evaluate_segmenter
from tests.conftest import SMALL_EVALUATION


def test_evaluation_records_every_protocol(trained_segmenter: dict[str, Path]) -> None:
    metrics = json.loads((trained_segmenter["evaluate"] / "metrics.json").read_text())
    assert metrics["protocol"].startswith("38-Cloud full-scene") and metrics["threshold"] == 0.5
    assert len(metrics["per_scene"]) == metrics["full_scene"]["scenes"] == 2
    for row in metrics["per_scene"]:
        assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == 512 * 512  # every ground-truth pixel, unpadded
        assert set(METRICS) <= set(row) and row["windows"] > 0
    assert metrics["sweep"]["threshold"][0] == 0.02 and len(metrics["sweep"]["jaccard"]) == len(
        metrics["sweep"]["threshold"]
    )
    assert 0 < metrics["patch_level_val"]["jaccard"] <= 1
    cross = metrics["cross_dataset"]
    assert cross["dtype"] == "uint8" and cross["renormalized"]["jaccard"] > cross["as_trained"]["jaccard"]
    assert next(name for name, _ in metrics["headline"]) == "Jaccard"


def test_previews_hold_the_scene_its_truth_and_the_prediction(trained_segmenter: dict[str, Path]) -> None:
    previews = sorted((trained_segmenter["evaluate"] / "previews").glob("*.npz"))
    assert len(previews) == 2
    data = np.load(previews[0])
    assert data["rgb"].shape == (*data["gt"].shape, 3) and data["rgb"].dtype == np.uint8 and data["pred"].dtype == bool


def test_test_scenes_stored_unlike_the_training_patches_are_refused_before_scoring(
    synthetic_clouds: Path, tmp_path: Path
) -> None:
    data = Path(shutil.copytree(synthetic_clouds / "38-Cloud_test", tmp_path / "data" / "38-Cloud_test"))
    for band in data.glob("test_*/*.TIF"):  # reflectance as floats, as another product stores it
        with rasterio.open(band) as src:
            values = src.read(1).astype(np.float32) * 2e-5 - 0.1
        with rasterio.open(band, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                           dtype="float32") as dst:  # fmt: skip
            dst.write(values[None])
    write_manifest(tmp_path / "prepared", PATCH_STAGE, dtype="uint16")
    with pytest.raises(DataError, match=f"{data}: test bands stored as float32, the training patches as uint16"):
        evaluate_segmenter(data.parent, tmp_path / "prepared", tmp_path / "no-training", tmp_path / "out",
                           **SMALL_EVALUATION, progress=False)  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_previews_keep_each_scenes_worst_tile_at_full_resolution(trained_segmenter: dict[str, Path]) -> None:
    for path in sorted((trained_segmenter["evaluate"] / "previews").glob("*.npz")):
        data = np.load(path)
        gt, pred = data["tile_gt"], data["tile_pred"]
        assert gt.shape == pred.shape == data["tile_rgb"].shape[:2] == (256, 256)  # 512-pixel scenes: whole tiles
        assert int(data["tile_wrong"]) == int((gt != pred).sum())
        row, col = data["tile_origin"]
        assert row % 256 == col % 256 == 0
        step = 512 // data["gt"].shape[0]  # the scene preview, subsampled: its tile agrees where they overlap
        assert np.array_equal(data["gt"][row // step : (row + 256) // step, col // step : (col + 256) // step],
                              gt[::step, ::step])  # fmt: skip
