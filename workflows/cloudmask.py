"""MLCommons CloudMask pipeline: scenes -> reference patches -> a training per seed -> evaluation -> report.

Scenes and patches run on CPU; each seed trains on a GPU and is scored per scene with the reference
and the blended geometry; the report compares the seeds. Each seed's training and evaluation is cached
on its own, so asking for more seeds runs only the new ones, and the data stages run once for all.
"""

from __future__ import annotations

import time

import flyte
from flyte.io import Dir

from config import CloudMaskConfig
from envs import data_resources, pipeline_env
from tasks.download import download_cloudmask, synthesize_cloudmask
from tasks.evaluate import evaluate_cloudmask
from tasks.prepare import prepare_cloudmask_patches
from tasks.report import report_cloudmask
from workflows import PipelineResult, local_data, over_seeds, stage
from workflows.segmentation import segmentation_trial


async def cloudmask_data(cfg: CloudMaskConfig, data_dir: Dir | None, data_digest: str | None) -> tuple[Dir, Dir]:
    """Stages 1 and 2: the SLSTR files (downloaded, generated or the user's) and the reference's patches."""
    d = cfg.data
    disk = data_resources(d.disk)
    # -- Stage 1: scenes (CPU, cached) -----------------------------------------------------------------
    if d.source == "local":
        raw = local_data(data_dir, data_digest)
    elif d.source == "synthetic":
        raw = await stage(synthesize_cloudmask, d.synthetic_train_files, d.synthetic_test_files, d.synthetic_seed)
    else:
        raw = await stage(download_cloudmask.override(resources=disk), d.max_files)

    # -- Stage 2: the reference's patches (CPU, cached) ------------------------------------------------
    prepare = prepare_cloudmask_patches.override(resources=disk)
    return raw, await stage(prepare, raw, d.val_fraction, d.split_seed, d.max_files)


async def cloudmask_trial(cfg: CloudMaskConfig, raw: Dir, prepared: Dir, label: str = "") -> tuple[Dir, Dir]:
    """Stages 3 and 4 for the seed ``cfg.training.seed``: training, then both geometries on the test files."""
    return await segmentation_trial(cfg, raw, prepared, label, evaluate_cloudmask)  # type: ignore[arg-type]


@pipeline_env.task
async def cloudmask_pipeline(
    cfg: CloudMaskConfig, data_dir: Dir | None = None, data_digest: str | None = None
) -> PipelineResult:
    """Run the CloudMask benchmark for ``cfg.seeds`` seeds; ``data_dir`` holds one-day/ and ssts/ for source=local."""
    started = time.time()
    raw, prepared = await cloudmask_data(cfg, data_dir, data_digest)

    # -- Stages 3 and 4: train and evaluate each seed (GPU, cached per seed) ---------------------------
    trained, evaluated = await over_seeds(cfg, cloudmask_trial, raw, prepared)

    # -- Stage 5: report over the seeds (CPU, cached) --------------------------------------------------
    report = await stage(report_cloudmask, raw, trained, evaluated, cfg, started)
    return PipelineResult(flyte.ctx().action.run_name, raw, prepared, trained, evaluated, report)
