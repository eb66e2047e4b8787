"""The quick-start data is learnable: a smaller quick-start configuration beats chance by far."""

import json
from pathlib import Path

from satpipe.artifacts import read_manifest
from satpipe.training.history import epoch_series, read_metrics_csv


def test_small_quickstart_reaches_80_percent_test_accuracy(trained_run: dict[str, Path]) -> None:
    metrics = json.loads((trained_run["evaluate"] / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["samples"] == 100
    assert metrics["accuracy"] >= 0.8, metrics  # chance is 0.1


def test_loss_fell_and_checkpoints_are_the_top_k(trained_run: dict[str, Path]) -> None:
    rows = read_metrics_csv(trained_run["train"] / "metrics.csv")
    _, losses = epoch_series(rows, "train_loss_epoch")
    assert losses[-1] < 0.5 * losses[0]
    manifest = read_manifest(trained_run["train"], "train")
    scores = [entry["score"] for entry in manifest["top_k"]]
    _, val_acc = epoch_series(rows, "val_acc")
    assert len(scores) == 3 and scores == sorted(val_acc, reverse=True)[:3]
    assert manifest["best_checkpoint"] == manifest["top_k"][0]["checkpoint"]
    assert manifest["epochs_run"] == len(val_acc) == 6
    assert all((trained_run["train"] / e["checkpoint"]).exists() for e in manifest["top_k"])
    assert (trained_run["train"] / "checkpoints" / "last.ckpt").exists()


def test_tsne_projections_are_recorded(trained_run: dict[str, Path]) -> None:
    projections = json.loads((trained_run["train"] / "tsne.json").read_text())["projections"]
    assert [p["epoch"] for p in projections] == [2, 5]  # every 3 epochs, the last included
    assert len(projections[-1]["x"]) == len(projections[-1]["label"]) == 100
