"""What the reports under test say about their run."""

from __future__ import annotations

import pytest

from satpipe.reporting.provenance import RunFacts


@pytest.fixture(scope="session")
def synthetic_run() -> RunFacts:
    """A run on generated data, as the report task describes it."""
    return RunFacts("synthetic", "artifacts/runs/r0unit/data-0", "r0unit", "0123456789ab", 83.2)
