"""Stage 3, training on a GPU with W&B logging (cached)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import flyte
from flyte.io import Dir
from flyteplugins.wandb import get_wandb_context, get_wandb_run, wandb_init

from config import (
    ModelConfig,
    SegmentationModelConfig,
    SegmentationTrainingConfig,
    SemiSupervisedConfig,
    TrainingConfig,
    to_dict,
)
from envs import TRAIN_RETRIES, on_gpus, train_env, workers
from satpipe.tracking import run_config, run_name
from tasks import (
    STAGE_CACHE,
    bad_input_is_final,
    output_dir,
    provenance,
    require_requested_gpus,
    resumable,
    stage_dir,
)


@train_env.task(cache=STAGE_CACHE, retries=TRAIN_RETRIES)
@bad_input_is_final
def train_classifier(prepared: Dir, model: ModelConfig, training: TrainingConfig) -> Dir:
    """Two-phase fine-tuning of a timm classifier; returns checkpoints, metrics and embeddings."""
    require_requested_gpus()
    from satpipe.training.fit import fit_classifier

    out = stage_dir("train")
    inputs = {"prepared": prepared.hash, "model": asdict(model), "training": asdict(training)}
    fit_classifier(
        prepared.download_sync(),
        out,
        **asdict(model),
        **asdict(training),
        wandb_run=get_wandb_run(),
        provenance=provenance(**inputs),
        **resumable("train", **inputs),
    )
    return output_dir(out)


@train_env.task(cache=STAGE_CACHE, retries=TRAIN_RETRIES)
@bad_input_is_final
def train_segmenter(prepared: Dir, model: SegmentationModelConfig, training: SegmentationTrainingConfig) -> Dir:
    """Train a cloud segmenter on prepared patches; returns checkpoints and metrics."""
    require_requested_gpus()
    from satpipe.training.fit import fit_segmenter

    out = stage_dir("train")
    inputs = {"prepared": prepared.hash, "model": asdict(model), "training": asdict(training)}
    fit_segmenter(
        prepared.download_sync(),
        out,
        **asdict(model),
        **asdict(training),
        wandb_run=get_wandb_run(),
        provenance=provenance(**inputs),
        **resumable("train", **inputs),
    )
    return output_dir(out)


@train_env.task(cache=STAGE_CACHE, retries=TRAIN_RETRIES)
@bad_input_is_final
def train_semi(
    prepared: Dir,
    model: SegmentationModelConfig,
    training: SegmentationTrainingConfig,
    semi: SemiSupervisedConfig,
    arm: str,
    unlabelled: Dir | None = None,
) -> Dir:
    """Train one arm ("supervised", or the semi-supervised method) on the one labelled share in ``semi.fractions``.

    ``unlabelled`` holds patches of scenes without labels that join the unlabelled pool.
    """
    require_requested_gpus()
    from config import labelled_fractions
    from satpipe.training.semi import fit_semi

    out = stage_dir("train")
    (fraction,) = labelled_fractions(semi)
    settings = {**asdict(model), **asdict(training), **asdict(semi), "method": arm, "fraction": fraction}
    settings.pop("fractions")
    settings.pop("unlabelled_scenes")  # what they became is ``unlabelled``
    inputs = {"prepared": prepared.hash, "unlabelled": unlabelled.hash if unlabelled else None, **settings}
    fit_semi(
        prepared.download_sync(),
        out,
        **settings,
        unlabelled_dir=unlabelled.download_sync() if unlabelled else None,
        wandb_run=get_wandb_run(),
        provenance=provenance(**inputs),
        **resumable("train", **inputs),
    )
    return output_dir(out)


def logged_on(cfg: Any, label: str = "", **details: Any) -> Callable[[flyte.TaskTemplate], flyte.TaskTemplate]:
    """What puts a training task on the GPUs and nodes of ``cfg.resources``, one process per GPU, logging to W&B.

    The W&B run (written from rank 0 only) is named after the preset, ``label`` (a sweep trial, an arm)
    and the training seed; its config is the whole of ``cfg`` with ``details`` and what run.py says about
    the run (version, commit, data). ``@wandb_init`` installs its wrapper on the task object, and
    ``override()`` returns a copy without it (flyte 2.12), so W&B is applied last, to the overridden copy:
    pass this as ``wrap`` to ``workflows.stage``, which may override the task's cache behaviour first.
    """
    context = get_wandb_context()
    about_run = (context.config if context else None) or {}
    per_node = on_gpus(cfg.resources.gpu, cfg.resources.cpu, cfg.resources.memory)

    def place(task: flyte.TaskTemplate) -> flyte.TaskTemplate:
        return wandb_init(
            task.override(**per_node, plugin_config=workers(cfg.resources.gpu, cfg.resources.nodes)),
            name=run_name(cfg.name, cfg.training.seed, label),
            config={**about_run, **run_config(to_dict(cfg), **details)},
        )

    return place
