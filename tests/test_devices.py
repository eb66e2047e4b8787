"""A GPU pod that cannot use its GPUs stops at once with one line naming the driver and CUDA versions.

The pod is simulated: this machine has no GPU, a fake ``nvidia-smi`` on PATH reports an old driver, and
the environment variable a cluster sets on GPU tasks (envs.GPU_REQUEST_ENV) says what the task asked for.
"""

from __future__ import annotations

import inspect
import os
import stat
from pathlib import Path

import flyte.errors
import pytest
import torch

from envs import GPU_REQUEST_ENV
from satpipe import devices
from satpipe.devices import require_gpus
from satpipe.errors import GpuUnavailableError
from tasks import require_requested_gpus
from tests.cli import run_cli

#: The header of nvidia-smi on a node whose driver runs CUDA 12.2 at most.
OLD_DRIVER = """\
+---------------------------------------------------------------------------------------+
| NVIDIA-SMI 535.104.05             Driver Version: 535.104.05   CUDA Version: 12.2     |
|-----------------------------------------+----------------------+----------------------+
"""


@pytest.fixture
def old_driver_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pod without a usable GPU whose nvidia-smi reports driver 535: the PATH folder holding the fake."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\ncat <<'EOF'\n{OLD_DRIVER}EOF\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also where the test machine has a GPU
    return bin_dir


def test_an_old_driver_is_named_with_the_cuda_build_it_cannot_run(old_driver_pod: Path) -> None:
    with pytest.raises(GpuUnavailableError) as err:
        require_gpus("T4:1")
    message = str(err.value)
    assert message.startswith("resources.gpu asks for T4:1 but 0 GPUs are usable here: NVIDIA driver 535.104.05")
    assert "(runs CUDA up to 12.2)" in message and f"built for CUDA {torch.version.cuda}" in message
    assert f"needs driver >= {devices.MIN_DRIVER[int(torch.version.cuda.split('.')[0])]}" in message
    assert "\n" not in message


def test_the_kernel_module_names_the_driver_where_nvidia_smi_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    version = tmp_path / "version"
    version.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  (dvs)\n")
    monkeypatch.setattr(devices, "PROC_VERSION", version)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GpuUnavailableError, match=r"usable here: NVIDIA driver 550\.54\.15; torch "):
        require_gpus("A100:1")
    version.unlink()
    with pytest.raises(GpuUnavailableError, match="no NVIDIA driver"):
        require_gpus("A100:1")


def test_fewer_gpus_than_asked_for_are_refused_and_enough_pass(
    old_driver_pod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    require_gpus("H100:2")
    with pytest.raises(GpuUnavailableError, match="asks for H100:4 but 2 GPUs are usable here"):
        require_gpus("H100:4")


def test_local_runs_do_not_check(old_driver_pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GPU_REQUEST_ENV, raising=False)
    require_requested_gpus()  # no request: a laptop without a GPU trains on its CPU
    monkeypatch.setenv(GPU_REQUEST_ENV, "T4:1")
    with pytest.raises(GpuUnavailableError, match="T4:1"):
        require_requested_gpus()


@pytest.mark.parametrize(
    "task",
    ["train_classifier", "train_segmenter", "train_semi", "evaluate_classifier", "evaluate_segmenter",
     "evaluate_cloudmask"],
)  # fmt: skip
def test_gpu_tasks_check_before_they_touch_their_inputs(
    old_driver_pod: Path, monkeypatch: pytest.MonkeyPatch, task: str
) -> None:
    import tasks.evaluate
    import tasks.train

    monkeypatch.setenv(GPU_REQUEST_ENV, "L4:1")
    func = getattr(tasks.train if task.startswith("train") else tasks.evaluate, task).func
    with pytest.raises(flyte.errors.NonRecoverableError, match="driver 535.104.05") as err:
        func(*(None for _ in inspect.signature(func).parameters))  # no inputs: the check comes first
    assert err.value.code == "GpuUnavailableError"  # final: retrying on the same nodes cannot help


@pytest.mark.slow
def test_a_run_in_a_pod_without_a_usable_gpu_stops_at_training_with_one_line(
    isolated_home: Path, old_driver_pod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GPU_REQUEST_ENV, "T4:1")
    result = run_cli(isolated_home, "--set", "data.synthetic_per_class=20")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: resources.gpu asks for T4:1 but 0 GPUs are usable here")
    assert "Traceback" not in result.stderr and "driver 535.104.05" in result.stderr
    assert not list((isolated_home / "artifacts" / "runs").glob("*/train-*"))
