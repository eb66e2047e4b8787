"""Stage 4, evaluation on the held-out split (GPU when there is one, cached)."""

from __future__ import annotations

from flyte.io import Dir

from config import CloudEvaluationConfig, CloudMaskEvaluationConfig
from envs import train_env
from tasks import output_dir, provenance, stage_cache, stage_dir

_EVALUATION_CODE = ("satpipe.artifacts", "satpipe.data", "satpipe.models", "satpipe.training", "satpipe.evaluation")


@train_env.task(cache=stage_cache(__file__, *_EVALUATION_CODE))
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


@train_env.task(cache=stage_cache(__file__, *_EVALUATION_CODE))
def evaluate_segmenter(raw: Dir, prepared: Dir, trained: Dir, evaluation: CloudEvaluationConfig) -> Dir:
    """Full-scene 38-Cloud protocol with a threshold sweep, held-out patches, and cross-dataset scores."""
    from dataclasses import asdict

    from satpipe.evaluation import segmentation

    out = stage_dir("evaluate")
    segmentation.evaluate_segmenter(
        raw.download_sync(),
        prepared.download_sync(),
        trained.download_sync(),
        out,
        **asdict(evaluation),
        provenance=provenance(
            raw=raw.hash, prepared=prepared.hash, trained=trained.hash, evaluation=asdict(evaluation)
        ),
    )
    return output_dir(out)


@train_env.task(cache=stage_cache(__file__, *_EVALUATION_CODE))
def evaluate_cloudmask(raw: Dir, prepared: Dir, trained: Dir, evaluation: CloudMaskEvaluationConfig) -> Dir:
    """Per-scene accuracy, F1 and Jaccard on the test files, with the reference geometry and the blended engine."""
    from dataclasses import asdict

    from satpipe.evaluation.cloudmask import evaluate_cloudmask as evaluate

    out = stage_dir("evaluate")
    evaluate(
        raw.download_sync(),
        prepared.download_sync(),
        trained.download_sync(),
        out,
        **asdict(evaluation),
        provenance=provenance(
            raw=raw.hash, prepared=prepared.hash, trained=trained.hash, evaluation=asdict(evaluation)
        ),
    )
    return output_dir(out)
