"""Semi-supervised experiment report: both arms' held-out Jaccard over seeds, gain by labelled fraction, curves.

Every number is the 38-Cloud full-scene Jaccard on the held-out test scenes, averaged over scenes; the
spread is the standard deviation over seeds. The semi-supervised arm counts as better only when its
mean gain exceeds the larger of the two arms' spreads. A share of 1 (every label, supervised only) is the
reference for what the hidden labels are worth.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from satpipe.artifacts import read_manifest
from satpipe.comparison import gain_over, mean_and_spread
from satpipe.evaluation.segmentation import EVALUATE_STAGE
from satpipe.reporting.curves import PALETTE
from satpipe.reporting.html import Section, key_value_table, render_page
from satpipe.reporting.provenance import RunFacts
from satpipe.training.history import epoch_series, read_metrics_csv
from satpipe.training.trainer import METRICS_CSV, TRAIN_STAGE

TRAINING_CURVES = [("val_jaccard", "validation Jaccard (patches)"), ("train_sup_loss", "supervised loss")]
PSEUDO_LABEL_CURVES = [
    ("confident_ratio_epoch", "share of pixels with confident pseudo-labels"),
    ("pseudo_accuracy_epoch", "accuracy of confident pseudo-labels (against the hidden labels)"),
    ("pseudo_accuracy_all", "accuracy of all pseudo-labels (against the hidden labels)"),
]


def share(fraction: float) -> str:
    """A labelled share as people write it: 0.0625 -> "1/16"."""
    return str(Fraction(fraction).limit_denominator(1000))


def labelled_share(fraction: float) -> str:
    """How a table row names a share: "1/16 labelled", or "every label" for the supervised reference."""
    return "every label" if fraction == 1 else f"{share(fraction)} labelled"


def branches(train_dirs: list[Path], eval_dirs: list[Path]) -> list[dict[str, Any]]:
    """One record per trained arm: fraction, method, seed, patch counts, full-scene metrics and its folder."""
    out = []
    for train_dir, eval_dir in zip(train_dirs, eval_dirs, strict=True):
        train = read_manifest(Path(train_dir), TRAIN_STAGE)
        scores = dict(read_manifest(Path(eval_dir), EVALUATE_STAGE)["headline"])  # the full-scene means
        out.append({
            "fraction": train["fraction"], "method": train["method"], "seed": train["seed"],
            "labelled": train["labelled_patches"], "unlabelled": train["unlabelled_patches"],
            "jaccard": scores["Jaccard"], "precision": scores["precision"], "recall": scores["recall"],
            "train_dir": Path(train_dir),
        })  # fmt: skip
    return out


def summarize(records: list[dict[str, Any]]) -> dict[tuple[float, str], dict[str, Any]]:
    """Per (fraction, method): Jaccard of each seed, their mean and standard deviation."""
    groups: dict[tuple[float, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["fraction"], r["method"])].append(r)
    summary = {}
    for key, rows in groups.items():
        values = [r["jaccard"] for r in sorted(rows, key=lambda r: r["seed"])]
        mean, spread = mean_and_spread(values)
        summary[key] = {"values": values, "mean": mean, "std": spread, "labelled": rows[0]["labelled"]}
    return summary


def verdicts(summary: dict[tuple[float, str], dict[str, Any]]) -> dict[float, dict[str, Any]]:
    """Per fraction: the semi-supervised method, its gain over supervised-only, and whether it beats the spread."""
    return {
        fraction: {"method": method, **gain_over(summary[(fraction, "supervised")]["values"], s["values"])}
        for (fraction, method), s in summary.items()
        if method != "supervised" and (fraction, "supervised") in summary
    }


def arms_figure(records: list[dict[str, Any]]) -> go.Figure:
    """Each seed's held-out Jaccard by arm, one group per labelled fraction."""
    fig = go.Figure()
    for i, method in enumerate(sorted({r["method"] for r in records}, key=lambda m: m != "supervised")):
        rows = [r for r in records if r["method"] == method]
        fig.add_trace(go.Box(x=[share(r["fraction"]) for r in rows], y=[r["jaccard"] for r in rows], name=method,
                             boxpoints="all", pointpos=0, marker_color=PALETTE[i],
                             text=[f"seed {r['seed']}" for r in rows]))  # fmt: skip
    fig.update_layout(boxmode="group", height=380, xaxis_title="labelled share", yaxis_title="full-scene Jaccard",
                      margin={"t": 20})  # fmt: skip
    return fig


