"""The cloud segmentation pipeline through `run.py`: synthetic data, a local 38-Cloud folder, bad input."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli import cache_entries, run_cli, stage_status

pytestmark = pytest.mark.slow

#: The clouds preset, shrunk so that a run takes seconds (the small reference U-Net, one epoch).
TINY = [
    arg
    for setting in (
        "data.synthetic_train_scenes=3",
        "data.synthetic_test_scenes=1",
        "data.synthetic_size=256",
        "model.arch=unet_cloudmask",
        "training.epochs=1",
        "training.slidemix_gamma=1",
        "evaluation.window=128",
        "evaluation.overlap=32",
    )
    for arg in ("--set", setting)
]
STAGES = ("data", "prepare", "train", "evaluate", "report")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clouds_workspace")
    (path / "home").mkdir()
    return path


@pytest.fixture(scope="module")
def first(workspace: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(workspace, "clouds", *TINY)


def test_synthetic_clouds_run_end_to_end(first, workspace: Path) -> None:
    assert first.returncode == 0, first.stderr[-3000:]
    assert stage_status(first.stdout) == dict.fromkeys(STAGES, "executed")
    headline = re.search(r"^Jaccard (\d\.\d+)\s+precision (\d\.\d+)\s+recall (\d\.\d+)", first.stdout, re.M)
    assert headline and all(0 <= float(v) <= 1 for v in headline.groups())
    report = workspace / "reports" / "clouds.html"
    assert report.exists() and "38-Cloud full-scene protocol" in report.read_text()


def test_38cloud_preset_reads_a_local_38cloud_folder(first, workspace: Path) -> None:
    synthesized = next((workspace / "artifacts" / "runs").glob("*/synthesize-*"))
    local = run_cli(workspace, "38cloud", "--data-dir", str(synthesized), *TINY, "--set", "data.patch_size=128")
    assert local.returncode == 0, local.stderr[-3000:]
    status = stage_status(local.stdout)
    assert status["data"] == "input" and status["train"] == "executed"
    assert status["prepare"].startswith("cached")  # the same scenes and patch settings, keyed by content


def test_a_broken_38cloud_folder_is_refused_before_anything_runs(first, workspace: Path) -> None:
    synthesized = next((workspace / "artifacts" / "runs").glob("*/synthesize-*"))
    broken = Path(shutil.copytree(synthesized, workspace / "inputs" / "broken"))
    shutil.rmtree(next(broken.rglob("train_nir")))
    result = run_cli(workspace, "38cloud", "--data-dir", str(broken))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "band folder 'train_nir' missing" in result.stderr


#: Makes the segmenter's training loss NaN at its first step, as a diverging run's would become.
DIVERGE = (
    "import torch; from satpipe.training.segmentation import Segmenter as M; step = M.training_step; "
    "M.training_step = lambda self, b, i: step(self, b, i) * (torch.nan if self.trainer.global_step == 0 else 1)"
)


def test_a_non_finite_loss_stops_the_run_in_one_line_with_no_training_output(first, workspace: Path) -> None:
    entries, trained = cache_entries(workspace), set((workspace / "artifacts" / "runs").rglob("train-*"))
    result = run_cli(workspace, "clouds", *TINY, "--set", "training.seed=7", before=DIVERGE)
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: training loss became nan at epoch 0, step 0; look for NaN, infinite or extreme input values, "
        "or lower the learning rate"
    ], result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    assert cache_entries(workspace) == entries  # the data stages came from the cache; nothing new was kept
    assert set((workspace / "artifacts" / "runs").rglob("train-*")) == trained
    assert not [p for p in (workspace / "artifacts" / "runs").rglob("*") if ".partial-" in p.name]
