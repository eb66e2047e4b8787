"""The `satpipe` command: run (exactly run.py), predict and export, whose help answers before any model stack loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from satpipe.cli import find_run_py
from satpipe.errors import SatpipeError
from tests.conftest import PROJECT_ROOT

SATPIPE = Path(sys.executable).parent / "satpipe"
HEAVY = ("torch", "pytorch_lightning", "rasterio", "onnxruntime", "onnx", "timm")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_satpipe_run_behaves_exactly_like_run_py(isolated_home: Path) -> None:
    for args in (["--print-config", "clouds", "--set", "training.epochs=3"], ["--set", "training.nope=1"]):
        ours = run(str(SATPIPE), "run", *args)
        theirs = run(sys.executable, str(PROJECT_ROOT / "run.py"), *args)
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    assert ours.returncode == 2 and ours.stderr.startswith("error: unknown setting")


def test_satpipe_run_needs_a_checkout(tmp_path: Path) -> None:
    assert find_run_py(PROJECT_ROOT / "src" / "satpipe") == PROJECT_ROOT / "run.py"
    installed = tmp_path / "lib" / "site-packages" / "satpipe"
    installed.mkdir(parents=True)
    with pytest.raises(SatpipeError, match=r"satpipe run needs a satpipe checkout.*clone the repository"):
        find_run_py(installed)


@pytest.mark.parametrize("command", ["predict", "export"])
def test_help_is_answered_before_the_model_stack_is_imported(command: str) -> None:
    check = (
        "import runpy, sys\n"
        f"sys.argv = ['{command}', '--help']\n"
        "try:\n"
        f"    runpy.run_module('satpipe.{command}', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0\n"
        f"print(sorted(set({HEAVY!r}) & set(sys.modules)))\n"
    )
    result = run(sys.executable, "-c", check)
    assert result.returncode == 0 and result.stdout.endswith("[]\n"), result.stdout[-500:] + result.stderr[-2000:]
    via_satpipe = run(str(SATPIPE), command, "--help")
    assert via_satpipe.returncode == 0 and via_satpipe.stdout.startswith(f"usage: satpipe {command} ")


@pytest.mark.parametrize("command", ["predict", "export"])
def test_every_option_has_help_and_its_default(command: str) -> None:
    module = __import__(f"satpipe.{command}", fromlist=["build_parser"])
    for action in module.build_parser()._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and ("default:" in action.help or action.required), action.option_strings
