"""Cloud-segmentation report: per-scene protocol metrics, threshold sweep, best/worst overlays, curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from satpipe.artifacts import read_manifest
from satpipe.evaluation.segmentation import EVALUATE_STAGE, METRICS_JSON, PREVIEW_DIR
from satpipe.reporting.curves import PALETTE, loss_and_metric_figure, training_run_facts
from satpipe.reporting.html import Section, gallery, key_value_table, png_uri, render_page
from satpipe.reporting.provenance import RunFacts
from satpipe.training.history import read_metrics_csv
from satpipe.training.trainer import METRICS_CSV, TRAIN_STAGE

#: Error-map colours: true negative, true positive, false positive, false negative.
ERROR_COLOURS = {"TN": (40, 40, 40), "TP": (245, 245, 245), "FP": (230, 80, 40), "FN": (40, 120, 230)}
SCENE_METRICS = ("jaccard", "precision", "recall", "specificity", "accuracy", "f1")


def error_map(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: TP, FP, FN and TN each in its own colour."""
    out = np.empty((*gt.shape, 3), np.uint8)
    for name, where in (("TN", ~gt & ~pred), ("TP", gt & pred), ("FP", ~gt & pred), ("FN", gt & ~pred)):
        out[where] = ERROR_COLOURS[name]
    return out


def image_panels(panels: dict[str, np.ndarray], height: int = 330, title: str = "") -> go.Figure:
    """Images (H, W, 3) uint8 side by side in one row, each under its title."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels), horizontal_spacing=0.01)
    for i, (name, panel) in enumerate(panels.items(), start=1):
        fig.add_trace(go.Image(source=png_uri(panel), name=name), row=1, col=i)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, margin={"t": 40, "b": 0, "l": 0, "r": 0}, title_text=title, title_font_size=13)
    return fig


def overlay_figure(preview: Path, title: str) -> go.Figure:
    """RGB, ground truth, prediction and error map of one scene side by side."""
    data = np.load(preview)
    gt, pred = data["gt"].astype(bool), data["pred"].astype(bool)
    panels = {
        "RGB": data["rgb"],
        "ground truth": np.repeat((gt * 255).astype(np.uint8)[..., None], 3, 2),
        "prediction": np.repeat((pred * 255).astype(np.uint8)[..., None], 3, 2),
        "errors: TP white, FP orange, FN blue": error_map(gt, pred),
    }
    return image_panels(panels, title=title)


def worst_tiles_section(preview_dir: Path, count: int = 6) -> Section:
    """Each scene's tile with the most wrong pixels, at full resolution, the worst ``count`` of them first."""
    tiles = []
    for path in sorted(preview_dir.glob("*.npz")):
        data = np.load(path)
        gt, pred = data["tile_gt"].astype(bool), data["tile_pred"].astype(bool)
        row, col = (int(v) for v in data["tile_origin"])
        caption = (
            f"{path.stem}, rows {row}-{row + gt.shape[0]}, columns {col}-{col + gt.shape[1]}: "
            f"{(gt & ~pred).mean():.1%} of pixels missed cloud, {(~gt & pred).mean():.1%} false cloud"
        )
        tiles.append((int(data["tile_wrong"]) / gt.size, ([data["tile_rgb"], error_map(gt, pred)], caption)))
    tiles.sort(key=lambda t: -t[0])
    return Section(
        "Worst tiles",
        body=gallery([item for _, item in tiles[:count]], width=192),
        note="The tile of each test scene with the most wrong pixels, the worst first: RGB, then the errors "
        "(TP white, FP orange, FN blue, TN dark).",
    )


def per_scene_figures(rows: list[dict[str, Any]]) -> tuple[go.Figure, go.Figure]:
    """A bar chart of Jaccard, precision and recall per scene, and the full per-scene table."""
    names = [r["scene"] for r in rows]
    chart = go.Figure(
        [
            go.Bar(x=names, y=[r[m] for r in rows], name=m, marker_color=PALETTE[i])
            for i, m in enumerate(("jaccard", "precision", "recall"))
        ]
    )
    chart.update_layout(barmode="group", height=380, yaxis_range=[0, 1], margin={"t": 20}, xaxis_tickangle=-30)
    header = ["scene", *SCENE_METRICS, "cloud fraction", "windows run", "windows skipped"]
    columns = [
        names,
        *[[f"{r[m]:.4f}" for r in rows] for m in SCENE_METRICS],
        [f"{r['cloud_fraction']:.3f}" for r in rows],
        [r["windows"] for r in rows],
        [r["windows_skipped"] for r in rows],
    ]
    table = go.Figure(
        go.Table(
            header={"values": header, "fill_color": "#eef", "align": "left"}, cells={"values": columns, "align": "left"}
        )
    )
    table.update_layout(height=80 + 28 * len(rows), margin={"t": 10, "b": 10, "l": 10, "r": 10})
    return chart, table


