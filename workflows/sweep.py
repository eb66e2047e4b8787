"""Hyperparameter sweep: the data stages once, then every trial's training and evaluation, then one report.

Each trial is the preset with its overrides, so its training and evaluation are cached on their own:
re-running a sweep executes nothing, and a sweep with one more value executes only the new trials. A
trial that fails is reported as failed; the others finish. Trials run one after another locally and
each in its own pod on a cluster (``parallel`` limits how many at once).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import flyte
from flyte.io import Dir

import config
from envs import pipeline_env
from tasks.report import SweepTrial, report_sweep
from workflows import fan_out, stage
from workflows.classification import classification_data, classification_trial
from workflows.cloudmask import cloudmask_data, cloudmask_trial
from workflows.described import described_data, described_trial
from workflows.segmentation import segmentation_data, segmentation_trial
from workflows.semi import semi_trial

#: Each family's data stages (config, data folder, digest -> raw, prepared) and trial (-> trained, evaluated).
STAGES: dict[type, tuple[Callable[..., Awaitable[tuple[Dir, Dir]]], Callable[..., Awaitable[tuple[Dir, Dir]]]]] = {
    config.ClassificationConfig: (classification_data, classification_trial),
    config.SegmentationConfig: (segmentation_data, segmentation_trial),
    config.CloudMaskConfig: (cloudmask_data, cloudmask_trial),
    config.SemiConfig: (segmentation_data, semi_trial),
    config.DescribedConfig: (described_data, described_trial),
}


@dataclass
class SweepResult:
    """The sweep's data stage outputs (one pair per distinct data setting), its trials and its report."""

    run: str
    raw: list[Dir]
    prepared: list[Dir]
    trials: list[SweepTrial]
    report: Dir


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[-1] if text else type(error).__name__)[:300]


@pipeline_env.task
async def sweep_pipeline(
    preset: str,
    base: list[str],
    trials: list[list[str]],
    data_dir: Dir | None = None,
    data_digest: str | None = None,
    parallel: int | None = None,
) -> SweepResult:
    """Run ``preset`` with ``base`` overrides once per trial's overrides, sharing the data stages."""
    started = time.time()
    configs = [config.build_config(preset, [*base, *t]) for t in trials]
    data_stages, trial_stages = STAGES[type(configs[0])]

    # -- Stages 1 and 2: data, once per distinct data setting (CPU, cached) -----------------------------
    def data_key(cfg: Any) -> str:
        return json.dumps(asdict(cfg.data), sort_keys=True)

    data: dict[str, tuple[Dir, Dir]] = {}
    for cfg in configs:
        if data_key(cfg) not in data:
            data[data_key(cfg)] = await data_stages(cfg, data_dir, data_digest)

    # -- Stages 3 and 4: every trial, cached on its own; a failure stays with its trial ----------------
    async def run_trial(index: int) -> SweepTrial:
        cfg = configs[index]
        try:
            with flyte.group(f"trial-{index + 1}"):
                trained, evaluated = await trial_stages(cfg, *data[data_key(cfg)], f"trial{index + 1}")
        except Exception as e:  # any failure of one trial is that trial's result, not the sweep's
            return SweepTrial(trials[index], "failed", _one_line(e))
        return SweepTrial(trials[index], "ok", "", trained, evaluated)

    results = await fan_out(run_trial, range(len(configs)), limit=parallel)

    # -- Stage 5: the sweep report (CPU, cached) ------------------------------------------------------
    raws, prepared = [r for r, _ in data.values()], [p for _, p in data.values()]
    report = await stage(report_sweep, results, preset, base, raws, started)
    return SweepResult(flyte.ctx().action.run_name, raws, prepared, results, report)
