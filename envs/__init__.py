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

#: The GPUs (``TYPE:COUNT`` per node) a GPU task asked for, set in its pod: the task checks they are usable
#: before it starts (satpipe.devices). Local runs do not inject a task's environment variables, so they
#: never check and train on whatever the machine has.
GPU_REQUEST_ENV = "SATPIPE_GPU"
DEFAULT_GPU = "T4:1"

#: The W&B key, created once on the cluster with `flyte create secret wandb_api_key`.
WANDB_SECRET = flyte.Secret(key="wandb_api_key", as_env_var="WANDB_API_KEY")


def data_resources(disk: str = "64Gi") -> flyte.Resources:
    """Resources of a data task whose files need ``disk`` (a Kubernetes quantity such as ``320Gi``)."""
    return flyte.Resources(cpu=4, memory="16Gi", disk=disk)  # type: ignore[arg-type]


# Download, tile and pack data: CPU and disk only. Cached, so re-running with the same data is free.
data_env = flyte.TaskEnvironment(name="satpipe-data", image=image, resources=data_resources())

#: Attempts a data task gets after the first, for a lost pod or node (downloads retry their own transfers).
DATA_RETRIES = 2

# Train on GPUs, one worker process per GPU (torch elastic launch): one T4 by default; the pipeline asks
# for the GPUs and nodes named in config.resources (several nodes run as one PyTorch job). Interruptible:
# spot GPUs cost a fraction, and training resumes from its latest checkpoint when retried.
train_env = flyte.TaskEnvironment(
    name="satpipe-train",
    image=image,
    resources=flyte.Resources(cpu=8, memory="32Gi", gpu=DEFAULT_GPU, disk="64Gi", shm="auto"),
    env_vars={GPU_REQUEST_ENV: DEFAULT_GPU},
    secrets=[WANDB_SECRET],
    interruptible=True,
    plugin_config=Elastic(nnodes=1, nproc_per_node=1),
)

# Evaluate on one GPU, in one process. Interruptible like training: an evaluation writes its output only
# when it is complete, so a preempted attempt is simply run again. The scores join the training's W&B run.
evaluate_env = flyte.TaskEnvironment(
    name="satpipe-evaluate",
    image=image,
    resources=flyte.Resources(cpu=8, memory="32Gi", gpu=DEFAULT_GPU, disk="64Gi", shm="auto"),
    env_vars={GPU_REQUEST_ENV: DEFAULT_GPU},
    secrets=[WANDB_SECRET],
    interruptible=True,
)

#: Attempts a training task gets after the first (preemptions included); each resumes where the last stopped.
TRAIN_RETRIES = 3
#: Attempts an evaluation gets after the first (preemptions included); each starts again.
EVALUATE_RETRIES = 3

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


def on_gpus(gpu: str, cpu: int, memory: str) -> dict[str, Any]:
    """``override()`` arguments of a training (or evaluation) task on ``gpu`` (``TYPE:COUNT``) per node.

    The pod gets the resources and is told what it asked for, so that it can check the GPUs are usable.
    """
    resources = flyte.Resources(cpu=cpu, memory=memory, gpu=gpu, disk="64Gi", shm="auto")  # type: ignore[arg-type]
    return {"resources": resources, "env_vars": {GPU_REQUEST_ENV: gpu}}


def workers(gpu: str, nodes: int) -> Elastic:
    """One training process per GPU (``gpu`` is ``TYPE:COUNT`` per node) on each of ``nodes`` nodes."""
    return Elastic(nnodes=nodes, nproc_per_node=int(gpu.rpartition(":")[2]))


def one_gpu(resources: Any) -> dict[str, Any]:
    """``override()`` arguments of an evaluation: one GPU of the type that ``resources`` (config) trains on."""
    return on_gpus(f"{resources.gpu.rpartition(':')[0]}:1", resources.cpu, resources.memory)
