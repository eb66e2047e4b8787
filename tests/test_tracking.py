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


def test_evaluation_scores_join_the_training_run(isolated_home: Path) -> None:
    import wandb

    wandb_dir = isolated_home / "w"
    run = wandb.init(project="satpipe", mode="offline", dir=str(wandb_dir), name="quickstart-train-seed0")
    for epoch in range(3):
        run.log({"val_acc": epoch / 3})
    write_manifest(isolated_home / "train", "train", wandb=wandb_summary(run))
    run.finish()

    assert (
        tracking.log_evaluation(isolated_home / "train", CLASSIFICATION_RESULT, mode="offline", dir=str(wandb_dir))
        == run.id
    )
    training, evaluation = (next(d.glob("run-*.wandb")) for d in sorted((wandb_dir / "wandb").glob("offline-run-*")))
    assert wandb_log.run_record(evaluation).run_id == wandb_log.run_record(training).run_id == run.id
    (row,) = wandb_log.history(evaluation)
    assert row["_step"] > max(r["_step"] for r in wandb_log.history(training))  # after training's last step
    assert row["test/accuracy"] == 0.75 and row["test/macro_f1"] == 0.7
    assert row["test/per_class/_type"] == "table-file" and row["test/confusion_matrix_table/_type"] == "table-file"
    table = wandb_log.table(evaluation, row["test/confusion_matrix_table/path"])
    assert table["columns"] == ["Actual", "Predicted", "nPredictions"]
    assert ["Forest", "River", 1] in table["data"] and ["River", "Forest", 0] in table["data"]


@pytest.mark.parametrize("mode", ["disabled", "offline"])
def test_nothing_is_logged_without_a_training_run_or_with_tracking_disabled(isolated_home: Path, mode: str) -> None:
    write_manifest(isolated_home / "train", "train", wandb=None)
    assert (
        tracking.log_evaluation(isolated_home / "train", CLASSIFICATION_RESULT, mode=mode, dir=str(isolated_home))
        is None
    )
    assert not (isolated_home / "wandb").exists()