def sweep_figure(sweep: dict[str, list[float]], chosen: float) -> go.Figure:
    """Precision, recall, F1 and Jaccard (means over scenes) against the threshold; the chosen one marked."""
    fig = go.Figure()
    thresholds = np.asarray(sweep["threshold"])
    nearest = int(np.abs(thresholds - chosen).argmin())
    for i, metric in enumerate(("precision", "recall", "f1", "jaccard")):
        fig.add_trace(go.Scatter(x=thresholds, y=sweep[metric], mode="lines", name=metric, line_color=PALETTE[i]))
        fig.add_trace(
            go.Scatter(
                x=[thresholds[nearest]],
                y=[sweep[metric][nearest]],
                mode="markers",
                marker={"size": 11, "color": PALETTE[i], "line": {"width": 2, "color": "black"}},
                showlegend=False,
                hovertemplate=f"{metric} at the chosen threshold: %{{y:.4f}}",
            )
        )
    fig.add_vline(x=chosen, line_dash="dash", line_color="#555", annotation_text=f"chosen {chosen:g}")
    fig.update_layout(
        height=400, xaxis_title="threshold", yaxis_title="mean over scenes", yaxis_range=[0, 1.02], margin={"t": 30}
    )
    return fig


def segmentation_report(train_dir: Path, eval_dir: Path, config: dict[str, Any], title: str, facts: RunFacts) -> str:
    """Build the report page of a cloud-segmentation run from its training and evaluation outputs."""
    train = read_manifest(Path(train_dir), TRAIN_STAGE)
    read_manifest(Path(eval_dir), EVALUATE_STAGE)
    metrics = json.loads((Path(eval_dir) / METRICS_JSON).read_text())
    rows = metrics["per_scene"]
    full = metrics["full_scene"]
    mean = full["mean_over_scenes"]
    chart, table = per_scene_figures(rows)
    ranked = sorted(rows, key=lambda r: r["jaccard"])
    sections = [
        Section(
            "Per-scene metrics (38-Cloud full-scene protocol)",
            chart,
            body=table.to_html(full_html=False, include_plotlyjs=False),
            note=f"{metrics['protocol']}; cloud where p > {metrics['threshold']:g}. Inference: "
            f"{metrics['inference']['window']}-pixel windows, {metrics['inference']['overlap']} overlap, "
            f"{metrics['inference']['blend']} blending.",
        ),
        Section(
            "Threshold sweep",
            sweep_figure(metrics["sweep"], metrics["threshold"]),
            note="Each metric averaged over the test scenes at each threshold; the marked points are the chosen one.",
        ),
        Section(
            f"Best scene: {ranked[-1]['scene']} (Jaccard {ranked[-1]['jaccard']:.3f})",
            overlay_figure(Path(eval_dir) / PREVIEW_DIR / f"{ranked[-1]['scene']}.npz", ""),
        ),
        Section(
            f"Worst scene: {ranked[0]['scene']} (Jaccard {ranked[0]['jaccard']:.3f})",
            overlay_figure(Path(eval_dir) / PREVIEW_DIR / f"{ranked[0]['scene']}.npz", ""),
        ),
        worst_tiles_section(Path(eval_dir) / PREVIEW_DIR),
        Section(
            "Training curves",
            loss_and_metric_figure(
                read_metrics_csv(Path(train_dir) / METRICS_CSV), "val_jaccard", "validation Jaccard (patches)"
            ),
        ),
    ]
    other = {"held-out validation scenes, patch-level (pooled pixels)": metrics["patch_level_val"]}
    if cross := metrics.get("cross_dataset"):
        other[f"cross-dataset ({Path(cross['dataset']).name}, {cross['dtype']}), training normalisation"] = cross[
            "as_trained"
        ]
        other[f"cross-dataset ({Path(cross['dataset']).name}), normalisation re-fitted to its images"] = cross[
            "renormalized"
        ]
    sections.append(
        Section(
            "Other protocols",
            body=key_value_table(
                {
                    name: ", ".join(f"{m} {v[m]:.4f}" for m in ("jaccard", "precision", "recall", "f1", "accuracy"))
                    for name, v in other.items()
                }
            ),
        )
    )
    sections.append(
        Section(
            "Run",
            body=key_value_table(
                training_run_facts(train, "validation Jaccard", normalisation=train.get("normalization"))
            ),
        )
    )
    headline = {
        "Jaccard (full-scene)": f"{mean['jaccard']:.4f}",
        "precision": f"{mean['precision']:.4f}",
        "recall": f"{mean['recall']:.4f}",
        "F1, mean of scenes": f"{full['f1']['mean_of_scene_f1']:.4f}",
        "F1 of mean P and R": f"{full['f1']['from_mean_precision_and_recall']:.4f}",
        "accuracy": f"{mean['accuracy']:.4f}",
        "test scenes": str(full["scenes"]),
    }
    return render_page(title, headline, sections, config, facts, "38cloud")
