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

from config import SemiConfig, labelled_fractions
from envs import one_gpu, pipeline_env
from satpipe.errors import ConfigError
from tasks.download import synthesize_clouds
from tasks.evaluate import evaluate_segmenter
from tasks.prepare import prepare_unlabelled_patches
from tasks.report import report_semi
from tasks.train import logged_on, train_semi
from workflows import PipelineResult, fan_out, local_data, stage
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
    # A branch sees only its own share, so adding a share to the list leaves the others' caches alone. With
    # every label (share 1) nothing is left unlabelled unless scenes without labels were given.
    branches = [
        (replace(cfg, semi=replace(cfg.semi, fractions=share.strip()), training=replace(cfg.training, seed=seed)), arm)
        for share, fraction in zip(cfg.semi.fractions.split(","), labelled_fractions(cfg.semi), strict=True)
        for seed in range(cfg.training.seed, cfg.training.seed + cfg.seeds)
        for arm in ("supervised", cfg.semi.method)
        if arm == "supervised" or fraction < 1 or unlabelled is not None
    ]
    with flyte.group("arms"):
        runs = await fan_out(lambda branch: semi_branch(*branch, raw, prepared, unlabelled), branches)
    trained, evaluated = [t for t, _ in runs], [e for _, e in runs]

    # -- Stage 5: report (CPU, cached) -----------------------------------------------------------------
    report = await stage(report_semi, raw, trained, evaluated, cfg, started)
    return PipelineResult(flyte.ctx().action.run_name, raw, prepared, trained, evaluated, report)


async def semi_branch(
    cfg: SemiConfig, arm: str, raw: Dir, prepared: Dir, unlabelled: Dir | None, label: str = ""
) -> tuple[Dir, Dir]:
    """Stages 3 and 4 of one branch: ``arm`` trained on the share in ``cfg.semi.fractions``, then scored.

    The branch trains with the seed ``cfg.training.seed`` and is scored on the held-out test scenes;
    ``label`` (a sweep trial) goes before the arm and share in its W&B run's name.
    """
    logged = logged_on(cfg, "-".join(filter(None, (label, arm, cfg.semi.fractions))), arm=arm)
    trained = await stage(train_semi, prepared, cfg.model, cfg.training, cfg.semi, arm, unlabelled, wrap=logged)
    evaluate = evaluate_segmenter.override(**one_gpu(cfg.resources))
    return trained, await stage(evaluate, raw, prepared, trained, cfg.evaluation)


async def semi_trial(cfg: SemiConfig, raw: Dir, prepared: Dir, label: str = "") -> tuple[Dir, Dir]:
    """Stages 3 and 4 of a sweep trial: the semi-supervised arm at the first share of ``semi.fractions``, one seed.

    A sweep tunes the semi-supervised method. Its unlabelled scenes are patched here rather than with the
    data stages because ``semi.unlabelled_scenes`` is a setting a sweep may vary (cached, so trials that
    share the setting share the stage).

    Raises:
        ConfigError: If the share is 1 and no scenes without labels are added: nothing is left unlabelled.
    """
    share = cfg.semi.fractions.split(",")[0].strip()
    unlabelled = await unlabelled_patches(cfg, None, None)
    if labelled_fractions(replace(cfg.semi, fractions=share)) == [1.0] and unlabelled is None:
        raise ConfigError(
            f"semi.fractions={share}: the semi-supervised arm needs unlabelled patches "
            "(a share below 1, or semi.unlabelled_scenes)"
        )
    return await semi_branch(replace(cfg, semi=replace(cfg.semi, fractions=share)), cfg.semi.method, raw, prepared,
                             unlabelled, label)  # fmt: skip


async def unlabelled_patches(cfg: SemiConfig, unlabelled_dir: Dir | None, digest: str | None) -> Dir | None:
    """Stages 1 and 2 for scenes without labels: the user's folder or more generated scenes, patched (CPU, cached)."""
    d = cfg.data
    if unlabelled_dir is not None:
        scenes = local_data(unlabelled_dir, digest)
    elif cfg.semi.unlabelled_scenes:
        # The same generator and seed, numbered on from the labelled scenes: new scenes, never copies.
        scenes = await stage(
            synthesize_clouds, cfg.semi.unlabelled_scenes, 0, d.synthetic_size, d.synthetic_seed,
            d.synthetic_train_scenes + d.synthetic_test_scenes,
        )  # fmt: skip
    else:
        return None
    return await stage(prepare_unlabelled_patches, scenes, d.patch_size, d.overlap, d.min_valid_fraction)
