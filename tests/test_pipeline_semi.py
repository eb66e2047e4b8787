"""The semi-supervised experiment through `run.py`: both arms, shared data stages, cached branches, report."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.cli import run_cli, stage_status

pytestmark = pytest.mark.slow

#: The semi preset, shrunk so that each arm trains in seconds.
TINY = [
    arg
    for setting in ("data.synthetic_train_scenes=3", "data.synthetic_test_scenes=1", "data.synthetic_size=256",
                    "training.epochs=1", "semi.fractions=1/4")
    for arg in ("--set", setting)
]  # fmt: skip


def branch_status(stdout: str, stage: str) -> dict[str, str]:
    line = re.search(rf"^\s+{stage}\s+(.*)$", stdout, re.M)[1]
    return {m[1]: m[2] for m in re.finditer(r"(\w+ [\d/]+ seed \d+) (executed|cached)", line)}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("semi_workspace")
    (path / "home").mkdir()
    return path


@pytest.fixture(scope="module")
def first(workspace: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(workspace, "semi", "--seeds", "2", *TINY)


def test_both_arms_train_on_shared_data_and_are_compared(first, workspace: Path) -> None:
    assert first.returncode == 0, first.stderr[-3000:]
    status = stage_status(first.stdout)
    assert status["data"] == status["prepare"] == status["report"] == "executed"
    arms = {f"{arm} 1/4 seed {seed}": "executed" for arm in ("supervised", "fixmatch") for seed in (42, 43)}
    assert branch_status(first.stdout, "train") == branch_status(first.stdout, "evaluate") == arms
    for arm in ("supervised", "fixmatch"):
        assert re.search(rf"^{arm} 1/4: Jaccard 0\.\d{{4}} ± 0\.\d{{4}} over 2 seeds", first.stdout, re.M)
    assert re.search(
        r"^fixmatch 1/4 vs supervised: Jaccard gain [+-]0\.\d{4}, which (beats|does not beat)", first.stdout, re.M
    )
    html = (workspace / "reports" / "semi.html").read_text()
    for title in ("Held-out Jaccard per arm", "Training curves", "Pseudo-labels over time"):
        assert f"<h2>{title}" in html


def test_another_fraction_trains_only_its_own_arms(first, workspace: Path) -> None:
    more = run_cli(workspace, "semi", "--seeds", "2", *TINY, "--set", "semi.fractions=1/4,1/2,1")
    assert more.returncode == 0, more.stderr[-3000:]
    status = stage_status(more.stdout)
    assert status["data"].startswith("cached") and status["prepare"].startswith("cached"), more.stderr[-3000:]
    train = branch_status(more.stdout, "train")
    # Every label leaves nothing unlabelled: only the supervised reference trains at share 1.
    assert {k for k, v in train.items() if v == "executed"} == {
        f"{arm} {share} seed {seed}"
        for share, arms in (("1/2", ("supervised", "fixmatch")), ("1", ("supervised",)))
        for arm in arms
        for seed in (42, 43)
    }
    for share in ("1/4", "1/2"):
        assert re.search(rf"^supervised {share} vs every label: Jaccard [+-]0\.\d{{4}}", more.stdout, re.M)
    html = (workspace / "reports" / "semi.html").read_text()
    assert "<h2>Gain against the labelled share" in html and "supervised on every label" in html


def test_unlabelled_scenes_join_the_pool_of_both_arms(first, workspace: Path) -> None:
    more = run_cli(workspace, "semi", "--seeds", "1", *TINY, "--set", "semi.unlabelled_scenes=1")
    assert more.returncode == 0, more.stderr[-3000:]
    status = stage_status(more.stdout)
    assert status["data"].startswith("cached") and status["prepare"].startswith("cached")  # labelled stages shared
    assert branch_status(more.stdout, "train") == {
        "supervised 1/4 seed 42": "executed",
        "fixmatch 1/4 seed 42": "executed",
    }
    for arm in ("supervised", "fixmatch"):
        checkpoint = Path(re.search(rf"^{arm} 1/4 seed 42:\s+(\S+)$", more.stdout, re.M)[1])
        manifest = json.loads((checkpoint.parents[1] / "manifest.json").read_text())
        assert manifest["unlabelled_scene_patches"] > 0
        assert manifest["unlabelled_patches"] > manifest["unlabelled_scene_patches"]  # the hidden-label pool stays


def test_a_sweep_tunes_the_semi_supervised_arm(first, workspace: Path) -> None:
    result = run_cli(workspace, "semi", *TINY, "--sweep", "semi.threshold=0.9,0.95")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = dict(re.findall(r"^  trial (\d+)\s+(executed|cached)\S*.*Jaccard 0\.\d{4}", result.stdout, re.M))
    assert trials == {"1": "executed", "2": "cached"}  # 0.95 is the preset's: the first run trained that arm
    assert re.search(r"^best:\s+trial \d \(0\.\d{4}\): uv run run.py semi .*--set semi.threshold=0\.9", result.stdout,
                     re.M)  # fmt: skip
    assert (workspace / "reports" / "semi-sweep.html").read_text().count("<tr><td data-value=") == 2
