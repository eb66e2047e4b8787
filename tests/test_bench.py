"""Every benchmark still runs (``--smoke``: seconds of work) and measures by the shared, interleaved protocol."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench"
#: Every benchmark script; ``measure.py`` is their shared helper.
SCRIPTS = ("cached_rerun.py", "cloudmask_epoch.py", "cloudmask_inference.py", "cloudmask_io.py", "data_loading.py",
           "inference_engine.py", "seam_error.py")  # fmt: skip
RATIO = re.compile(r"^\s*ratio .+ = median \d+\.\d+ \(min \d+\.\d+, max \d+\.\d+, (\d+) (rounds|scenes)\)", re.M)


def load_measure() -> ModuleType:
    spec = importlib.util.spec_from_file_location("measure", BENCH / "measure.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)  # fmt: skip


def test_every_script_is_smoke_tested() -> None:
    assert sorted(p.name for p in BENCH.glob("*.py") if p.name != "measure.py") == sorted(SCRIPTS)


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s != "cached_rerun.py"])
def test_bench_runs_in_smoke_mode_and_prints_medians_and_ranges(script: str, tmp_path: Path) -> None:
    result = run(script, "--smoke", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ratios = RATIO.findall(result.stdout)
    assert ratios, result.stdout
    assert all(int(n) >= 3 for n, unit in ratios if unit == "rounds"), result.stdout


@pytest.mark.slow
def test_cached_rerun_runs_in_smoke_mode(tmp_path: Path) -> None:
    result = run("cached_rerun.py", "--smoke", cwd=tmp_path)  # three rounds of two tiny pipeline runs
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(RATIO.findall(result.stdout)) == 2 and "stages executed by the re-runs: [0, 0, 0]" in result.stdout


def test_fewer_than_three_rounds_are_refused(tmp_path: Path) -> None:
    result = run("cloudmask_io.py", "--repeats", "2", cwd=tmp_path)
    assert result.returncode == 2 and "--repeats must be >= 3, got 2" in result.stderr


def test_set_ups_take_turns_in_an_order_that_alternates() -> None:
    measure = load_measure()
    calls = []
    values = measure.interleaved({n: lambda n=n: calls.append(n) or float(len(calls)) for n in "ab"}, repeats=4)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert values == {"a": [1.0, 4.0, 5.0, 8.0], "b": [2.0, 3.0, 6.0, 7.0]}
    line = measure.ratio_line("b/a", values["b"], values["a"])
    assert line == "ratio b/a = median 1.038 (min 0.750, max 2.000, 4 rounds)"  # 2/1, 3/4, 6/5, 7/8
