"""The cache through `run.py`: an entry is used only while the output it points at is still in this checkout."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli import run_cli, stage_status
from tests.test_pipeline import STAGES, TINY

pytestmark = pytest.mark.slow


def output_folders(stdout: str) -> list[Path]:
    """Every stage output the run's summary names (checkpoint and report copy), resolved."""
    return [Path(m[1]).resolve() for m in re.finditer(r"^(?:checkpoint|report):\s+(\S+)", stdout, re.M)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cache_workspace")
    (path / "home").mkdir()
    return path


@pytest.fixture(scope="module")
def first(workspace: Path) -> subprocess.CompletedProcess[str]:
    result = run_cli(workspace, *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_deleting_artifacts_re_executes_the_stages_and_says_so(first, workspace: Path) -> None:
    shutil.rmtree(workspace / "artifacts")
    again = run_cli(workspace, *TINY)
    assert again.returncode == 0, again.stderr[-3000:]
    assert stage_status(again.stdout) == dict.fromkeys(STAGES, "executed")
    # The data stage hit its entry, found the output gone and ran again; the later stages then had new inputs.
    notes = [line for line in again.stderr.splitlines() if "running the stage again" in line]
    assert len(notes) == 1 and "synthesize_eurosat: the cached output" in notes[0] and "is gone" in notes[0]
    assert "Traceback" not in again.stderr
    assert all(p.is_file() for p in output_folders(again.stdout))
    # The entry was overwritten, not shadowed: the next run takes everything from the cache, silently.
    third = run_cli(workspace, *TINY)
    assert third.returncode == 0, third.stderr[-3000:]
    assert all(s.startswith("cached") for s in stage_status(third.stdout).values())
    assert "running the stage again" not in third.stderr


def test_a_second_checkout_never_uses_the_first_ones_outputs(first, workspace: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    result = run_cli(clone, *TINY, home=workspace / "home")  # the same user, so the same Flyte cache
    assert result.returncode == 0, result.stderr[-3000:]
    assert stage_status(result.stdout) == dict.fromkeys(STAGES, "executed")
    checkpoint = Path(re.search(r"^checkpoint:\s+(\S+)", result.stdout, re.M)[1])
    assert checkpoint.is_relative_to(clone / "artifacts")
    # Each checkout keeps its own entries: the first one's next run is still entirely cached.
    back = run_cli(workspace, *TINY)
    assert all(s.startswith("cached") for s in stage_status(back.stdout).values()), back.stdout
