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


def run_cli(
    workspace: Path, *args: str, before: str = "", home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``run.py args`` in ``workspace`` with ``workspace/home`` (or ``home``) as HOME, where Flyte keeps its cache.

    ``before`` is Python run first in its process: it can make something fail deep inside a stage (local
    Flyte runs execute tasks in-process).
    """
    home = home or workspace / "home"
    env = {**os.environ, "HOME": str(home), "WANDB_API_KEY": SECRET, "PYTHONUNBUFFERED": "1"}
    env.pop("SATPIPE_ARTIFACTS", None)
    script = str(PROJECT_ROOT / "run.py")
    entry = [script]
    if before:  # run.py as a script, after `before`, with the project importable as it is for the script
        code = f"import runpy, sys; sys.path.insert(0, {str(PROJECT_ROOT)!r}); {before}; "
        entry = ["-c", code + f"runpy.run_path({script!r}, run_name='__main__')"]
    return subprocess.run(
        [sys.executable, *entry, *args],
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
