"""Cloud segmentation pipeline: scenes (CPU) -> patches (CPU) -> train (GPU) -> full-scene evaluation -> report.

Every stage is cached on its inputs and code; the evaluation rebuilds the test scenes from their
patches, predicts them whole with blended overlapping windows, and scores them by the 38-Cloud protocol.
"""

from __future__ import annotations

import time

import flyte
from flyte.io import Dir

from config import SegmentationConfig
from envs import one_gpu, pipeline_env
from tasks.download import synthesize_clouds
from tasks.evaluate import evaluate_segmenter
from tasks.prepare import prepare_cloud_patches
from tasks.report import report_segmentation
from tasks.train import logged_on, train_segmenter
from workflows import PipelineResult, local_data, stage


async def segmentation_data(cfg: SegmentationConfig, data_dir: Dir | None, data_digest: str | None) -> tuple[Dir, Dir]:
    """Stages 1 and 2: the scenes (generated or the user's 38-Cloud folder) and their training patches."""
    d = cfg.data
    # -- Stage 1: scenes (CPU, cached) -----------------------------------------------------------------
    if d.source == "local":
        raw = local_data(data_dir, data_digest)
    else:
        raw = await stage(
            synthesize_clouds, d.synthetic_train_scenes, d.synthetic_test_scenes, d.synthetic_size, d.synthetic_seed
        )

    # -- Stage 2: patches (CPU, cached) ----------------------------------------------------------------
    prepared = await stage(
        prepare_cloud_patches, raw, d.patch_size, d.overlap, d.min_valid_fraction, d.val_fraction, d.split_seed
    )
    return raw, prepared


async def segmentation_trial(
    cfg: SegmentationConfig,
    raw: Dir,
    prepared: Dir,
    label: str = "",
    evaluate: flyte.TaskTemplate = evaluate_segmenter,
) -> tuple[Dir, Dir]:
    """Stages 3 and 4: training and the full-scene evaluation (``evaluate``, a scene-scoring task) for one config.

    ``label`` names a sweep trial in its W&B run's name.
    """
    # -- Stage 3: train (GPU, cached) ------------------------------------------------------------------
    trained = await stage(train_segmenter, prepared, cfg.model, cfg.training, wrap=logged_on(cfg, label))

    # -- Stage 4: full-scene evaluation (GPU, cached) --------------------------------------------------
    on_one_gpu = evaluate.override(**one_gpu(cfg.resources))
    return trained, await stage(on_one_gpu, raw, prepared, trained, cfg.evaluation)


@pipeline_env.task
async def segmentation_pipeline(
    cfg: SegmentationConfig, data_dir: Dir | None = None, data_digest: str | None = None
) -> PipelineResult:
    """Run the cloud segmentation pipeline; ``data_dir`` is a 38-Cloud-layout folder for source=local."""
    started = time.time()
    raw, prepared = await segmentation_data(cfg, data_dir, data_digest)
    trained, evaluated = await segmentation_trial(cfg, raw, prepared)
    # -- Stage 5: report (CPU, cached) -----------------------------------------------------------------
    report = await stage(report_segmentation, raw, trained, evaluated, cfg, started)
    return PipelineResult(flyte.ctx().action.run_name, raw, prepared, [trained], [evaluated], report)
