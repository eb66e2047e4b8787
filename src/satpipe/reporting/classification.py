"""Scene-classification report: curves, learning rates, confusion matrix, per-class table, t-SNE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from satpipe.artifacts import read_manifest
from satpipe.evaluation.classification import ERRORS_NPZ, EVALUATE_STAGE, METRICS_JSON, TSNE_JSON
from satpipe.reporting.curves import (
    PALETTE,
    learning_rate_figure,
    loss_and_metric_figure,
    training_run_facts,
)
from satpipe.reporting.html import Section, gallery, key_value_table, render_page
from satpipe.reporting.provenance import RunFacts
from satpipe.training.history import read_metrics_csv, step_series
from satpipe.training.trainer import METRICS_CSV, TRAIN_STAGE


def confusion_figure(confusion: list[list[int]], classes: list[str]) -> go.Figure:
    """Confusion matrix coloured by row-normalised share (recall), annotated with counts."""
    counts = np.asarray(confusion)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=classes,
            y=classes,
            text=counts,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": "share of row"},
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text} chips (%{z:.1%})<extra></extra>",
        )
    )
    fig.update_layout(
        height=560, xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed", margin={"t": 20}
    )
    return fig


def per_class_figure(per_class: list[dict[str, Any]]) -> go.Figure:
    """Per-class precision, recall, F1 and support as a table."""
    header = ["class", "precision", "recall", "F1", "support"]
    columns = [
        [row["class"] for row in per_class],
        *[[f"{row[k]:.3f}" for row in per_class] for k in ("precision", "recall", "f1")],
        [row["support"] for row in per_class],
    ]
    fig = go.Figure(
        go.Table(
            header={"values": header, "align": "left", "fill_color": "#eef"}, cells={"values": columns, "align": "left"}
        )
    )
    fig.update_layout(height=60 + 28 * len(per_class), margin={"t": 10, "b": 10, "l": 10, "r": 10})
    return fig


def tsne_figure(projection: dict[str, Any], classes: list[str]) -> go.Figure:
    """2-D t-SNE of embeddings, one colour per class."""
    fig = go.Figure()
    labels = np.asarray(projection["label"])
    x, y = np.asarray(projection["x"]), np.asarray(projection["y"])
    for i, name in enumerate(classes):
        keep = labels == i
        fig.add_trace(
            go.Scatter(
                x=x[keep], y=y[keep], mode="markers", name=name, marker={"size": 5, "color": PALETTE[i % len(PALETTE)]}
            )
        )
    fig.update_layout(height=520, xaxis_title="t-SNE 1", yaxis_title="t-SNE 2", margin={"t": 20})
    return fig


def errors_section(eval_dir: Path, classes: list[str]) -> Section:
    """The misclassified chips the model was surest of, each with its true and predicted class."""
    errors = np.load(eval_dir / ERRORS_NPZ)
    items = [
        ([rgb], f"{Path(str(name)).name}: {classes[true]} taken for {classes[predicted]} ({probs[predicted]:.0%})")
        for rgb, true, predicted, probs, name in zip(
            errors["rgb"], errors["true"], errors["predicted"], errors["probabilities"], errors["files"], strict=True
        )
    ]
    if not items:
        return Section("Worst misclassified chips", body="<p>Every chip of the split was classified correctly.</p>")
    return Section(
        "Worst misclassified chips",
        body=gallery(items),
        note="The wrong answers the scored checkpoint was surest of, most confident first, with the probability it "
        "gave the wrong class.",
    )


def classification_report(train_dir: Path, eval_dir: Path, config: dict[str, Any], title: str, facts: RunFacts) -> str:
    """Build the report page of a classification run from its training and evaluation outputs."""
    train = read_manifest(Path(train_dir), TRAIN_STAGE)
    read_manifest(Path(eval_dir), EVALUATE_STAGE)
    metrics = json.loads((Path(eval_dir) / METRICS_JSON).read_text())
    rows = read_metrics_csv(Path(train_dir) / METRICS_CSV)
    phase1 = train["phase1_epochs"]
    has_phase2 = 0 < phase1 < train["epochs_run"]  # phase 2 ran at least one epoch
    steps, backbone_lr = step_series(rows, "lr-AdamW/backbone")
    phase2_step = next((s for s, lr in zip(steps, backbone_lr, strict=True) if lr > 0), None) if has_phase2 else None

    curves = loss_and_metric_figure(rows, "val_acc", "validation accuracy", phase1 + 1 if has_phase2 else None)
    sections = [
        Section(
            "Training curves",
            curves,
            note=f"Phase 1 trains the head on a frozen backbone for {phase1} epoch(s); phase 2 fine-tunes everything.",
        ),
        Section(
            "Learning rate",
            learning_rate_figure(rows, phase2_step),
            note="Per parameter group; backbone groups stay at zero until phase 2 starts a fresh cosine schedule. "
            "Each group has its own dash pattern over the wider lines before it, so none hides another.",
        ),
        Section(
            "Confusion matrix",
            confusion_figure(metrics["confusion"], metrics["classes"]),
            note=f"{metrics['split']} split, {metrics['samples']} chips; colour is the share of each true class.",
        ),
        Section("Per-class metrics", per_class_figure(metrics["per_class"])),
    ]
    tsne_path = Path(eval_dir) / TSNE_JSON
    if tsne_path.exists():
        projection = json.loads(tsne_path.read_text())
        sections.append(
            Section(
                f"{projection['split'].capitalize()} embeddings (t-SNE)",
                tsne_figure(projection, metrics["classes"]),
                note=f"Pre-logit features of the scored checkpoint ({projection['checkpoint']}) on the "
                f"{projection['split']} split.",
            )
        )
    sections.append(errors_section(Path(eval_dir), metrics["classes"]))
    sections.append(Section("Run", body=key_value_table(training_run_facts(train, "validation accuracy"))))
    headline = {
        "test accuracy": f"{metrics['accuracy']:.2%}",
        "test macro F1": f"{metrics['macro_f1']:.3f}",
        "best val accuracy": f"{train['best_score']:.2%}",
        "classes": str(len(metrics["classes"])),
    }
    return render_page(title, headline, sections, config, facts, "eurosat")
