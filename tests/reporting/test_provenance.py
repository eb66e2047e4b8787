"""What a report says about where its numbers come from: the commit, the wall time, the data."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from satpipe.reporting.provenance import RunFacts, wall_time
from satpipe.versioning import git_commit


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_commit_of_a_checkout_and_its_local_changes(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git(tmp_path, "add", "a.py")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = git(tmp_path, "rev-parse", "--short=12", "HEAD")
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    assert git_commit(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == f"{head} + local changes"


def test_commit_is_unknown_without_a_repository_or_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # do not find a repository above tmp
    assert git_commit(tmp_path) == "unknown"  # as in a cluster image: the code without its history
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable at all
    assert git_commit(Path(__file__).parent) == "unknown"


def test_data_and_wall_time_in_words() -> None:
    local = RunFacts("local", "/data/38-Cloud", "r1", "abc")
    assert local.data("38cloud") == "38-Cloud, the local copy at /data/38-Cloud"
    assert RunFacts("download", "s3://bucket/x", "r1", "abc").data("eurosat") == "EuroSAT, downloaded to s3://bucket/x"
    assert [wall_time(s) for s in (None, 9.04, 83.2, 7322)] == ["not measured", "9.0 s", "1 min 23 s", "2 h 2 min"]
