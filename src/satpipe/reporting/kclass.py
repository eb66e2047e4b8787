"""K-class (land-cover) segmentation report: per-class IoU against the per-pixel baseline, confusion, overlays."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from satpipe.artifacts import read_manifest
from satpipe.evaluation.segmentation import METRICS_JSON, PREVIEW_DIR
from satpipe.io.description import hex_rgb
from satpipe.reporting.curves import PALETTE, loss_and_metric_figure, training_run_facts
from satpipe.reporting.html import Section, key_value_table, render_page
from satpipe.reporting.provenance import RunFacts
from satpipe.reporting.segmentation import image_panels
from satpipe.training.history import read_metrics_csv
from satpipe.training.trainer import METRICS_CSV, TRAIN_STAGE

#: Class id of pixels without a label (gt) or without a prediction (no data under the scene's footprint).
NO_CLASS = 255
#: Error-map colours of correctly classified and ignored pixels; wrong ones take their true class's colour.
CORRECT = (60, 60, 60)
IGNORED = (0, 0, 0)
BASELINE_BAR = "#b0b0b0"
#: The key this report's data goes by in the provenance tables.
DATASET = "described"


def colourise(ids: np.ndarray, colours: list[str]) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 in the class colours; ids outside the classes (255) black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(colours)] = [hex_rgb(c) for c in colours]
    return lut[ids.astype(np.uint8)]


def error_map(gt: np.ndarray, pred: np.ndarray, colours: list[str]) -> np.ndarray:
    """(H, W, 3) uint8: correct pixels dark grey, wrong ones in their true class's colour, unlabelled black.

    A wrong pixel shows what was missed (its true class); the prediction panel beside it shows what it was
    taken for. A single "wrong" colour would hide which classes the errors concentrate in.
    """
    out = colourise(gt, colours)
    labelled = gt < len(colours)
    out[labelled & (gt == pred)] = CORRECT
    out[~labelled] = IGNORED
    return out


def pixel_accuracy(gt: np.ndarray, pred: np.ndarray, classes: int) -> float:
    """Share of labelled pixels predicted right (pixels without a prediction count as wrong)."""
    labelled = gt < classes
    return float((gt[labelled] == pred[labelled]).mean()) if labelled.any() else float("nan")


def overlay_figure(preview: Path, colours: list[str], title: str = "") -> go.Figure:
    """RGB, ground truth, prediction, baseline prediction and error map of one scene side by side."""
    data = np.load(preview)
    gt, pred, base = data["gt"], data["pred"], data["baseline_pred"]
    k = len(colours)
    panels = {
        "RGB": data["rgb"],
        "ground truth": colourise(gt, colours),
        f"prediction ({pixel_accuracy(gt, pred, k):.1%} right)": colourise(pred, colours),
        f"baseline ({pixel_accuracy(gt, base, k):.1%} right)": colourise(base, colours),
        "errors: right grey,<br>wrong in the true colour": error_map(gt, pred, colours),
    }
    # Five panels share the ~1050-pixel page width; a height from the aspect ratio leaves no empty bands.
    height = int(np.clip(200 * gt.shape[0] / gt.shape[1] + 90, 180, 440))
    fig = image_panels(panels, height=height, title=title)
    fig.update_layout(margin_t=65)  # room for the two-line panel title below plotly's toolbar
    return fig


def legend_html(classes: list[str], colours: list[str]) -> str:
    """Colour swatches with class names; the border keeps light colours visible on the white page."""
    items = "".join(
        f'<span style="display:inline-flex;align-items:center;margin:2px 14px 2px 0">'
        f'<span style="display:inline-block;width:16px;height:16px;background:{html.escape(c)};'
        f'border:1px solid #888;margin-right:6px"></span>{html.escape(name)}</span>'
        for name, c in zip(classes, colours, strict=True)
    )
    extra = (
        '<span style="display:inline-flex;align-items:center"><span style="display:inline-block;width:16px;'
        'height:16px;background:#000;border:1px solid #888;margin-right:6px"></span>no label / no data</span>'
    )
    return f'<div class="legend">{items}{extra}</div>'


def per_class_iou_figure(metrics: dict[str, Any]) -> go.Figure:
    """IoU of each class, the model in the class colours beside the baseline in grey."""
    classes, colours = metrics["classes"], metrics["colors"]
    model, base = metrics["per_class"], metrics["baseline"]["per_class"]
    hover = "%{x}: IoU %{y:.4f}<br>precision %{customdata[0]:.4f}, recall %{customdata[1]:.4f}, F1 %{customdata[2]:.4f}"
    fig = go.Figure()
    for name, rows, colour in (("model", model, colours), (metrics["baseline"]["name"], base, BASELINE_BAR)):
        fig.add_trace(
            go.Bar(
                x=classes,
                y=[r["iou"] for r in rows],
                name=name,
                marker={"color": colour, "line": {"color": "#444", "width": 1}},
                customdata=[[r["precision"], r["recall"], r["f1"]] for r in rows],
                hovertemplate=hover + f"<extra>{html.escape(name)}</extra>",
                text=["" if r["iou"] is None else f"{r['iou']:.2f}" for r in rows],
                textposition="outside",
            )
        )
    fig.update_layout(
        barmode="group", height=400, yaxis_range=[0, 1.08], yaxis_title="IoU", margin={"t": 20}, legend_title="bars"
    )
    return fig


def confusion_figure(confusion: np.ndarray, classes: list[str]) -> go.Figure:
    """Row-normalised confusion (each row: where one true class's pixels went), counts in the hover."""
    totals = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=classes,
            y=classes,
            customdata=confusion,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            texttemplate="%{z:.2f}",
            hovertemplate="true %{y}, predicted %{x}: %{z:.1%} of the row (%{customdata:,} pixels)<extra></extra>",
            colorbar={"title": "share of row"},
        )
    )
    fig.update_yaxes(autorange="reversed", title_text="true class")
    fig.update_xaxes(title_text="predicted class", side="bottom")
    fig.update_layout(height=120 + 50 * len(classes), margin={"t": 20})
    return fig


