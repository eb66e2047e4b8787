"""Flyte task environments: one image built from the uv project, one environment per resource profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flyte
from flyteplugins.pytorch import Elastic

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Built from pyproject.toml and uv.lock, so the cluster runs exactly the locked versions. The whole
#: project is installed, so the image (and its tag) changes whenever the library's source does.
#: ``Dockerfile`` builds the same environment for registries that want a Dockerfile.
image = flyte.Image.from_debian_base(python_version=(3, 11), name="satpipe").with_uv_project(
    pyproject_file=PROJECT_ROOT / "pyproject.toml", project_install_mode="install_project"
)

#: The W&B key, created once on the cluster with `flyte create secret wandb_api_key`.
WANDB_SECRET = flyte.Secret(key="wandb_api_key", as_env_var="WANDB_API_KEY")

# Download, tile and pack data: CPU and disk only. Cached, so re-running with the same data is free.
data_env = flyte.TaskEnvironment(
    name="satpipe-data",
    image=image,
    resources=flyte.Resources(cpu=4, memory="16Gi", disk="64Gi"),
)

# Train on GPUs, one worker process per GPU (torch elastic launch): one T4 by default; the pipeline asks
# for the GPUs and nodes named in config.resources (several nodes run as one PyTorch job). Interruptible:
# spot GPUs cost a fraction, and training resumes from its latest checkpoint when retried.
train_env = flyte.TaskEnvironment(
    name="satpipe-train",
    image=image,
    resources=flyte.Resources(cpu=8, memory="32Gi", gpu="T4:1", disk="64Gi", shm="auto"),
    secrets=[WANDB_SECRET],
    interruptible=True,
    plugin_config=Elastic(nnodes=1, nproc_per_node=1),
)

# Evaluate on one GPU, in one process; the scores join the training's W&B run.
evaluate_env = flyte.TaskEnvironment(
    name="satpipe-evaluate",
    image=image,
    resources=flyte.Resources(cpu=8, memory="32Gi", gpu="T4:1", disk="64Gi", shm="auto"),
    secrets=[WANDB_SECRET],
    interruptible=True,
)

#: Attempts a training task gets after the first (preemptions included); each resumes where the last stopped.
TRAIN_RETRIES = 3

# Build Plotly reports from stage outputs: small CPU.
report_env = flyte.TaskEnvironment(
    name="satpipe-report",
    image=image,
    resources=flyte.Resources(cpu=2, memory="4Gi"),
)

# The pipeline driver only awaits the stages; its image covers every environment it calls.
pipeline_env = flyte.TaskEnvironment(
    name="satpipe-pipeline",
    image=image,
    resources=flyte.Resources(cpu=1, memory="2Gi"),
    depends_on=[data_env, train_env, evaluate_env, report_env],
)


def train_resources(gpu: str, cpu: int, memory: str) -> flyte.Resources:
    """Resources of one node of a training (or evaluation) task with the GPUs chosen by config."""
    return flyte.Resources(cpu=cpu, memory=memory, gpu=gpu, disk="64Gi", shm="auto")  # type: ignore[arg-type]


def workers(gpu: str, nodes: int) -> Elastic:
    """One training process per GPU (``gpu`` is ``TYPE:COUNT`` per node) on each of ``nodes`` nodes."""
    return Elastic(nnodes=nodes, nproc_per_node=int(gpu.rpartition(":")[2]))


def one_gpu(resources: Any) -> flyte.Resources:
    """Resources of an evaluation: one GPU of the type that ``resources`` (config) trains on."""
    return train_resources(f"{resources.gpu.rpartition(':')[0]}:1", resources.cpu, resources.memory)
