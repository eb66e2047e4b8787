"""The images, checked without a Docker daemon: the Dockerfile (hadolint, the layers its instructions make)
and why the CPU tasks share the CUDA image (README, Run on Union).

The environment is ~6.5 GB; an instruction that rewrites it (``chown -R`` after ``uv sync``) or keeps uv's
cache in a layer doubles the image.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (keyword, arguments), continuation lines joined, comments dropped."""
    lines = [line for line in (PROJECT_ROOT / "Dockerfile").read_text().splitlines() if not line.startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(line.split()[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


@pytest.mark.skipif(not HADOLINT.exists(), reason="hadolint (a dev dependency) has no wheel for this platform")
def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([str(HADOLINT), "Dockerfile"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "", result.stdout


def test_no_layer_rewrites_the_environment_or_keeps_uv_cache() -> None:
    steps = instructions()
    runs = [args for keyword, args in steps if keyword == "RUN"]
    assert not any("chown" in run for run in runs)  # a new owner is a copy of every file
    syncs = [run for run in runs if "uv sync" in run]
    assert len(syncs) == 2 and all("--frozen --no-dev" in run for run in syncs)
    user = next(args for keyword, args in steps if keyword == "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and uid != "0"  # numeric, so Kubernetes can check runAsNonRoot
    for run in syncs:  # uv's cache in a build cache mount, owned by the user that installs
        assert re.search(rf"--mount=type=cache,target=\S+/\.cache/uv,uid={uid}\b", run), run


def test_the_user_installs_dependencies_before_the_code_is_copied() -> None:
    steps = instructions()
    order = [keyword if keyword != "RUN" or "uv sync" not in args else "SYNC" for keyword, args in steps]
    user_at = order.index("USER")
    first_sync = order.index("SYNC")
    code_at = next(i for i, (keyword, args) in enumerate(steps) if keyword == "COPY" and args.endswith(". ."))
    assert user_at < first_sync < code_at and "--no-install-project" in steps[first_sync][1]
    uid = steps[user_at][1].split(":")[0]
    copies = [args for keyword, args in steps[user_at:] if keyword == "COPY"]
    assert copies and all(args.startswith(f"--chown={uid}") for args in copies)
    assert "uv.lock" in steps[first_sync - 1][1]  # the lock is the only input of the dependency layer


#: What the pods of the CPU tasks import: the pipeline driver loads every pipeline (and so every task
#: module); data and report tasks also run the library code of their bodies.
CPU_TASK_IMPORTS = {
    "pipeline": "workflows.all",
    "data and report bodies": "satpipe.data.eurosat, satpipe.data.patches, satpipe.data.cloudmask, "
    "satpipe.reporting.classification, satpipe.reporting.segmentation, satpipe.reporting.cloudmask, "
    "satpipe.reporting.semi, satpipe.reporting.sweep",
}


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() != "x86_64", reason="PyPI's torch is CUDA on Linux x86_64"
)
def test_the_cpu_tasks_import_the_locked_cuda_torch_so_they_share_its_image() -> None:
    """If this fails, a CPU image without CUDA wheels has become possible: revisit the README's "One image"."""
    for role, modules in CPU_TASK_IMPORTS.items():
        code = f"import sys, {modules}; print('torch' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "True", role
    import torch

    assert torch.version.cuda  # the locked torch is a CUDA build: it does not import without its CUDA wheels
