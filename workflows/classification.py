"""Scene classification pipeline: data (CPU) -> prepare (CPU) -> train (GPU) -> evaluate -> report.

Every stage is cached on its inputs and code, so a repeated run executes nothing and a changed
training setting re-runs only training and what follows it.
"""

from __future__ import annotations

import time

import flyte
from flyte.io import Dir

from config import ClassificationConfig
from envs import one_gpu, pipeline_env
from tasks.download import download_eurosat, synthesize_eurosat
from tasks.evaluate import evaluate_classifier
from tasks.prepare import prepare_eurosat
from tasks.report import report_classification
from tasks.train import logged_on, train_classifier
from workflows import PipelineResult, local_data, stage


async def classification_data(
    cfg: ClassificationConfig, data_dir: Dir | None, data_digest: str | None
) -> tuple[Dir, Dir]:
    """Stages 1 and 2: the chips (downloaded, generated or the user's), split and packed."""
    d = cfg.data
    # -- Stage 1: data (CPU, cached) -------------------------------------------------------------------
    if d.source == "local":
        raw = local_data(data_dir, data_digest)
    elif d.source == "synthetic":
        raw = await stage(synthesize_eurosat, d.synthetic_per_class, d.synthetic_seed)
    else:
        raw = await stage(download_eurosat, d.bands)

    # -- Stage 2: prepare (CPU, cached) ----------------------------------------------------------------
    prepared = await stage(
        prepare_eurosat, raw, d.bands, d.train_fraction, d.val_fraction, d.split_seed, d.max_per_class
    )
    return raw, prepared


async def classification_trial(cfg: ClassificationConfig, raw: Dir, prepared: Dir, label: str = "") -> tuple[Dir, Dir]:
    """Stages 3 and 4: two-phase fine-tuning and test-split metrics for one config (``label``: a sweep trial)."""
    # -- Stage 3: train (GPU, cached) ------------------------------------------------------------------
    trained = await stage(train_classifier, prepared, cfg.model, cfg.training, wrap=logged_on(cfg, label))

    # -- Stage 4: evaluate (GPU, cached) ---------------------------------------------------------------
    return trained, await stage(evaluate_classifier.override(**one_gpu(cfg.resources)), prepared, trained)


@pipeline_env.task
async def classification_pipeline(
    cfg: ClassificationConfig, data_dir: Dir | None = None, data_digest: str | None = None
) -> PipelineResult:
    """Run the classification pipeline for one config; ``data_dir`` is the local copy for source=local."""
    started = time.time()
    raw, prepared = await classification_data(cfg, data_dir, data_digest)
    trained, evaluated = await classification_trial(cfg, raw, prepared)
    # -- Stage 5: report (CPU, cached) -----------------------------------------------------------------
    report = await stage(report_classification, raw, trained, evaluated, cfg, started)
    return PipelineResult(flyte.ctx().action.run_name, raw, prepared, [trained], [evaluated], report)
