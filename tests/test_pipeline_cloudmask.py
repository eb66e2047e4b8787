"""The CloudMask pipeline through `run.py`: seeds as a cached fan-out, a local copy, bad input."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import wandb_log
from tests.cli import SECRET, run_cli, stage_status

pytestmark = pytest.mark.slow

#: The cloudmask preset, shrunk so that a seed trains in seconds.
TINY = [
    arg
    for setting in ("data.synthetic_train_files=3", "data.synthetic_test_files=1", "training.epochs=1")
    for arg in ("--set", setting)
]


def seed_status(stdout: str, stage: str) -> dict[int, str]:
    line = re.search(rf"^\s+{stage}\s+(.*)$", stdout, re.M)[1]
    return {int(m[1]): m[2] for m in re.finditer(r"seed (\d+) (executed|cached)", line)}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cloudmask_workspace")
    (path / "home").mkdir()
    return path


@pytest.fixture(scope="module")
def first(workspace: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(workspace, "cloudmask", "--seeds", "2", *TINY)


def test_two_seeds_run_end_to_end_with_their_spread(first, workspace: Path) -> None:
    assert first.returncode == 0, first.stderr[-3000:]
    status = stage_status(first.stdout)
    assert status["data"] == status["prepare"] == status["report"] == "executed"
    both = {42: "executed", 43: "executed"}
    assert seed_status(first.stdout, "train") == seed_status(first.stdout, "evaluate") == both
    accuracy = re.search(r"^test accuracy \(reference\) (\d\.\d+) ± (\d\.\d+) over 2 seeds", first.stdout, re.M)
    assert accuracy and 0 < float(accuracy[1]) <= 1
    html = (workspace / "reports" / "cloudmask.html").read_text()
    assert "<h2>Repeat runs" in html and "MLCommons CloudMask: per-scene pixel accuracy" in html


def test_a_third_seed_runs_only_that_seed(first, workspace: Path) -> None:
    more = run_cli(workspace, "cloudmask", "--seeds", "3", *TINY)
    assert more.returncode == 0, more.stderr[-3000:]
    status = stage_status(more.stdout)
    assert status["data"].startswith("cached") and status["prepare"].startswith("cached")
    assert seed_status(more.stdout, "train") == {42: "cached", 43: "cached", 44: "executed"}
    assert seed_status(more.stdout, "evaluate") == {42: "cached", 43: "cached", 44: "executed"}
    assert status["report"] == "executed"


def test_each_seed_logs_its_own_wandb_run_with_overlays_and_epoch_times(first, workspace: Path) -> None:
    runs = re.findall(r"^W&B run:\s+(\S+)", first.stdout, re.M)
    assert len(set(runs)) == 2
    for run_dir in runs:
        rows = wandb_log.history(next(Path(run_dir).glob("run-*.wandb")))
        keys = {key for row in rows for key in row}
        assert "val_predictions/_type" in keys and "epoch_time" in keys
    offenders = [p for p in workspace.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert offenders == [] and SECRET not in first.stdout + first.stderr


def test_a_local_copy_is_read_with_data_dir(first, workspace: Path) -> None:
    synthesized = next((workspace / "artifacts" / "runs").glob("*/synthesize-*"))
    local = run_cli(workspace, "cloudmask", "--data-dir", str(synthesized), *TINY)
    assert local.returncode == 0, local.stderr[-3000:]
    status = stage_status(local.stdout)
    assert status["data"] == "input" and status["prepare"] == "cached"  # the same content, keyed by content
    assert status["train"].startswith("cached")


def test_bad_input_gets_one_line(first, workspace: Path) -> None:
    synthesized = next((workspace / "artifacts" / "runs").glob("*/synthesize-*"))
    no_test = Path(shutil.copytree(synthesized, workspace / "inputs" / "no_test"))
    shutil.rmtree(no_test / "ssts")
    result = run_cli(workspace, "cloudmask", "--data-dir", str(no_test))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ") and "no ssts/S3A*.hdf files (test split of CloudMask)" in result.stderr

    corrupt = Path(shutil.copytree(synthesized, workspace / "inputs" / "corrupt"))
    broken = sorted((corrupt / "one-day").iterdir())[0]
    broken.write_bytes(broken.read_bytes()[:5000])
    result = run_cli(workspace, "cloudmask", "--data-dir", str(corrupt), *TINY)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]  # before any stage
    assert result.stderr.startswith(f"error: {broken}: not a readable HDF5 file")
    assert not list((workspace / "artifacts" / "runs").glob("*/.patch*"))  # nothing half-written

    result = run_cli(workspace, "quickstart", "--seeds", "3")
    assert result.returncode == 2 and "--seeds applies to the presets cloudmask, semi" in result.stderr
