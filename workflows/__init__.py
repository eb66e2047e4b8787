"""Async pipeline tasks that chain the stages, one per task family."""

from __future__ import annotations

from dataclasses import dataclass

from flyte.io import Dir


@dataclass
class PipelineResult:
    """Every stage's output folder, and the run that produced this result."""

    run: str
    raw: Dir
    prepared: Dir
    trained: Dir
    evaluated: Dir
    report: Dir
