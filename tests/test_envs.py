"""The tasks as the pipelines submit them: resources, retries and the GPU request each pod checks."""

from __future__ import annotations

import pytest

from config import ResourcesConfig
from envs import GPU_REQUEST_ENV, one_gpu
from tasks.evaluate import evaluate_classifier, evaluate_cloudmask, evaluate_segmenter
from tasks.train import logged_on, train_classifier, train_segmenter, train_semi

A100S = ResourcesConfig(gpu="A100:4", nodes=2, cpu=16, memory="64Gi")


@pytest.mark.parametrize("task", [evaluate_classifier, evaluate_segmenter, evaluate_cloudmask])
def test_an_evaluation_on_spot_gpus_is_retried_and_checks_its_one_gpu(task) -> None:
    submitted = task.override(**one_gpu(A100S))
    assert submitted.interruptible and submitted.retries.count == 3
    assert submitted.resources.gpu == "A100:1" and submitted.env_vars == {GPU_REQUEST_ENV: "A100:1"}


@pytest.mark.parametrize("task", [train_classifier, train_segmenter, train_semi])
def test_training_checks_the_gpus_of_each_node(task) -> None:
    submitted = logged_on(task, A100S)
    assert submitted.retries.count == 3 and submitted.resources.gpu == "A100:4"
    assert submitted.env_vars == {GPU_REQUEST_ENV: "A100:4"}
