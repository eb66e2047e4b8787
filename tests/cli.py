"""Running run.py as a user would, on an isolated HOME, and reading what it printed."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT

#: An API key that must never appear in anything a run writes.
SECRET = "wandb-test-key-0123456789abcdef0123456789abcdef"


def run_cli(workspace: Path, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """run.py in ``workspace`` with ``workspace/home`` (or ``home``) as HOME, where Flyte keeps its cache."""
    home = home or workspace / "home"
    env = {**os.environ, "HOME": str(home), "WANDB_API_KEY": SECRET, "PYTHONUNBUFFERED": "1"}
    env.pop("SATPIPE_ARTIFACTS", None)
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "run.py"), *args],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def stage_status(stdout: str) -> dict[str, str]:
    return {m[1]: m[2] for m in re.finditer(r"^\s+(\w+)\s+(executed|cached|input)", stdout, re.M)}


def cache_entries(workspace: Path) -> int:
    db = workspace / "home" / ".flyte" / "local-cache" / "cache.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from task_cache").fetchone()[0]
