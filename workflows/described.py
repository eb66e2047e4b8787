"""K-class segmentation of your own imagery: dataset.yaml folder -> patches -> training per seed -> scenes -> report.

The data folder is the user's (``run.py segment --data-dir``) or generated land cover (``run.py landcover``),
read through its ``dataset.yaml`` either way. Scenes and patches run on CPU; each seed trains on a GPU
and predicts the test scenes whole into class-id and confidence COGs. Every stage is cached on its own.
"""

from __future__ import annotations

import time

import flyte
from flyte.io import Dir

from config import DescribedConfig
from envs import pipeline_env
from tasks.download import synthesize_landcover
from tasks.evaluate import evaluate_described
from tasks.prepare import prepare_described_patches
from tasks.report import report_described
from workflows import PipelineResult, local_data, over_seeds, stage
from workflows.segmentation import segmentation_trial


async def described_data(cfg: DescribedConfig, data_dir: Dir | None, data_digest: str | None) -> tuple[Dir, Dir]:
    """Stages 1 and 2: the scenes (the user's folder or generated land cover) and their training patches."""
    d = cfg.data
    # -- Stage 1: scenes and their dataset.yaml (CPU, cached) ------------------------------------------
    if d.source == "local":
        raw = local_data(data_dir, data_digest)
    else:
        raw = await stage(
            synthesize_landcover, d.synthetic_train_scenes, d.synthetic_test_scenes, d.synthetic_size, d.synthetic_seed
        )

    # -- Stage 2: patches of class ids, split by scene (CPU, cached) -----------------------------------
    prepared = await stage(
        prepare_described_patches,
        raw,
        d.patch_size,
        d.overlap,
        d.min_valid_fraction,
        d.val_fraction,
        d.test_fraction,
        d.split_seed,
    )
    return raw, prepared


async def described_trial(cfg: DescribedConfig, raw: Dir, prepared: Dir, label: str = "") -> tuple[Dir, Dir]:
    """Stages 3 and 4 for the seed ``cfg.training.seed``: training, then the test scenes predicted whole."""
    return await segmentation_trial(cfg, raw, prepared, label, evaluate_described)  # type: ignore[arg-type]


@pipeline_env.task
async def described_pipeline(
    cfg: DescribedConfig, data_dir: Dir | None = None, data_digest: str | None = None
) -> PipelineResult:
    """Run K-class segmentation for ``cfg.seeds`` seeds; ``data_dir`` holds a dataset.yaml for source=local."""
    started = time.time()
    raw, prepared = await described_data(cfg, data_dir, data_digest)

    # -- Stages 3 and 4: train and evaluate each seed (GPU, cached per seed) ---------------------------
    trained, evaluated = await over_seeds(cfg, described_trial, raw, prepared)

    # -- Stage 5: report of the first seed; the summary gives every seed's scores (CPU, cached) ---------
    report = await stage(report_described, raw, trained[0], evaluated[0], cfg, started)
    return PipelineResult(flyte.ctx().action.run_name, raw, prepared, trained, evaluated, report)
