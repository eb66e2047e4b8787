"""Stage 5, the report: a Union report panel and a standalone HTML file (cached)."""

from __future__ import annotations

import json
from dataclasses import asdict

import flyte
import flyte.report
from flyte.io import Dir

from config import ClassificationConfig
from envs import report_env
from satpipe.artifacts import atomic_dir, write_manifest
from tasks import output_dir, provenance, stage_cache, stage_dir

REPORT_FILE = "report.html"


@report_env.task(
    report=True, cache=stage_cache(__file__, "satpipe.reporting", "satpipe.evaluation", "satpipe.artifacts")
)
async def report_classification(trained: Dir, evaluated: Dir, config: ClassificationConfig) -> Dir:
    """Training curves with the phase change, learning rates, confusion matrix, per-class table, t-SNE."""
    from satpipe.reporting.classification import classification_report

    html = classification_report(
        await trained.download(),
        await evaluated.download(),
        asdict(config),
        f"satpipe {config.name}: scene classification",  # type: ignore[arg-type]
    )
    await flyte.report.log.aio(html, do_flush=True)
    out = stage_dir("report")
    with atomic_dir(out) as tmp:
        (tmp / REPORT_FILE).write_text(html)
        (tmp / "config.json").write_text(json.dumps(asdict(config), indent=2, sort_keys=True) + "\n")
        write_manifest(
            tmp,
            "report",
            file=REPORT_FILE,
            config=asdict(config),
            **provenance(trained=trained.hash, evaluated=evaluated.hash),
        )
    return output_dir(out)
