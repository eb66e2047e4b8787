from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satpipe.reporting.provenance import RunFacts
from satpipe.reporting.segmentation import ERROR_COLOURS, error_map, segmentation_report, sweep_figure
from tests.browser import rendered_dom, screenshot


@pytest.fixture(scope="module")
def report(
    trained_segmenter: dict[str, Path], synthetic_run: RunFacts, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    html = segmentation_report(
        trained_segmenter["train"], trained_segmenter["evaluate"], {"name": "unit"}, "clouds", synthetic_run
    )
    path = tmp_path_factory.mktemp("seg_report") / "report.html"
    path.write_text(html)
    return path


def test_sections_and_labelled_f1(report: Path) -> None:
    html = report.read_text()
    for title in ("Per-scene metrics (38-Cloud full-scene protocol)", "Threshold sweep", "Best scene:", "Worst scene:",
                  "Training curves", "Other protocols"):  # fmt: skip
        assert title in html
    assert "F1, mean of scenes" in html and "F1 of mean P and R" in html
    assert html.count('"source":"data:image') == 8  # four PNG panels each for the best and the worst scene


def test_error_map_colours() -> None:
    gt = np.array([[True, True, False, False]])
    pred = np.array([[True, False, True, False]])
    colours = [tuple(c) for c in error_map(gt, pred)[0]]
    assert colours == [ERROR_COLOURS["TP"], ERROR_COLOURS["FN"], ERROR_COLOURS["FP"], ERROR_COLOURS["TN"]]


def test_chosen_threshold_is_marked() -> None:
    sweep = {
        "threshold": [0.1, 0.3, 0.5, 0.7],
        **{m: [0.1, 0.2, 0.3, 0.4] for m in ("precision", "recall", "f1", "jaccard")},
    }
    fig = sweep_figure(sweep, 0.5)
    markers = [t for t in fig.data if t.mode == "markers"]
    assert len(markers) == 4 and all(list(t.x) == [0.5] for t in markers)


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    dom = rendered_dom(report, tmp_path / "profile")
    assert dom.count('class="plot-container plotly"') == 6 and dom.count("<image") >= 8
    pixels = np.asarray(
        Image.open(screenshot(report, tmp_path / "profile", tmp_path / "r.png")).convert("RGB")
    ).reshape(-1, 3)
    for colour in ((245, 245, 245), (230, 80, 40), (40, 120, 230)):  # the error map's TP, FP and FN were drawn
        assert (np.abs(pixels.astype(int) - colour).sum(axis=1) < 20).mean() > 1e-4, colour