def gain_figure(summary: dict[tuple[float, str], dict[str, Any]]) -> go.Figure:
    """Mean held-out Jaccard (with the seed spread) of each arm against the labelled share."""
    fig = go.Figure()
    for i, method in enumerate(sorted({m for _, m in summary}, key=lambda m: m != "supervised")):
        keys = sorted(k for k in summary if k[1] == method)
        fig.add_trace(go.Scatter(x=[k[0] for k in keys], y=[summary[k]["mean"] for k in keys], name=method,
                                 error_y={"type": "data", "array": [summary[k]["std"] for k in keys]},
                                 mode="lines+markers", line_color=PALETTE[i]))  # fmt: skip
    fig.update_xaxes(type="log", title_text="labelled share of the training patches")
    fig.update_layout(height=380, yaxis_title="full-scene Jaccard", margin={"t": 20})
    return fig


def curves_figure(records: list[dict[str, Any]], rows: list[tuple[str, str]]) -> go.Figure:
    """Per-epoch values of ``rows`` (metric key, title), a line per branch: colour by arm, dash by seed."""
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, subplot_titles=[t for _, t in rows],
                        vertical_spacing=0.1)  # fmt: skip
    methods = sorted({r["method"] for r in records}, key=lambda m: m != "supervised")
    dashes = ("solid", "dash", "dot", "dashdot", "longdash")
    for r in records:
        history = read_metrics_csv(r["train_dir"] / METRICS_CSV)
        for row, (key, _) in enumerate(rows, start=1):
            x, y = epoch_series(history, key)
            if y:
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", showlegend=row == 1,
                                         name=f"{r['method']} {share(r['fraction'])} seed {r['seed']}",
                                         line={"color": PALETTE[methods.index(r["method"])],
                                               "dash": dashes[r["seed"] % len(dashes)]}), row=row, col=1)  # fmt: skip
    fig.update_xaxes(title_text="epoch", row=len(rows), col=1)
    fig.update_layout(height=280 * len(rows) + 80, margin={"t": 40})
    return fig


def semi_report(
    train_dirs: list[Path], eval_dirs: list[Path], config: dict[str, Any], title: str, facts: RunFacts
) -> str:
    """Build the report page of a semi-supervised experiment from every arm's training and evaluation."""
    records = branches(train_dirs, eval_dirs)
    summary = summarize(records)
    results = verdicts(summary)
    table = {}
    for (fraction, method), s in sorted(summary.items(), key=lambda kv: (kv[0][0], kv[0][1] != "supervised")):
        values = ", ".join(f"{v:.4f}" for v in s["values"])
        table[f"{labelled_share(fraction)} ({s['labelled']} patches), {method}"] = (
            f"{s['mean']:.4f} ± {s['std']:.4f}   (seeds: {values})"
        )
    for fraction, v in sorted(results.items()):
        verdict = "beats" if v["beats_spread"] else "does not beat"
        table[f"{labelled_share(fraction)}: gain of {v['method']}"] = (
            f"{v['gain']:+.4f}, which {verdict} the seed spread ({v['spread']:.4f})"
        )
    note = (
        "38-Cloud full-scene protocol on the held-out test scenes; mean ± standard deviation over seeds. "
        "Both arms of a share train on the same labelled patches, and every arm for the same number of steps; "
        "supervised-only on every label, where run, is the reference for what the hidden labels are worth."
    )
    sections = [Section("Held-out Jaccard per arm", arms_figure(records), body=key_value_table(table), note=note)]
    if len({f for f, _ in summary}) > 1:
        sections.append(Section("Gain against the labelled share", gain_figure(summary)))
    sections.append(Section("Training curves", curves_figure(records, TRAINING_CURVES)))
    if semi_records := [r for r in records if r["method"] != "supervised"]:
        note = "Labels of the unlabelled pool were hidden from training and used only for these curves."
        sections.append(Section("Pseudo-labels over time", curves_figure(semi_records, PSEUDO_LABEL_CURVES), note=note))
    first = min(results) if results else None
    headline = {}
    for (fraction, method), s in sorted(summary.items()):
        if fraction == (first if first is not None else fraction):
            headline[f"{method} ({share(fraction)})"] = f"{s['mean']:.4f} ± {s['std']:.4f}"
    if first is not None:
        headline["gain"] = f"{results[first]['gain']:+.4f}"
        headline["beats the seed spread"] = "yes" if results[first]["beats_spread"] else "no"
    if (every := summary.get((1.0, "supervised"))) and first != 1.0:
        headline["supervised on every label"] = f"{every['mean']:.4f} ± {every['std']:.4f}"
    return render_page(title, headline, sections, config, facts, "semi")
