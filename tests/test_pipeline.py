"""The pipeline through `run.py`, as a user runs it: real local Flyte runs on an isolated cache."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from satpipe.training.history import epoch_series, read_metrics_csv
from tests import wandb_log
from tests.cli import SECRET, cache_entries, run_cli, stage_status

pytestmark = pytest.mark.slow

#: The quickstart preset, shrunk so that a run takes seconds.
TINY_SETTINGS = (
    "data.synthetic_per_class=10",
    "model.backbone=test_efficientnet",
    "training.epochs=2",
    "training.batch_size=16",
    "training.tsne_every=1",
)
TINY = [arg for setting in TINY_SETTINGS for arg in ("--set", setting)]
STAGES = ("data", "prepare", "train", "evaluate", "report")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workspace")
    (path / "home").mkdir()
    return path


@pytest.fixture(scope="module")
def first(workspace: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(workspace, *TINY)


def test_first_run_executes_every_stage_and_prints_where_things_are(first, workspace: Path) -> None:
    assert first.returncode == 0, first.stderr[-3000:]
    assert stage_status(first.stdout) == dict.fromkeys(STAGES, "executed")
    accuracy = re.search(r"test accuracy (\d\.\d+)", first.stdout)
    assert accuracy and 0 <= float(accuracy[1]) <= 1
    report = Path(re.search(r"^report:\s+(\S+)", first.stdout, re.M)[1])
    assert report == workspace / "reports" / "quickstart.html" and "<h2>Confusion matrix</h2>" in report.read_text()
    checkpoint = Path(re.search(r"^checkpoint:\s+(\S+)", first.stdout, re.M)[1])
    assert checkpoint.is_file() and checkpoint.suffix == ".ckpt"
    assert re.search(r"^W&B run:\s+\S+offline-run-\S+", first.stdout, re.M)
    assert "weights_only" not in first.stdout + first.stderr  # checkpoints are saved and read with it set


def test_identical_rerun_executes_no_stage(first, workspace: Path) -> None:
    runs_before = sorted((workspace / "artifacts" / "runs").iterdir())
    again = run_cli(workspace, *TINY)
    assert again.returncode == 0, again.stderr[-3000:]
    first_run = re.search(r"^run (\S+)", first.stdout, re.M)[1]
    assert stage_status(again.stdout) == dict.fromkeys(STAGES, "cached")
    assert again.stdout.count(f"cached (from run {first_run})") == len(STAGES)
    assert sorted((workspace / "artifacts" / "runs").iterdir()) == runs_before  # nothing new was written


def test_changed_training_setting_reruns_training_and_later_stages_only(first, workspace: Path) -> None:
    changed = run_cli(workspace, *TINY, "--set", "training.phase2_lr=1e-3")
    assert changed.returncode == 0, changed.stderr[-3000:]
    status = stage_status(changed.stdout)
    assert status["data"].startswith("cached") and status["prepare"].startswith("cached")
    assert status["train"] == status["evaluate"] == status["report"] == "executed"


def test_wandb_offline_run_holds_the_logged_metrics(first, workspace: Path) -> None:
    train_dir = Path(re.search(r"^checkpoint:\s+(\S+)", first.stdout, re.M)[1]).parent.parent
    manifest = json.loads((train_dir / "manifest.json").read_text())
    assert manifest["wandb"]["mode"] == "offline"
    log_file = next(Path(manifest["wandb"]["dir"]).glob("run-*.wandb"))
    rows = wandb_log.history(log_file)
    logged_acc = [row["val_acc"] for row in rows if "val_acc" in row]
    _, csv_acc = epoch_series(read_metrics_csv(train_dir / "metrics.csv"), "val_acc")
    assert logged_acc == pytest.approx(csv_acc)  # the same numbers the report plots
    assert any("lr-AdamW/backbone" in row for row in rows) and any("val_tsne/_type" in row for row in rows)
    logged_config = wandb_log.config(log_file)
    assert logged_config["backbone"] == "test_efficientnet"


def test_no_secret_in_any_file_the_run_wrote(first, workspace: Path) -> None:
    offenders = [p for p in workspace.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert offenders == []
    assert SECRET not in first.stdout + first.stderr


def corrupt_copy(workspace: Path, name: str) -> Path:
    """A copy of the first run's synthetic EuroSAT to damage."""
    import shutil

    source = next((workspace / "artifacts" / "runs").glob("*/synthesize-*"))
    target = workspace / "inputs" / name
    shutil.copytree(source, target)
    return target


def missing_folder(workspace: Path) -> Path:
    return workspace / "does-not-exist"


def empty_folder(workspace: Path) -> Path:
    (workspace / "inputs" / "empty").mkdir(parents=True)
    return workspace / "inputs" / "empty"


def extra_class_folder(workspace: Path) -> Path:
    root = corrupt_copy(workspace, "extra-class")
    (root / "2750" / "Glacier").mkdir()
    return root


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (missing_folder, "data folder does not exist"),
        (empty_folder, "no EuroSAT class folders"),
        (extra_class_folder, "unknown class folder 'Glacier'"),
    ],
)
def test_bad_data_folders_are_refused_before_anything_runs(first, workspace: Path, make_input, message) -> None:
    entries = cache_entries(workspace)
    result = run_cli(workspace, *TINY, "--data-dir", str(make_input(workspace)))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: ") and message in result.stderr
    assert cache_entries(workspace) == entries


def test_invalid_config_value_is_one_line(workspace: Path) -> None:
    result = run_cli(workspace, "--set", "training.phase2_lr=-1")
    assert result.returncode == 2 and result.stderr == "error: training.phase2_lr must be > 0 (and < 10), got -1.0\n"
    assert not (workspace / "artifacts").exists() or result.stdout == ""


def damage_image(workspace: Path) -> tuple[Path, str]:
    root = corrupt_copy(workspace, "corrupt-image")
    bad = root / "2750" / "Pasture" / "Pasture_3.jpg"
    bad.write_bytes(bad.read_bytes()[:80])
    return root, "Pasture_3.jpg: unreadable image"


def damage_bands(workspace: Path) -> tuple[Path, str]:
    import numpy as np
    import rasterio

    root = corrupt_copy(workspace, "wrong-bands")
    bad = next(root.rglob("Forest_2.tif"))
    with rasterio.open(bad, "w", driver="GTiff", count=4, width=64, height=64, dtype="uint16") as dst:
        dst.write(np.zeros((4, 64, 64), np.uint16))
    return root, "Forest_2.tif: expected 13 bands (B01..B12, B8A), got 4"


@pytest.mark.parametrize(
    ("damage", "extra"),
    [(damage_image, []), (damage_bands, ["--set", "data.bands=ms"])],
    ids=["corrupt-image", "wrong-band-count"],
)
def test_bad_chips_stop_the_run_with_one_line_and_leave_no_trace(first, workspace: Path, damage, extra) -> None:
    root, message = damage(workspace)
    entries = cache_entries(workspace)
    result = run_cli(workspace, *TINY, "--data-dir", str(root), *extra)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    assert cache_entries(workspace) == entries  # nothing cached from the failed run
    leftovers = [p for p in (workspace / "artifacts" / "runs").rglob("*") if ".partial-" in p.name]
    assert leftovers == []
