"""The tasks as the pipelines submit them: resources, retries and the GPU request each pod checks."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace

import flyte
import pytest
from flyte.io import Dir

from config import ResourcesConfig, build_config
from envs import GPU_REQUEST_ENV, one_gpu
from tasks.download import (
    download_cloudmask,
    download_eurosat,
    synthesize_cloudmask,
    synthesize_clouds,
    synthesize_eurosat,
)
from tasks.evaluate import evaluate_classifier, evaluate_cloudmask, evaluate_segmenter
from tasks.prepare import prepare_cloud_patches, prepare_cloudmask_patches, prepare_eurosat, prepare_unlabelled_patches
from tasks.train import logged_on, train_classifier, train_segmenter, train_semi
from tests.conftest import PROJECT_ROOT
from workflows.cloudmask import cloudmask_data

A100S = ResourcesConfig(gpu="A100:4", nodes=2, cpu=16, memory="64Gi")


@pytest.mark.parametrize("task", [evaluate_classifier, evaluate_segmenter, evaluate_cloudmask])
def test_an_evaluation_on_spot_gpus_is_retried_and_checks_its_one_gpu(task) -> None:
    submitted = task.override(**one_gpu(A100S))
    assert submitted.interruptible and submitted.retries.count == 3
    assert submitted.resources.gpu == "A100:1" and submitted.env_vars == {GPU_REQUEST_ENV: "A100:1"}


@pytest.mark.parametrize("task", [train_classifier, train_segmenter, train_semi])
def test_training_checks_the_gpus_of_each_node(task) -> None:
    submitted = logged_on(replace(build_config("clouds"), resources=A100S))(task)
    assert submitted.retries.count == 3 and submitted.resources.gpu == "A100:4"
    assert submitted.env_vars == {GPU_REQUEST_ENV: "A100:4"}


@pytest.mark.parametrize(
    "task",
    [download_eurosat, synthesize_eurosat, synthesize_clouds, synthesize_cloudmask, download_cloudmask,
     prepare_eurosat, prepare_cloud_patches, prepare_unlabelled_patches, prepare_cloudmask_patches],
)  # fmt: skip
def test_data_tasks_are_retried_for_lost_pods(task) -> None:
    assert task.retries.count == 2


async def test_the_cloudmask_download_and_patch_pods_get_the_disk_of_data_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    submitted: dict[str, flyte.Resources] = {}

    def record(task):  # what the pipeline overrides, and a stage that returns at once
        def override(**options):
            submitted[task.short_name] = options["resources"]
            return SimpleNamespace(aio=lambda *args: asyncio.sleep(0, result=Dir(path=task.short_name)))

        return override

    for task in (download_cloudmask, prepare_cloudmask_patches):
        monkeypatch.setattr(task, "override", record(task))
    monkeypatch.setattr("workflows._output_problem", lambda out: asyncio.sleep(0, result=None))  # no real outputs
    cfg = build_config("cloudmask-benchmark", ["data.disk=1Ti"])
    await cloudmask_data(cfg, None, None)
    assert {name: r.disk for name, r in submitted.items()} == {
        "download_cloudmask": "1Ti", "prepare_cloudmask_patches": "1Ti"
    }  # fmt: skip


def test_bad_input_fails_once_although_the_task_has_retries(isolated_home, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    monkeypatch.setenv("SATPIPE_ARTIFACTS", str(isolated_home / "artifacts"))
    (isolated_home / "empty").mkdir()
    attempts: list[str] = []

    class Attempts(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            attempts.append(record.getMessage())

    flyte.init(root_dir=PROJECT_ROOT)  # sets up Flyte's loggers afresh: listen after it
    handler = Attempts(level=logging.WARNING)
    logging.getLogger("flyte").addHandler(handler)
    try:
        with pytest.raises(Exception) as err:
            flyte.with_runcontext(mode="local", disable_run_cache=True).run(
                prepare_eurosat, Dir(path=str(isolated_home / "empty")), "rgb", 0.6, 0.2, 0, None
            )
    finally:
        logging.getLogger("flyte").removeHandler(handler)
    assert err.value.code == "DatasetNotFoundError" and "empty" in str(err.value)  # run.py prints it as one line
    assert any("skipping remaining retries" in line for line in attempts)
    assert not any("retrying in" in line for line in attempts)
