"""CloudMask report: repeat runs over seeds, per-scene accuracy, reference vs blended geometry, example scenes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from satpipe.artifacts import read_manifest
from satpipe.comparison import mean_and_spread
from satpipe.evaluation.segmentation import EVALUATE_STAGE, METRICS_JSON, PREVIEW_DIR
from satpipe.reporting.curves import PALETTE
from satpipe.reporting.html import Section, key_value_table, render_page
from satpipe.reporting.provenance import RunFacts
from satpipe.reporting.segmentation import error_map, image_panels
from satpipe.training.history import epoch_series, read_metrics_csv
from satpipe.training.trainer import METRICS_CSV, TRAIN_STAGE

GEOMETRIES = ("reference", "blended")
NO_DATA_GREY = (128, 128, 128)

#: Columns of the repeat-run table: header, how to get the value from one seed's metrics, format.
RUN_COLUMNS: tuple[tuple[str, Any, str], ...] = (
    ("epochs", lambda m: m["training"]["epochs"], "{:.0f}"),
    ("train accuracy", lambda m: m["training"]["train_accuracy"], "{:.4f}"),
    ("test accuracy", lambda m: m["summary"]["reference"]["accuracy"], "{:.4f}"),
    ("test accuracy, blended", lambda m: m["summary"]["blended"]["accuracy"], "{:.4f}"),
    ("F1", lambda m: m["summary"]["reference"]["f1"], "{:.4f}"),
    ("Jaccard", lambda m: m["summary"]["reference"]["jaccard"], "{:.4f}"),
    ("train time per epoch (s)", lambda m: m["training"]["mean_epoch_time_s"], "{:.2f}"),
    ("inference per scene (s)", lambda m: m["summary"]["reference"]["seconds"], "{:.3f}"),
    ("inference per scene, blended (s)", lambda m: m["summary"]["blended"]["seconds"], "{:.3f}"),
)


def repeat_runs_table(runs: list[dict[str, Any]]) -> tuple[go.Figure, dict[str, tuple[float, float]]]:
    """One row per seed, then the mean and standard deviation over seeds, as the NYU CloudMask study tabulates.

    Returns:
        The table figure and each column's (mean, standard deviation).
    """
    header = ["seed", *(name for name, _, _ in RUN_COLUMNS)]
    values = {
        name: [float(get(m)) if get(m) is not None else float("nan") for m in runs] for name, get, _ in RUN_COLUMNS
    }
    stats = {name: mean_and_spread(v) for name, v in values.items()}
    rows = [
        [str(m["training"]["seed"]), *(fmt.format(values[n][i]) for n, _, fmt in RUN_COLUMNS)]
        for i, m in enumerate(runs)
    ]
    rows.append(["mean", *(fmt.format(stats[n][0]) for n, _, fmt in RUN_COLUMNS)])
    rows.append(["std", *(fmt.format(stats[n][1]) for n, _, fmt in RUN_COLUMNS)])
    fill = [["white"] * len(runs) + ["#eef"] * 2]
    table = go.Figure(
        go.Table(
            header={"values": header, "fill_color": "#dde", "align": "left"},
            cells={"values": [list(col) for col in zip(*rows, strict=True)], "align": "left", "fill_color": fill},
        )
    )
    table.update_layout(height=110 + 28 * len(rows), margin={"t": 10, "b": 10, "l": 10, "r": 10})
    return table, stats


def per_scene_figure(runs: list[dict[str, Any]]) -> go.Figure:
    """Distribution of per-scene accuracy for every seed, both geometries side by side."""
    fig = go.Figure()
    for g, geometry in enumerate(GEOMETRIES):
        x, y, text = [], [], []
        for m in runs:
            for row in m["per_scene"]:
                x.append(f"seed {m['training']['seed']}")
                y.append(row[geometry]["accuracy"])
                text.append(row["file"])
        fig.add_trace(
            go.Box(x=x, y=y, text=text, name=geometry, marker_color=PALETTE[g], boxpoints="all", jitter=0.4,
                   pointpos=0, hovertemplate="%{text}: %{y:.4f}")
        )  # fmt: skip
    fig.update_layout(boxmode="group", height=380, yaxis_title="per-scene accuracy", margin={"t": 20})
    return fig


def geometry_figure(runs: list[dict[str, Any]]) -> go.Figure:
    """Per-scene accuracy with the reference geometry against the blended one; the diagonal is a tie."""
    fig = go.Figure()
    low = 1.0
    for i, m in enumerate(runs):
        ref = [r["reference"]["accuracy"] for r in m["per_scene"]]
        blended = [r["blended"]["accuracy"] for r in m["per_scene"]]
        low = min(low, *ref, *blended)
        fig.add_trace(
            go.Scatter(x=ref, y=blended, mode="markers", name=f"seed {m['training']['seed']}",
                       marker={"color": PALETTE[i % len(PALETTE)], "size": 9},
                       text=[r["file"] for r in m["per_scene"]], hovertemplate="%{text}<br>%{x:.4f} / %{y:.4f}")
        )  # fmt: skip
    edge = [max(0.0, low - 0.01), 1.0]
    fig.add_trace(go.Scatter(x=edge, y=edge, mode="lines", line={"dash": "dash", "color": "#777"}, name="equal"))
    fig.update_layout(
        height=420, xaxis_title="accuracy, reference geometry", yaxis_title="accuracy, blended", margin={"t": 20}
    )
    return fig


def mask_panel(mask: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A binary mask as white on black, with no-data pixels grey."""
    out = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, 2)
    out[~valid] = NO_DATA_GREY
    return out


