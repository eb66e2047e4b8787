"""Stage 5, the report: a Union report panel and a standalone HTML file (cached)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import flyte
import flyte.report
from flyte.io import Dir

from config import (
    ClassificationConfig,
    CloudMaskConfig,
    DescribedConfig,
    SegmentationConfig,
    SemiConfig,
    build_config,
)
from envs import report_env
from satpipe.artifacts import atomic_dir, write_manifest
from tasks import STAGE_CACHE, output_dir, provenance, stage_dir

if TYPE_CHECKING:
    from satpipe.reporting.provenance import RunFacts

REPORT_FILE = "report.html"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Which published numbers a sweep's report shows, by the preset's config type.
SWEEP_DATASETS = {ClassificationConfig: "eurosat", SegmentationConfig: "38cloud", CloudMaskConfig: "cloudmask",
                  SemiConfig: "semi", DescribedConfig: "described"}  # fmt: skip

# ``started`` (when the pipeline began) only feeds the page's wall time, and the git commit is looked up
# when the page is built: a re-run with everything else unchanged reuses the page, which then shows the
# run that built it, that run's wall time and commit.
_CACHE = replace(STAGE_CACHE, ignored_inputs=("started",))


def run_facts(source: str, raw: list[Dir], started: float) -> RunFacts:
    """What the top of the page says: the data folder (not downloaded), this run, the commit, the wall time."""
    from satpipe.reporting.provenance import RunFacts
    from satpipe.versioning import git_commit

    return RunFacts(
        source=source,
        folder="; ".join(str(r.path) for r in raw),
        run=flyte.ctx().action.run_name,
        commit=git_commit(PROJECT_ROOT),
        wall_seconds=time.time() - started,
    )


async def _publish(html: str, config: Any, **inputs: Any) -> Dir:
    """Log the page to the Union report panel and keep it, with the resolved config, as the stage output."""
    await flyte.report.log.aio(html, do_flush=True)
    out = stage_dir("report")
    settings = config if isinstance(config, dict) else asdict(config)
    with atomic_dir(out) as tmp:
        (tmp / REPORT_FILE).write_text(html)
        (tmp / "config.json").write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
        write_manifest(tmp, "report", file=REPORT_FILE, config=settings, **provenance(**inputs))
    return output_dir(out)


@report_env.task(report=True, cache=_CACHE)
async def report_semi(raw: Dir, trained: list[Dir], evaluated: list[Dir], config: SemiConfig, started: float) -> Dir:
    """Held-out Jaccard per arm over seeds, gain against the labelled fraction, curves, pseudo-label quality."""
    from satpipe.reporting.semi import semi_report

    title = f"satpipe {config.name}: semi-supervised vs supervised-only segmentation"
    return await _report_runs(semi_report, raw, trained, evaluated, config, title, started)


async def _report_one(
    build: Callable[..., str], raw: Dir, trained: Dir, evaluated: Dir, config: Any, title: str, started: float
) -> Dir:
    """A report over one training run and its evaluation, published."""
    html = build(
        Path(await trained.download()),
        Path(await evaluated.download()),
        asdict(config),
        title,
        run_facts(config.data.source, [raw], started),
    )
    return await _publish(html, config, trained=trained.hash, evaluated=evaluated.hash)


async def _report_runs(
    build: Callable[..., str],
    raw: Dir,
    trained: list[Dir],
    evaluated: list[Dir],
    config: Any,
    title: str,
    started: float,
) -> Dir:
    """A report over several training runs and their evaluations, published."""
    train_dirs = [Path(await t.download()) for t in trained]
    eval_dirs = [Path(await e.download()) for e in evaluated]
    html = build(train_dirs, eval_dirs, asdict(config), title, run_facts(config.data.source, [raw], started))
    return await _publish(html, config, trained=[t.hash for t in trained], evaluated=[e.hash for e in evaluated])


@dataclass
class SweepTrial:
    """One trial of a sweep: its overrides, and its training and evaluation outputs or why it failed."""

    overrides: list[str]
    status: str  # ok | failed
    error: str = ""
    trained: Dir | None = None
    evaluated: Dir | None = None


@report_env.task(report=True, cache=_CACHE)
async def report_classification(
    raw: Dir, trained: Dir, evaluated: Dir, config: ClassificationConfig, started: float
) -> Dir:
    """Training curves with the phase change, learning rates, confusion matrix, per-class table, t-SNE, gallery."""
    from satpipe.reporting.classification import classification_report

    title = f"satpipe {config.name}: scene classification"
    return await _report_one(classification_report, raw, trained, evaluated, config, title, started)


@report_env.task(report=True, cache=_CACHE)
async def report_segmentation(
    raw: Dir, trained: Dir, evaluated: Dir, config: SegmentationConfig, started: float
) -> Dir:
    """Per-scene protocol metrics, threshold sweep, best and worst scene overlays, worst tiles, training curves."""
    from satpipe.reporting.segmentation import segmentation_report

    title = f"satpipe {config.name}: cloud segmentation"
    return await _report_one(segmentation_report, raw, trained, evaluated, config, title, started)


@report_env.task(report=True, cache=_CACHE)
async def report_described(raw: Dir, trained: Dir, evaluated: Dir, config: DescribedConfig, started: float) -> Dir:
    """Per-class IoU against the per-pixel baseline, confusion matrix, curves, class-coloured best and worst scenes."""
    from satpipe.reporting.kclass import kclass_report

    title = f"satpipe {config.name}: K-class segmentation"
    return await _report_one(kclass_report, raw, trained, evaluated, config, title, started)


@report_env.task(report=True, cache=_CACHE)
async def report_cloudmask(
    raw: Dir, trained: list[Dir], evaluated: list[Dir], config: CloudMaskConfig, started: float
) -> Dir:
    """Repeat-run table over seeds, per-scene accuracy, reference vs blended geometry, example scenes, curves."""
    from satpipe.reporting.cloudmask import cloudmask_report

    title = f"satpipe {config.name}: MLCommons CloudMask"
    return await _report_runs(cloudmask_report, raw, trained, evaluated, config, title, started)


@report_env.task(report=True, cache=_CACHE)
async def report_sweep(trials: list[SweepTrial], preset: str, base: list[str], raw: list[Dir], started: float) -> Dir:
    """Sortable trial table, the objective against the settings, every trial's curves, the best trial's curves."""
    from satpipe.reporting.sweep import Trial, sweep_report

    rows = [
        Trial(t.overrides, t.status, t.error, Path(await t.trained.download()) if t.trained else None,
              Path(await t.evaluated.download()) if t.evaluated else None)
        for t in trials
    ]  # fmt: skip
    first = build_config(preset, [*base, *trials[0].overrides])
    sweep = {"preset": preset, "base": base, "trials": [t.overrides for t in trials]}
    html = sweep_report(rows, preset, base, f"satpipe {preset}: sweep of {len(trials)} trials", sweep,
                        run_facts(first.data.source, raw, started), SWEEP_DATASETS[type(first)])  # fmt: skip
    return await _publish(html, sweep, trials=[[t.status, t.trained and t.trained.hash] for t in trials])
