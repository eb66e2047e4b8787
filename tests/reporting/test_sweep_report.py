"""The sweep report as a pure function of its trials' folders, and the page in headless Chromium."""

from __future__ import annotations

import csv
from pathlib import Path

import plotly.graph_objects as go
import pytest

from satpipe.artifacts import write_manifest
from satpipe.reporting.provenance import RunFacts
from satpipe.reporting.sweep import Trial, objective_by_setting, sweep_report, trial_curves
from tests.browser import rendered_dom


def finished(root: Path, overrides: list[str], accuracy: float) -> Trial:
    """A trial's training folder (per-epoch metrics rising to ``accuracy``) and its evaluation's headline."""
    name = "-".join(overrides).replace("=", "_")
    train, evaluate = root / f"train-{name}", root / f"evaluate-{name}"
    train.mkdir(parents=True)
    with open(train / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["epoch", "step", "val_acc", "val_loss", "train_loss_epoch"])
        writer.writeheader()
        for epoch in range(3):
            writer.writerow({"epoch": epoch, "step": 10 * epoch + 9, "val_acc": accuracy * (epoch + 1) / 3,
                             "val_loss": 2 - accuracy * epoch, "train_loss_epoch": 2 - epoch / 2})  # fmt: skip
    write_manifest(train, "train", monitor="val_acc", epochs_run=3, fit_seconds=4.2, best_checkpoint="best.ckpt")
    evaluate.mkdir()
    write_manifest(evaluate, "evaluate", headline=[["test accuracy", accuracy], ["macro F1", accuracy - 0.1]])
    return Trial(overrides, "ok", "", train, evaluate)


@pytest.fixture
def one_numeric_key(tmp_path: Path) -> list[Trial]:
    return [finished(tmp_path, [f"training.phase2_lr={lr}"], acc) for lr, acc in (("3e-2", 0.8), ("1e-4", 0.6),
                                                                                  ("1e-3", 0.9))]  # fmt: skip


def page(trials: list[Trial], facts: RunFacts) -> str:
    return sweep_report(trials, "quickstart", [], "sweep", {"preset": "quickstart"}, facts, "eurosat")


def test_one_swept_number_is_a_line_of_the_objective_in_the_values_order(one_numeric_key: list[Trial]) -> None:
    fig = objective_by_setting(one_numeric_key, "test accuracy")
    (trace,) = fig.data
    assert isinstance(trace, go.Scatter) and trace.mode == "lines+markers"
    assert list(trace.x) == [1e-4, 1e-3, 3e-2] and list(trace.y) == [0.6, 0.9, 0.8]
    assert fig.layout.xaxis.title.text == "training.phase2_lr" and fig.layout.xaxis.type == "log"


def test_one_swept_name_is_a_bar_chart(tmp_path: Path) -> None:
    trials = [finished(tmp_path, [f"model.arch={a}"], acc) for a, acc in (("unet", 0.7), ("satunet", 0.75))]
    (trace,) = objective_by_setting(trials, "test accuracy").data
    assert isinstance(trace, go.Bar) and list(trace.x) == ["satunet", "unet"] and list(trace.y) == [0.75, 0.7]


def test_one_swept_key_has_no_parallel_coordinates_but_every_trials_curve(
    one_numeric_key: list[Trial], synthetic_run: RunFacts, tmp_path: Path
) -> None:
    failed = Trial(["training.phase2_lr=1e-2"], "failed", "diverged")
    html = page([*one_numeric_key, failed], synthetic_run)
    assert "Parallel coordinates" not in html and "Parcoords" not in html
    assert "<h2>test accuracy against training.phase2_lr</h2>" in html
    assert "<h2>Training curves of every trial</h2>" in html and ">r0unit<" in html
    assert "Published reference numbers (EuroSAT)" in html
    path = tmp_path / "sweep.html"
    path.write_text(html)
    dom = rendered_dom(path, tmp_path / "profile")
    assert dom.count('class="plot-container plotly"') == 3 and 'class="parcoords"' not in dom


def test_the_overlay_draws_every_finished_trial(one_numeric_key: list[Trial]) -> None:
    fig = trial_curves([*one_numeric_key, Trial(["training.phase2_lr=1e-2"], "failed", "diverged")])
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["trial 1: training.phase2_lr=3e-2", "trial 2: training.phase2_lr=1e-4",
                      "trial 3: training.phase2_lr=1e-3"]  # fmt: skip
    accuracy = [t for t in fig.data if t.yaxis == "y"]
    assert [list(t.y)[-1] for t in accuracy] == pytest.approx([0.8, 0.6, 0.9])
    assert len(fig.data) == 6  # the validation metric and the validation loss of each trial


def test_two_swept_keys_keep_the_parallel_coordinates(tmp_path: Path, synthetic_run: RunFacts) -> None:
    trials = [finished(tmp_path, [f"training.phase2_lr={lr}", f"training.label_smoothing={s}"], acc)
              for lr, s, acc in (("1e-3", "0.0", 0.7), ("1e-3", "0.1", 0.8), ("3e-3", "0.0", 0.6))]  # fmt: skip
    html = page(trials, synthetic_run)
    assert "<h2>Parallel coordinates</h2>" in html and "<h2>test accuracy against each setting</h2>" in html