def class_frequency_figure(frequencies: list[float], classes: list[str], colours: list[str]) -> go.Figure:
    """Share of the training split's labelled pixels in each class, in the class colours."""
    fig = go.Figure(
        go.Bar(
            x=classes,
            y=frequencies,
            marker={"color": colours, "line": {"color": "#444", "width": 1}},
            hovertemplate="%{x}: %{y:.2%} of labelled training pixels<extra></extra>",
        )
    )
    fig.update_layout(height=340, yaxis_tickformat=".0%", yaxis_title="share of pixels", margin={"t": 20})
    return fig


def per_scene_figure(rows: list[dict[str, Any]], pooled_miou: float) -> go.Figure:
    """Per-scene mIoU as bars, with the pooled mIoU as a dashed line."""
    fig = go.Figure(
        go.Bar(
            x=[r["scene"] for r in rows],
            y=[r["miou"] for r in rows],
            marker_color=PALETTE[0],
            customdata=[[r["overall_accuracy"], r["pixels"], r["windows"]] for r in rows],
            hovertemplate="%{x}: mIoU %{y:.4f}<br>overall accuracy %{customdata[0]:.4f}<br>"
            "%{customdata[1]:,} labelled pixels, %{customdata[2]} windows<extra></extra>",
        )
    )
    fig.add_hline(y=pooled_miou, line_dash="dash", line_color="#555", annotation_text=f"pooled {pooled_miou:.3f}")
    fig.update_layout(height=360, yaxis_range=[0, 1], yaxis_title="mIoU", xaxis_tickangle=-30, margin={"t": 20})
    return fig


def score_text(value: float | None) -> str:
    """A score to four places, or a dash for a class that neither the truth nor the prediction holds."""
    return "–" if value is None else f"{value:.4f}"


def per_class_table(metrics: dict[str, Any]) -> str:
    """Every per-class number of the model, with the baseline's IoU beside it."""
    header = "".join(f"<th>{h}</th>" for h in ("class", "IoU", "precision", "recall", "F1", "pixels", "baseline IoU"))
    rows = "".join(
        f"<tr><td>{html.escape(m['class'])}</td>"
        + "".join(f"<td>{score_text(m[key])}</td>" for key in ("iou", "precision", "recall", "f1"))
        + f"<td>{m['pixels']:,}</td><td>{score_text(b['iou'])}</td></tr>"
        for m, b in zip(metrics["per_class"], metrics["baseline"]["per_class"], strict=True)
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>"


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"train.lr": 0.001, ...}``, one row each in the settings table."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def scenes_to_show(rows: list[dict[str, Any]], previews: Path, count: int = 2) -> list[tuple[str, dict[str, Any]]]:
    """Up to ``count`` best then ``count`` worst scenes by mIoU, each once, of those with a preview."""
    shown = (r for r in rows if r["miou"] is not None and (previews / f"{r['scene']}.npz").exists())
    ranked = sorted(shown, key=lambda r: r["miou"])
    best = ranked[::-1][:count]
    worst = [r for r in ranked[:count] if r not in best]
    return [("Best", r) for r in best] + [("Worst", r) for r in worst]


