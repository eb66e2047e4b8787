"""Semi-supervised segmentation experiment: one labelled subset, two arms, several seeds, one report.

Scenes and patches come from the cloud segmentation stages (shared and cached); scenes without labels,
generated or the user's, are patched by a stage of their own and join the unlabelled pool. For every
labelled fraction and seed, the supervised-only arm and the semi-supervised arm train on the same labelled
patches as parallel branches, each cached on its own, and both are scored by the 38-Cloud full-scene
protocol on the held-out test scenes. A share of 1 trains the supervised reference on every label.
"""

from __future__ import annotations

import time
from dataclasses import replace

import flyte
from flyte.io import Dir

from config import SemiConfig, SemiSupervisedConfig, labelled_fractions
from envs import one_gpu, pipeline_env
from tasks.download import synthesize_clouds
from tasks.evaluate import evaluate_segmenter
from tasks.prepare import prepare_unlabelled_patches
from tasks.report import report_semi
from tasks.train import logged_on, train_semi
from workflows import PipelineResult, fan_out, local_data
from workflows.segmentation import segmentation_data


@pipeline_env.task
async def semi_pipeline(
    cfg: SemiConfig,
    data_dir: Dir | None = None,
    data_digest: str | None = None,
    unlabelled_dir: Dir | None = None,
    unlabelled_digest: str | None = None,
) -> PipelineResult:
    """Run both arms for every labelled fraction and seed.

    ``data_dir`` is a 38-Cloud folder for source=local; ``unlabelled_dir`` a folder of scenes without
    labels in the same layout (run.py --unlabelled-dir).
    """
    started = time.time()
    raw, prepared = await segmentation_data(cfg, data_dir, data_digest)  # type: ignore[arg-type]
    unlabelled = await unlabelled_patches(cfg, unlabelled_dir, unlabelled_digest)

    # -- Stages 3 and 4: every (fraction, seed, arm) branch trains and is evaluated (GPU, cached) -------
    train, evaluate = (
        logged_on(train_semi, cfg.resources),
        evaluate_segmenter.override(resources=one_gpu(cfg.resources)),
    )
    # A branch sees only its own share, so adding a share to the list leaves the others' caches alone. With
    # every label (share 1) nothing is left unlabelled unless scenes without labels were given.
    branches = [
        (replace(cfg.semi, fractions=share.strip()), cfg.training.seed + i, arm)
        for share, fraction in zip(cfg.semi.fractions.split(","), labelled_fractions(cfg.semi), strict=True)
        for i in range(cfg.seeds)
        for arm in ("supervised", cfg.semi.method)
        if arm == "supervised" or fraction < 1 or unlabelled is not None
    ]

    async def branch(spec: tuple[SemiSupervisedConfig, int, str]) -> tuple[Dir, Dir]:
        semi, seed, arm = spec
        trained = await train.aio(prepared, cfg.model, replace(cfg.training, seed=seed), semi, arm, unlabelled)
        return trained, await evaluate.aio(raw, prepared, trained, cfg.evaluation)

    with flyte.group("arms"):
        runs = await fan_out(branch, branches)
    trained, evaluated = [t for t, _ in runs], [e for _, e in runs]

    # -- Stage 5: report (CPU, cached) -----------------------------------------------------------------
    report = await report_semi.aio(raw, trained, evaluated, cfg, started)
    return PipelineResult(flyte.ctx().action.run_name, raw, prepared, trained, evaluated, report)


async def unlabelled_patches(cfg: SemiConfig, unlabelled_dir: Dir | None, digest: str | None) -> Dir | None:
    """Stages 1 and 2 for scenes without labels: the user's folder or more generated scenes, patched (CPU, cached)."""
    d = cfg.data
    if unlabelled_dir is not None:
        scenes = local_data(unlabelled_dir, digest)
    elif cfg.semi.unlabelled_scenes:
        # The same generator and seed, numbered on from the labelled scenes: new scenes, never copies.
        scenes = await synthesize_clouds.aio(
            cfg.semi.unlabelled_scenes, 0, d.synthetic_size, d.synthetic_seed,
            d.synthetic_train_scenes + d.synthetic_test_scenes,
        )  # fmt: skip
    else:
        return None
    return await prepare_unlabelled_patches.aio(scenes, d.patch_size, d.overlap, d.min_valid_fraction)
