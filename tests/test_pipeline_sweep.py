"""Sweeps through `run.py`: cached trials, data stages once, a failing trial, and the report in Chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser import rendered_dom, screenshot
from tests.cli import run_cli

pytestmark = pytest.mark.slow

#: The quickstart preset, shrunk so that a trial takes seconds.
TINY = [
    arg
    for setting in ("data.synthetic_per_class=10", "model.backbone=test_efficientnet", "training.epochs=2",
                    "training.batch_size=16")
    for arg in ("--set", setting)
]  # fmt: skip
GRID = ["--sweep", "training.phase2_lr=1e-3,3e-3", "--sweep", "training.label_smoothing=0.0,0.1"]
TRIAL_ROW = "<tr><td data-value="  # a row of the trial table (the references table has rows too)


def trials(stdout: str) -> dict[int, str]:
    return {int(m[1]): m[2] for m in re.finditer(r"^  trial (\d+)\s+(executed|cached|failed)", stdout, re.M)}


def stages(stdout: str) -> dict[str, str]:
    return {m[1]: m[2] for m in re.finditer(r"^  (data|prepare)\s+(\w+)", stdout, re.M)}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sweep_workspace")
    (path / "home").mkdir()
    return path


@pytest.fixture(scope="module")
def first(workspace: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(workspace, *TINY, *GRID)


def test_a_four_trial_grid_runs_and_reports_every_trial(first, workspace: Path) -> None:
    assert first.returncode == 0, first.stderr[-3000:]
    assert trials(first.stdout) == dict.fromkeys(range(1, 5), "executed")
    assert stages(first.stdout) == {"data": "executed", "prepare": "executed"}
    accuracies = re.findall(r"^  trial \d+\s+executed\s+test accuracy (\d\.\d+)", first.stdout, re.M)
    assert len(accuracies) == 4 and all(0 <= float(a) <= 1 for a in accuracies)
    html = (workspace / "reports" / "quickstart-sweep.html").read_text()
    assert (
        html.count(TRIAL_ROW) == 4
        and "Parallel coordinates" in html
        and "Reproduce it: <code>uv run run.py" in html
    )
    best = re.search(r"^best:\s+trial (\d+) \(\S+\): (uv run run.py .*)$", first.stdout, re.M)
    assert best and "--set training.phase2_lr=" in best[2] and "--set training.label_smoothing=" in best[2]


def test_the_sweep_report_renders_in_headless_chromium(first, workspace: Path, tmp_path: Path) -> None:
    report = workspace / "reports" / "quickstart-sweep.html"  # the four-trial grid's (tests run in file order)
    dom = rendered_dom(report, tmp_path / "profile")
    assert dom.count('class="plot-container plotly"') == 4 and 'class="parcoords"' in dom
    assert dom.count(TRIAL_ROW) == 4 and "sortTable" in dom
    pixels = np.asarray(Image.open(screenshot(report, tmp_path / "profile", tmp_path / "s.png")).convert("RGB"))
    assert pixels.reshape(-1, 3).std(axis=0).min() > 10  # drawn, not a blank page


def test_the_identical_sweep_executes_nothing(first, workspace: Path) -> None:
    again = run_cli(workspace, *TINY, *GRID)
    assert again.returncode == 0, again.stderr[-3000:]
    assert trials(again.stdout) == dict.fromkeys(range(1, 5), "cached")
    assert all(status == "cached" for status in stages(again.stdout).values())


def test_one_more_value_executes_only_the_new_trials(first, workspace: Path) -> None:
    more = run_cli(workspace, *TINY, "--sweep", "training.phase2_lr=1e-3,3e-3,1e-2", *GRID[2:])
    assert more.returncode == 0, more.stderr[-3000:]
    status = trials(more.stdout)
    assert [i for i, s in status.items() if s == "executed"] == [5, 6] and len(status) == 6  # the 1e-2 row of the grid
    assert all(status == "cached" for status in stages(more.stdout).values())  # data stages ran once, in the first


def test_a_failing_trial_is_marked_and_the_others_finish(first, workspace: Path) -> None:
    result = run_cli(workspace, *TINY, "--sweep", "model.backbone=test_efficientnet,no_such_net")
    assert result.returncode == 0, result.stderr[-3000:]
    assert trials(result.stdout) == {1: "cached", 2: "failed"}
    assert re.search(r"^  trial 2\s+failed: .*no_such_net", result.stdout, re.M)
    html = (workspace / "reports" / "quickstart-sweep.html").read_text()
    assert "failed: model.backbone: timm has no model &#x27;no_such_net&#x27;" in html


def test_each_sweep_keeps_its_own_report_and_the_latest_is_a_copy(first, workspace: Path) -> None:
    kept = workspace / re.search(r"^report:.*\(kept as (reports/\S+)\)$", first.stdout, re.M)[1]
    assert kept.name.startswith("quickstart-sweep-") and kept.read_text().count(TRIAL_ROW) == 4
    reports = sorted((workspace / "reports").glob("quickstart-sweep-*.html"))
    # The four-trial grid (twice: the same sweep keeps the same name), the six-trial one, the failing pair.
    assert sorted(p.read_text().count(TRIAL_ROW) for p in reports) == [2, 4, 6]
    latest = (workspace / "reports" / "quickstart-sweep.html").read_text()
    assert [p.read_text() for p in reports].count(latest) == 1 and latest.count(TRIAL_ROW) == 2


def test_bad_sweep_specifications_stop_before_anything_runs(workspace: Path) -> None:
    result = run_cli(workspace, *TINY, "--sweep", "training.phase2_lr=log:1e-4:1e-2")
    assert result.returncode == 2 and "a range needs --sweep-mode random" in result.stderr
    result = run_cli(workspace, *TINY, "--sweep", "training.phase2_lr=1e-3,-5")
    assert result.returncode == 2 and result.stderr == "error: training.phase2_lr must be > 0 (and < 10), got -5.0\n"