def scene_figure(preview: Path) -> go.Figure:
    """False colour, Bayesian mask, prediction, and the disagreement with the Bayesian mask of both geometries."""
    data = np.load(preview)
    gt, valid = data["gt"].astype(bool), data["valid"].astype(bool)
    ref, blended = data["pred"].astype(bool), data["blended"].astype(bool)
    ref_errors, blended_errors = error_map(gt, ref), error_map(gt, blended)
    ref_errors[~valid] = blended_errors[~valid] = NO_DATA_GREY
    panels = {
        "false colour (S3, S2, S1)": data["rgb"],
        "Bayesian mask": mask_panel(gt, valid),
        "prediction (reference)": mask_panel(ref, valid),
        "disagreement, reference": ref_errors,
        "disagreement, blended": blended_errors,
    }
    return image_panels(panels, height=260)


def scene_sections(run: dict[str, Any], eval_dir: Path) -> list[Section]:
    """The worst and the best test scene of one seed by reference-geometry accuracy (one if there is one)."""
    ranked = sorted(run["per_scene"], key=lambda r: r["reference"]["accuracy"])
    picks = [("Worst", ranked[0]), ("Best", ranked[-1])] if len(ranked) > 1 else [("Only", ranked[0])]
    return [
        Section(
            f"{which} scene of seed {run['training']['seed']}: {row['file']} "
            f"(accuracy {row['reference']['accuracy']:.4f})",
            scene_figure(eval_dir / PREVIEW_DIR / f"{Path(row['file']).stem}.npz"),
            note="Disagreement with the Bayesian mask: agreement on cloud white, on clear dark, cloud predicted "
            "where the mask is clear orange, clear predicted where it is cloud blue; no data grey.",
        )
        for which, row in picks
    ]


def curves_figure(train_dirs: list[Path], seeds: list[int]) -> go.Figure:
    """Validation accuracy (top) and training/validation loss (bottom) per epoch, a colour per seed."""
    titles = ("validation accuracy (patches)", "loss: training solid, validation dashed")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=titles)
    for i, (train_dir, seed) in enumerate(zip(train_dirs, seeds, strict=True)):
        rows, colour = read_metrics_csv(train_dir / METRICS_CSV), PALETTE[i % len(PALETTE)]
        for key, row, dash, show in (("val_accuracy", 1, "solid", True), ("train_loss_epoch", 2, "solid", False),
                                     ("val_loss", 2, "dash", False)):  # fmt: skip
            x, y = epoch_series(rows, key)
            fig.add_trace(
                go.Scatter(x=x, y=y, mode="lines+markers", name=f"seed {seed}", legendgroup=str(seed),
                           showlegend=show, line={"color": colour, "dash": dash}),
                row=row, col=1,
            )  # fmt: skip
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    fig.update_layout(height=560, margin={"t": 40, "b": 40})
    return fig


def _run_facts(seeds: list[int], trains: list[dict[str, Any]]) -> dict[str, str]:
    facts = {}
    for seed, train in zip(seeds, trains, strict=True):
        facts[f"seed {seed}"] = f"{train['best_checkpoint']} ({train['device']}, {train['precision']})"
        wandb = train.get("wandb") or {}
        facts[f"W&B, seed {seed}"] = wandb.get("url") or wandb.get("dir") or "not logged"
    return facts


def cloudmask_report(
    train_dirs: list[Path], eval_dirs: list[Path], config: dict[str, Any], title: str, facts: RunFacts
) -> str:
    """Build the report page of a CloudMask run (one or more seeds) from its training and evaluation outputs."""
    train_dirs, eval_dirs = [Path(p) for p in train_dirs], [Path(p) for p in eval_dirs]
    trains = [read_manifest(p, TRAIN_STAGE) for p in train_dirs]
    for p in eval_dirs:
        read_manifest(p, EVALUATE_STAGE)
    runs = [json.loads((p / METRICS_JSON).read_text()) for p in eval_dirs]
    seeds = [m["training"]["seed"] for m in runs]
    table, stats = repeat_runs_table(runs)
    first = runs[0]
    time_ratio = stats["inference per scene, blended (s)"][0] / stats["inference per scene (s)"][0]
    sections = [
        Section(
            "Repeat runs",
            table,
            note=f"{first['protocol']}. Training time counts the training batches of each epoch; inference time is "
            "the model's pass over one scene (file reading excluded). Train accuracy is that of the evaluated "
            "(best) epoch.",
        ),
        Section("Per-scene accuracy", per_scene_figure(runs), note="Every test scene of every seed; boxes per seed."),
        Section(
            "Reference vs blended geometry",
            geometry_figure(runs),
            note=f"Reference: {first['geometries']['reference']}. Blended: {first['geometries']['blended']}. "
            f"Blended inference takes {time_ratio:.2f}x the reference's time.",
        ),
        *scene_sections(first, eval_dirs[0]),
        Section("Training curves", curves_figure(train_dirs, seeds)),
        Section("Runs", body=key_value_table(_run_facts(seeds, trains))),
    ]

    def spread(name: str) -> str:
        mean, std = stats[name]
        return f"{mean:.4f}" if len(runs) == 1 else f"{mean:.4f} ± {std:.4f}"

    headline = {
        "test accuracy (reference geometry)": spread("test accuracy"),
        "test accuracy (blended)": spread("test accuracy, blended"),
        "F1": spread("F1"),
        "Jaccard": spread("Jaccard"),
        "seeds": str(len(runs)),
        "test scenes": str(len(first["per_scene"])),
    }
    return render_page(title, headline, sections, config, facts, "cloudmask")
