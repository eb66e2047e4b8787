"""Stage 4, evaluation on the held-out split (GPU when there is one, cached)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from flyte.io import Dir

from config import CloudEvaluationConfig, CloudMaskEvaluationConfig
from envs import evaluate_env
from tasks import STAGE_CACHE, output_dir, provenance, stage_dir


@evaluate_env.task(cache=STAGE_CACHE)
def evaluate_classifier(prepared: Dir, trained: Dir) -> Dir:
    """Accuracy, macro F1, per-class precision/recall and the confusion matrix of the best checkpoint."""
    from satpipe.evaluation import classification

    out = stage_dir("evaluate")
    classification.evaluate_classifier(
        prepared.download_sync(),
        trained.download_sync(),
        out,  # type: ignore[arg-type]
        provenance=provenance(prepared=prepared.hash, trained=trained.hash),
    )
    return output_dir(out)


@evaluate_env.task(cache=STAGE_CACHE)
def evaluate_segmenter(raw: Dir, prepared: Dir, trained: Dir, evaluation: CloudEvaluationConfig) -> Dir:
    """Full-scene 38-Cloud protocol with a threshold sweep, held-out patches, and cross-dataset scores."""
    from satpipe.evaluation.segmentation import evaluate_segmenter as evaluate

    return _score_scenes(evaluate, raw, prepared, trained, asdict(evaluation))


@evaluate_env.task(cache=STAGE_CACHE)
def evaluate_cloudmask(raw: Dir, prepared: Dir, trained: Dir, evaluation: CloudMaskEvaluationConfig) -> Dir:
    """Per-scene accuracy, F1 and Jaccard on the test files, with the reference geometry and the blended engine."""
    from satpipe.evaluation.cloudmask import evaluate_cloudmask as evaluate

    return _score_scenes(evaluate, raw, prepared, trained, asdict(evaluation))


def _score_scenes(evaluate: Callable[..., Any], raw: Dir, prepared: Dir, trained: Dir, settings: dict[str, Any]) -> Dir:
    """Run a scene evaluation of the library into this action's folder."""
    out = stage_dir("evaluate")
    evaluate(
        raw.download_sync(),
        prepared.download_sync(),
        trained.download_sync(),
        out,
        **settings,
        provenance=provenance(raw=raw.hash, prepared=prepared.hash, trained=trained.hash, evaluation=settings),
    )
    return output_dir(out)