def kclass_report(train_dir: Path, eval_dir: Path, config: dict[str, Any], title: str, facts: RunFacts) -> str:
    """Build the report page of a K-class segmentation run from its training and evaluation outputs.

    Args:
        train_dir: The training stage's output (``metrics.csv`` and its manifest).
        eval_dir: The evaluation's output (``metrics.json`` and ``previews/<scene>.npz``).
        config: The resolved configuration, shown as a settings table and as JSON.
        title: Page title.
        facts: Where the data came from, the run, the commit and the wall time.

    Returns:
        A standalone HTML page.

    Raises:
        ManifestError: If ``train_dir`` is not a finished training output.
        ValueError: If the class names, colours and confusion matrix of ``metrics.json`` disagree on K.
    """
    train = read_manifest(Path(train_dir), TRAIN_STAGE)
    metrics = json.loads((Path(eval_dir) / METRICS_JSON).read_text())
    classes, colours = metrics["classes"], metrics["colors"]
    confusion = np.asarray(metrics["confusion"], dtype=np.int64)
    if not len(classes) == len(colours) == len(confusion) == len(metrics["per_class"]):
        raise ValueError(
            f"{Path(eval_dir) / METRICS_JSON}: {len(classes)} classes, {len(colours)} colours, a {len(confusion)}-row "
            f"confusion matrix and {len(metrics['per_class'])} per-class rows; all must be K"
        )
    baseline = metrics["baseline"]
    history = read_metrics_csv(Path(train_dir) / METRICS_CSV)
    # Binary runs monitor val_jaccard and K-class runs val_miou; the manifest says which this run used.
    monitor = train.get("monitor") or ("val_miou" if any("val_miou" in r for r in history) else "val_jaccard")
    label = {"val_miou": "validation mIoU", "val_jaccard": "validation Jaccard"}.get(monitor, monitor)
    inference = metrics["inference"]
    legend = legend_html(classes, colours)
    sections = [
        Section(
            "Classes", body=legend + per_class_table(metrics), note=f"{len(classes)} classes; {metrics['protocol']}."
        ),
        Section(
            "Per-class IoU",
            per_class_iou_figure(metrics),
            note=f"Coloured bars: the model; grey bars: the per-pixel baseline ({baseline['name']}), which sees one "
            "pixel's bands and no context. The gap is what spatial context adds.",
        ),
        Section(
            "Confusion matrix",
            confusion_figure(confusion, classes),
            note="Pixels pooled over the test scenes; each row is divided by its true class's pixel count, so the "
            "diagonal is recall. Hover for the counts.",
        ),
        Section(
            "Per-scene mIoU",
            per_scene_figure(metrics["per_scene"], metrics["miou"]),
            note=f"Inference: {inference['window']}-pixel windows, {inference['overlap']} overlap, "
            f"{inference['blend']} blending.",
        ),
    ]
    previews = Path(eval_dir) / PREVIEW_DIR
    for which, row in scenes_to_show(metrics["per_scene"], previews):
        sections.append(
            Section(
                f"{which} scene: {row['scene']} (mIoU {row['miou']:.3f})",
                overlay_figure(previews / f"{row['scene']}.npz", colours),
                body=legend,
            )
        )
    sections += [
        Section("Training curves", loss_and_metric_figure(history, monitor, label)),
        Section(
            "Class frequencies (training split)",
            class_frequency_figure(metrics["class_frequencies"], classes, colours),
            note="Rare classes get few gradient updates; compare with their IoU above.",
        ),
        Section("Run", body=key_value_table(training_run_facts(train, label, monitored=monitor))),
        Section("Settings", body=key_value_table(flatten(config))),
    ]
    headline = {
        "mIoU": f"{metrics['miou']:.4f}",
        "overall accuracy": f"{metrics['overall_accuracy']:.4f}",
        "macro F1": f"{metrics['macro_f1']:.4f}",
        f"mIoU, per-pixel baseline ({baseline['name']})": f"{baseline['miou']:.4f}",
        "gap to the baseline (mIoU)": f"{metrics['miou'] - baseline['miou']:+.4f}",
        "test scenes": str(len(metrics["per_scene"])),
    }
    return render_page(title, headline, sections, config, facts, DATASET)
