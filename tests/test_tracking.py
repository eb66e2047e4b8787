"""W&B policy and logging, with real W&B in offline mode read back from its run files."""

from pathlib import Path

import pytest

from satpipe import tracking
from satpipe.artifacts import write_manifest
from satpipe.tracking import resolve_wandb_mode
from satpipe.training.trainer import wandb_summary
from tests import wandb_log


def test_online_needs_a_key() -> None:
    assert resolve_wandb_mode("online", {"WANDB_API_KEY": "k"}) == ("online", None)
    mode, note = resolve_wandb_mode("online", {})
    assert mode == "offline" and note is not None and "WANDB_API_KEY" in note


def test_offline_and_disabled_are_kept() -> None:
    assert resolve_wandb_mode("offline", {"WANDB_API_KEY": "k"}) == ("offline", None)
    assert resolve_wandb_mode("disabled", {}) == ("disabled", None)


def test_a_disabled_run_is_not_recorded_as_a_place_to_find_it(isolated_home: Path) -> None:
    import wandb

    run = wandb.init(mode="disabled")
    assert wandb_summary(run) is None  # its "folder" is never written: nothing to print or sync
    run.finish()


CLASSIFICATION_RESULT = {
    "headline": [["test accuracy", 0.75], ["macro F1", 0.7]],
    "classes": ["Forest", "River"],
    "per_class": [
        {"class": "Forest", "precision": 0.8, "recall": 0.67, "f1": 0.73, "support": 3},
        {"class": "River", "precision": 0.5, "recall": 1.0, "f1": 0.67, "support": 1},
    ],
    "confusion": [[2, 1], [0, 1]],
}
SEGMENTATION_RESULT = {
    "headline": [["Jaccard", 0.5], ["F1 (mean of scenes)", 0.6]],
    "per_scene": [
        {"scene": "a", "tp": 10, "fp": 2, "fn": 3, "tn": 85, "jaccard": 0.67},
        {"scene": "b", "tp": 0, "fp": 1, "fn": 4, "tn": 95, "jaccard": 0.0},
    ],
}


@pytest.mark.parametrize(
    ("result", "scores", "table", "confusion"),
    [
        (CLASSIFICATION_RESULT, {"test/accuracy": 0.75, "test/macro_f1": 0.7}, "test/per_class",
         [["Forest", "Forest", 2], ["Forest", "River", 1], ["River", "Forest", 0], ["River", "River", 1]]),
        (SEGMENTATION_RESULT, {"test/jaccard": 0.5, "test/f1_mean_of_scenes": 0.6}, "test/per_scene",
         [["clear", "clear", 180], ["clear", "cloud", 3], ["cloud", "clear", 7], ["cloud", "cloud", 10]]),
    ],
    ids=["classification", "segmentation"],
)  # fmt: skip
def test_evaluation_scores_join_the_training_run(
    isolated_home: Path, result: dict, scores: dict, table: str, confusion: list
) -> None:
    import wandb

    wandb_dir = isolated_home / "w"
    run = wandb.init(project="satpipe", mode="offline", dir=str(wandb_dir), name="quickstart-train-seed0")
    for epoch in range(3):
        run.log({"val_acc": epoch / 3})
    write_manifest(isolated_home / "train", "train", wandb=wandb_summary(run))
    run.finish()

    assert tracking.log_evaluation(isolated_home / "train", result, mode="offline", dir=str(wandb_dir)) == run.id
    wandb.teardown()  # as the end of the process does: finishing a second run returns before its log is written
    training, evaluation = (next(d.glob("run-*.wandb")) for d in sorted((wandb_dir / "wandb").glob("offline-run-*")))
    assert wandb_log.run_record(evaluation).run_id == wandb_log.run_record(training).run_id == run.id
    (row,) = wandb_log.history(evaluation)
    assert row["_step"] > max(r["_step"] for r in wandb_log.history(training))  # after training's last step
    assert {key: row[key] for key in scores} == scores
    rows = wandb_log.table(evaluation, row[f"{table}/path"])
    assert len(rows["data"]) == len(result[table.split("/")[1]])
    matrix = wandb_log.table(evaluation, row["test/confusion_matrix_table/path"])
    assert matrix["columns"] == ["Actual", "Predicted", "nPredictions"] and matrix["data"] == confusion


@pytest.mark.parametrize("mode", ["disabled", "offline"])
def test_nothing_is_logged_without_a_training_run_or_with_tracking_disabled(isolated_home: Path, mode: str) -> None:
    write_manifest(isolated_home / "train", "train", wandb=None)
    assert (
        tracking.log_evaluation(isolated_home / "train", CLASSIFICATION_RESULT, mode=mode, dir=str(isolated_home))
        is None
    )
    assert not (isolated_home / "wandb").exists()
