"""Headless Chromium for checking that report pages render: DOM after scripts ran, and a screenshot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=20000",
]


def chromium() -> str:
    """Path of a Chromium binary, or skip the test saying why."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium package; apt-get install chromium)")


def _run(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def rendered_dom(page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran."""
    return _run(page, profile, "--dump-dom").stdout


def screenshot(page: Path, profile: Path, out: Path, size: tuple[int, int] = (1200, 4000)) -> Path:
    """A PNG of the rendered page."""
    _run(page, profile, f"--window-size={size[0]},{size[1]}", f"--screenshot={out}")
    return out
