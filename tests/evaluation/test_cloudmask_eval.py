import json
from typing import Any

import numpy as np
import pytest
import torch

from satpipe.evaluation.cloudmask import KEEP, WINDOW, reference_grid, reference_predict, training_summary
from satpipe.evaluation.engine import ArraySink, predict_scene
from satpipe.evaluation.segmentation import METRICS_JSON
from satpipe.io.cloudmask import NORM_LOW, SCENE_SHAPE, read_scene
from satpipe.io.rasters import ArraySource


def test_reference_geometry_of_an_identity_model_returns_the_scene_exactly() -> None:
    scene = np.random.default_rng(0).random((9, *SCENE_SHAPE), dtype=np.float32)
    windows: list[tuple[int, ...]] = []

    def identity(x: torch.Tensor) -> torch.Tensor:
        windows.append(tuple(x.shape))
        return x[:, :1]

    assert reference_grid(*SCENE_SHAPE) == (7, 9)
    out = reference_predict(scene, identity, np.float32(NORM_LOW), batch_size=8)
    assert out.shape == SCENE_SHAPE
    np.testing.assert_array_equal(out, scene[0])  # exact: each pixel comes from one window's central part
    assert sum(shape[0] for shape in windows) == 63 and {shape[1:] for shape in windows} == {(9, WINDOW, WINDOW)}


def test_reference_windows_see_the_padding_as_values_that_normalise_to_zero() -> None:
    scene = np.ones((9, 300, 400), np.float32)
    seen = []

    def record(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return x[:, :1]

    reference_predict(scene, record, np.float32(NORM_LOW), batch_size=100)
    first = seen[0][0]  # the top-left window reaches beyond the scene
    margin = (WINDOW - KEEP) // 2
    top = (reference_grid(300, 400)[0] * KEEP - 300) // 2
    np.testing.assert_array_equal(first[:, 0, 0].numpy(), np.float32(NORM_LOW))
    assert (first[:, margin + top :, margin + 100] == 1).all()


def test_blended_engine_of_an_identity_model_also_returns_the_scene() -> None:
    scene = np.random.default_rng(1).uniform(0.6, 1.0, (9, *SCENE_SHAPE)).astype(np.float32)
    sink = ArraySink(1, *SCENE_SHAPE)
    predict_scene(ArraySource(scene, nodata=NORM_LOW), lambda x: x[:, :1], sink, channels=1, window=WINDOW, overlap=80,
                  blend="cosine", batch_size=16)  # fmt: skip
    np.testing.assert_allclose(sink.prob[0], scene[0], atol=2e-7)


def test_trained_models_beat_the_majority_class_on_held_out_scenes(cloudmask_runs: dict[str, Any]) -> None:
    test_file = next((cloudmask_runs["raw"] / "ssts").iterdir())
    scene = read_scene(test_file)
    cloud_fraction = scene.clouds[scene.valid].mean()
    majority = max(cloud_fraction, 1 - cloud_fraction)
    for evaluated in cloudmask_runs["evaluate"]:
        metrics = json.loads((evaluated / METRICS_JSON).read_text())
        (row,) = metrics["per_scene"]
        assert row["file"] == test_file.name and row["cloud_fraction"] == pytest.approx(cloud_fraction)
        for geometry in ("reference", "blended"):
            assert row[geometry]["accuracy"] > majority + 0.05, (geometry, row, majority)
            assert row[geometry]["jaccard"] > 0.5 and row[geometry]["seconds"] > 0
        assert metrics["summary"]["reference"]["accuracy"] == row["reference"]["accuracy"]


def test_training_summary_reports_the_evaluated_epoch(cloudmask_runs: dict[str, Any]) -> None:
    summary = training_summary(cloudmask_runs["train"][1])
    assert summary["seed"] == 1 and summary["epochs"] == 3 and 1 <= summary["best_epoch"] <= 3
    assert 0.5 < summary["train_accuracy"] <= 1 and summary["mean_epoch_time_s"] > 0
    assert summary["monitor"] == "val_jaccard" and summary["device"] == "cpu"
