"""Stage 4, evaluation on the held-out split (GPU when there is one, cached), logged into the training's W&B run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flyte.io import Dir
from flyteplugins.wandb import get_wandb_context

from config import CloudEvaluationConfig, CloudMaskEvaluationConfig, DescribedEvaluationConfig
from envs import EVALUATE_RETRIES, evaluate_env
from satpipe.tracking import log_evaluation
from tasks import STAGE_CACHE, bad_input_is_final, output_dir, provenance, require_requested_gpus, stage_dir


@evaluate_env.task(cache=STAGE_CACHE, retries=EVALUATE_RETRIES)
@bad_input_is_final
def evaluate_classifier(prepared: Dir, trained: Dir) -> Dir:
    """Accuracy, macro F1, per-class precision/recall and the confusion matrix of the best checkpoint."""
    require_requested_gpus()
    from satpipe.evaluation import classification

    out, train_dir = stage_dir("evaluate"), trained.download_sync()
    result = classification.evaluate_classifier(
        prepared.download_sync(),
        train_dir,
        out,  # type: ignore[arg-type]
        provenance=provenance(prepared=prepared.hash, trained=trained.hash),
    )
    log_to_training_run(train_dir, result)
    return output_dir(out)


@evaluate_env.task(cache=STAGE_CACHE, retries=EVALUATE_RETRIES)
@bad_input_is_final
def evaluate_segmenter(raw: Dir, prepared: Dir, trained: Dir, evaluation: CloudEvaluationConfig) -> Dir:
    """Full-scene 38-Cloud protocol with a threshold sweep, held-out patches, and cross-dataset scores."""
    require_requested_gpus()
    from satpipe.evaluation.segmentation import evaluate_segmenter as evaluate

    return _score_scenes(evaluate, raw, prepared, trained, asdict(evaluation))


@evaluate_env.task(cache=STAGE_CACHE, retries=EVALUATE_RETRIES)
@bad_input_is_final
def evaluate_cloudmask(raw: Dir, prepared: Dir, trained: Dir, evaluation: CloudMaskEvaluationConfig) -> Dir:
    """Per-scene accuracy, F1 and Jaccard on the test files, with the reference geometry and the blended engine."""
    require_requested_gpus()
    from satpipe.evaluation.cloudmask import evaluate_cloudmask as evaluate

    return _score_scenes(evaluate, raw, prepared, trained, asdict(evaluation))


@evaluate_env.task(cache=STAGE_CACHE, retries=EVALUATE_RETRIES)
@bad_input_is_final
def evaluate_described(raw: Dir, prepared: Dir, trained: Dir, evaluation: DescribedEvaluationConfig) -> Dir:
    """Test scenes whole: class-id and confidence COGs, confusion matrices, mIoU, and the per-pixel baseline."""
    require_requested_gpus()
    from satpipe.evaluation.described import evaluate_described as evaluate

    return _score_scenes(evaluate, raw, prepared, trained, asdict(evaluation))


def _score_scenes(evaluate: Callable[..., Any], raw: Dir, prepared: Dir, trained: Dir, settings: dict[str, Any]) -> Dir:
    """Run a scene evaluation of the library into this action's folder."""
    out, train_dir = stage_dir("evaluate"), trained.download_sync()
    result = evaluate(
        raw.download_sync(),
        prepared.download_sync(),
        train_dir,
        out,
        **settings,
        provenance=provenance(raw=raw.hash, prepared=prepared.hash, trained=trained.hash, evaluation=settings),
    )
    log_to_training_run(train_dir, result)
    return output_dir(out)


def log_to_training_run(train_dir: str, result: dict[str, Any]) -> None:
    """Log the scores into the W&B run that trained the scored model, with this run's W&B settings."""
    if (context := get_wandb_context()) is not None and context.mode:
        log_evaluation(
            Path(train_dir), result, mode=context.mode, dir=(context.kwargs or {}).get("dir"), entity=context.entity
        )
