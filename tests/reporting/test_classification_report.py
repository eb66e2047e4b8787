import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plotly.offline import get_plotlyjs

from satpipe.reporting.classification import classification_report
from satpipe.reporting.curves import learning_rate_figure, loss_and_metric_figure
from satpipe.reporting.provenance import RunFacts
from satpipe.training.history import epoch_series, read_metrics_csv
from tests.browser import rendered_dom, screenshot

SECTIONS = (
    "Training curves",
    "Learning rate",
    "Confusion matrix",
    "Per-class metrics",
    "Validation embeddings (t-SNE)",
)


@pytest.fixture(scope="module")
def report(
    trained_run: dict[str, Path], synthetic_run: RunFacts, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    html = classification_report(
        trained_run["train"], trained_run["evaluate"], {"name": "unit"}, "unit report", synthetic_run
    )
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(html)
    return path


def test_report_is_self_contained_with_every_section(report: Path) -> None:
    html = report.read_text()
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in html
    assert "<script src=" not in html and get_plotlyjs()[:500] in html  # renders offline: plotly.js is inlined
    assert "test accuracy" in html and "&quot;name&quot;: &quot;unit&quot;" in html  # the config, escaped


def test_phase2_line_sits_at_the_phase_boundary(trained_run: dict[str, Path]) -> None:
    rows = read_metrics_csv(trained_run["train"] / "metrics.csv")
    fig = loss_and_metric_figure(rows, "val_acc", "validation accuracy", phase2_epoch=2)
    lines = [s for s in fig.layout.shapes if s.line.dash == "dash"]
    assert [s.x0 for s in lines] == [1.5, 1.5]
    assert [a.text for a in fig.layout.annotations if a.text == "Phase 2"] == ["Phase 2", "Phase 2"]
    assert epoch_series(rows, "val_acc")[0] == [1, 2, 3, 4, 5, 6]
    lr = learning_rate_figure(rows, phase2_step=9)
    assert {t.name for t in lr.data} == {"head", "head_no_decay", "backbone", "backbone_no_decay"}


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    dom = rendered_dom(report, tmp_path / "profile")
    assert dom.count('class="plot-container plotly"') == len(SECTIONS)  # every figure was drawn by plotly.js
    assert dom.count("scatterlayer") >= 3 and "heatmaplayer" in dom and 'class="table"' in dom
    png = screenshot(report, tmp_path / "profile", tmp_path / "report.png")
    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3).astype(int)
    assert (pixels.sum(axis=1) < 750).mean() > 0.1  # far from a blank page

    def share(rgb: tuple[int, int, int]) -> float:
        return (np.abs(pixels - rgb).sum(axis=1) < 30).mean()

    assert share((31, 119, 180)) > 1e-4  # train-loss / class colour (plotly blue)
    assert share((8, 48, 107)) > 1e-3  # dark cells of the confusion-matrix diagonal (Blues)
    assert share((229, 236, 246)) > 0.02  # plot backgrounds


def test_report_reads_only_finished_outputs(
    trained_run: dict[str, Path], synthetic_run: RunFacts, tmp_path: Path
) -> None:
    from satpipe.errors import ManifestError

    with pytest.raises(ManifestError, match="manifest.json: missing"):
        classification_report(tmp_path, trained_run["evaluate"], {}, "x", synthetic_run)
    metrics = json.loads((trained_run["evaluate"] / "metrics.json").read_text())
    assert metrics["accuracy"] > 0
