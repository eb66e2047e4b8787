"""The remote spec, checked offline: `flyte deploy --dry-run` with the local image builder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

PIPELINES = ("classification", "segmentation", "cloudmask", "semi", "sweep", "described")
FLYTE_CLI = Path(sys.executable).parent / "flyte"

# Prints each deployed task's spec as protobuf text, so the test reads what a cluster would receive.
DUMP_SPECS = """
import sys, flyte
from pathlib import Path
from google.protobuf import text_format
flyte.init_from_config(sys.argv[1], root_dir=Path(sys.argv[2]), image_builder="local")
from workflows.all import pipeline_env
for env in flyte.deploy(pipeline_env, dry_run=True)[0].envs.values():
    for task in env.deployed_entities:
        print("=== " + task.deployed_task.task_template.id.name)
        print(text_format.MessageToString(task.deployed_task))
"""


@pytest.fixture(scope="module")
def cluster_config(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A cluster config written offline, and the environment of a user whose HOME holds it."""
    home = tmp_path_factory.mktemp("deploy")
    env = {**os.environ, "HOME": str(home)}
    config = home / ".flyte" / "config.yaml"
    subprocess.run(
        [
            str(FLYTE_CLI),
            "create",
            "config",
            "--endpoint",
            "dns:///example.hosted.unionai.cloud",
            "--project",
            "satpipe",
            "--domain",
            "development",
            "--builder",
            "remote",
            "--output",
            str(config),
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return config, env


@pytest.fixture(scope="module")
def specs(cluster_config: tuple[Path, dict[str, str]]) -> dict[str, str]:
    config, env = cluster_config
    out = subprocess.run(
        [sys.executable, "-c", DUMP_SPECS, str(config), str(PROJECT_ROOT)],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    parts = out.split("=== ")[1:]
    return {part.split("\n", 1)[0].strip(): part for part in parts}


def test_every_stage_is_deployed(specs: dict[str, str]) -> None:
    assert set(specs) == {
        "satpipe-pipeline.classification_pipeline", "satpipe-pipeline.segmentation_pipeline",
        "satpipe-data.download_eurosat", "satpipe-data.synthesize_eurosat", "satpipe-data.synthesize_clouds",
        "satpipe-data.prepare_eurosat", "satpipe-data.prepare_cloud_patches",
        "satpipe-train.train_classifier", "satpipe-evaluate.evaluate_classifier",
        "satpipe-train.train_segmenter", "satpipe-evaluate.evaluate_segmenter",
        "satpipe-report.report_classification", "satpipe-report.report_segmentation",
        "satpipe-pipeline.cloudmask_pipeline", "satpipe-data.synthesize_cloudmask", "satpipe-data.download_cloudmask",
        "satpipe-data.prepare_cloudmask_patches", "satpipe-evaluate.evaluate_cloudmask",
        "satpipe-report.report_cloudmask",
        "satpipe-pipeline.sweep_pipeline", "satpipe-report.report_sweep",
        "satpipe-pipeline.semi_pipeline", "satpipe-train.train_semi", "satpipe-report.report_semi",
        "satpipe-data.prepare_unlabelled_patches",
        "satpipe-pipeline.described_pipeline", "satpipe-data.synthesize_landcover",
        "satpipe-data.prepare_described_patches", "satpipe-evaluate.evaluate_described",
        "satpipe-report.report_described",
    }  # fmt: skip


def test_the_readme_deploy_command_registers_every_pipeline(cluster_config: tuple[Path, dict[str, str]]) -> None:
    config, env = cluster_config
    out = subprocess.run(
        [str(FLYTE_CLI), "--config", str(config), "--image-builder", "local",
         "deploy", "--dry-run", "workflows/all.py", "pipeline_env"],
        cwd=PROJECT_ROOT, env={**env, "COLUMNS": "300", "NO_COLOR": "1"}, check=True, capture_output=True, text=True,
        timeout=600,
    ).stdout  # fmt: skip
    deployed = set(re.findall(r"satpipe-pipeline\.\w+", out))
    assert deployed == {f"satpipe-pipeline.{name}_pipeline" for name in PIPELINES}


def test_training_asks_for_a_t4_and_the_wandb_secret_and_survives_preemption(specs: dict[str, str]) -> None:
    for name in ("train_classifier", "train_segmenter", "train_semi"):
        train = specs[f"satpipe-train.{name}"]
        assert 'device: "nvidia-tesla-t4"' in train and "name: GPU" in train
        assert 'key: "wandb_api_key"' in train and 'env_var: "WANDB_API_KEY"' in train
        assert "interruptible: true" in train and "retries {\n      retries: 3" in train
        assert 'key: "SATPIPE_GPU"\n      value: "T4:1"' in train  # what the pod checks it can use
        # One process per GPU through torch elastic: flyteplugins-pytorch's Elastic configuration.
        assert 'key: "elasticConfig"' in train and 'key: "nprocPerNode"' in train and 'key: "workerReplicas"' in train


def test_evaluation_survives_preemption_and_checks_its_gpu(specs: dict[str, str]) -> None:
    for name in ("evaluate_classifier", "evaluate_segmenter", "evaluate_cloudmask"):
        evaluate = specs[f"satpipe-evaluate.{name}"]
        assert "interruptible: true" in evaluate and "retries {\n      retries: 3" in evaluate
        assert 'key: "SATPIPE_GPU"\n      value: "T4:1"' in evaluate
    cpu_tasks = [spec for name, spec in specs.items() if not name.startswith(("satpipe-train.", "satpipe-evaluate."))]
    assert cpu_tasks and not any("SATPIPE_GPU" in spec for spec in cpu_tasks)


def test_data_tasks_are_retried_for_lost_pods(specs: dict[str, str]) -> None:
    data = [spec for name, spec in specs.items() if name.startswith("satpipe-data.")]
    assert len(data) == 11 and all("retries {\n      retries: 2" in spec for spec in data)


def test_every_task_runs_the_project_image_and_only_training_is_on_gpu(specs: dict[str, str]) -> None:
    images = {
        name: next(line.split('"')[1] for line in spec.splitlines() if "image:" in line) for name, spec in specs.items()
    }
    assert len(set(images.values())) == 1 and next(iter(images.values())).startswith("satpipe:")
    on_gpu = {name for name, spec in specs.items() if "name: GPU" in spec}
    assert on_gpu == {name for name in specs if name.startswith(("satpipe-train.train_", "satpipe-evaluate."))}
    assert "wandb_api_key" not in specs["satpipe-data.prepare_eurosat"]


def test_stages_are_cached_with_a_code_version(specs: dict[str, str]) -> None:
    for name, spec in specs.items():
        if "pipeline" not in name:
            assert "discoverable: true" in spec and "discovery_version" in spec, name
