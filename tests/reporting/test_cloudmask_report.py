import json
import re
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from satpipe.evaluation.segmentation import METRICS_JSON
from satpipe.reporting.cloudmask import cloudmask_report, repeat_runs_table
from satpipe.reporting.provenance import RunFacts
from tests.browser import rendered_dom, screenshot


@pytest.fixture(scope="module")
def report(
    cloudmask_runs: dict[str, Any], synthetic_run: RunFacts, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    html = cloudmask_report(
        cloudmask_runs["train"], cloudmask_runs["evaluate"], {"name": "unit"}, "cloudmask", synthetic_run
    )
    path = tmp_path_factory.mktemp("cloudmask_report") / "report.html"
    path.write_text(html)
    return path


def test_repeat_run_table_has_a_row_per_seed_and_the_spread(cloudmask_runs: dict[str, Any]) -> None:
    runs = [json.loads((p / METRICS_JSON).read_text()) for p in cloudmask_runs["evaluate"]]
    table, stats = repeat_runs_table(runs)
    accuracies = [m["summary"]["reference"]["accuracy"] for m in runs]
    assert stats["test accuracy"] == pytest.approx((statistics.mean(accuracies), statistics.stdev(accuracies)))
    columns = table.data[0].cells.values
    assert list(columns[0]) == ["0", "1", "mean", "std"]
    header = list(table.data[0].header.values)
    assert {"epochs", "train accuracy", "test accuracy", "train time per epoch (s)"} <= set(header)
    assert columns[header.index("test accuracy")][2] == f"{statistics.mean(accuracies):.4f}"
    assert list(columns[header.index("epochs")][:2]) == ["3", "3"]


def test_sections_and_headline(report: Path) -> None:
    html = report.read_text()
    for title in ("Repeat runs", "Per-scene accuracy", "Reference vs blended geometry", "Training curves", "Runs"):
        assert f"<h2>{title}" in html
    # One test scene: it is both the best and the worst, shown once, in five panels.
    assert re.findall(r"<h2>(\w+) scene", html) == ["Only"] and html.count('"source":"data:image') == 5
    assert re.search(r"class=\"value\">0\.\d{4} ± 0\.\d{4}</div><div class=\"label\">test accuracy \(reference", html)


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    dom = rendered_dom(report, tmp_path / "profile")
    assert dom.count('class="plot-container plotly"') == 5 and dom.count("<image") >= 5
    pixels = np.asarray(
        Image.open(screenshot(report, tmp_path / "profile", tmp_path / "r.png")).convert("RGB")
    ).reshape(-1, 3)
    for colour in ((245, 245, 245), (230, 80, 40), (40, 120, 230)):  # agreement and both kinds of disagreement
        assert (np.abs(pixels.astype(int) - colour).sum(axis=1) < 20).sum() > 50, colour
