"""Training curves from Lightning's ``metrics.csv`` and facts about the run, shared by every task family's report."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from satpipe.training.history import epoch_series, step_series

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _phase_line(fig: go.Figure, x: float, label: str = "Phase 2", **where: int) -> None:
    fig.add_vline(x=x, line_dash="dash", line_color="#555", annotation_text=label, annotation_position="top", **where)


def loss_and_metric_figure(
    rows: list[dict[str, float]], metric: str, metric_label: str, phase2_epoch: int | None = None
) -> go.Figure:
    """Validation ``metric`` (top) and train/validation loss (bottom) per epoch, with an optional phase line.

    Args:
        rows: Parsed ``metrics.csv``.
        metric: Column of the validation metric, e.g. ``"val_acc"``.
        metric_label: Axis title for it.
        phase2_epoch: First epoch (counted from 1) of phase 2, or None for single-phase training.
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=(metric_label, "Loss"))
    x, y = epoch_series(rows, metric)
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=metric_label, line_color=PALETTE[2]), row=1, col=1)
    for key, name, colour in (
        ("train_loss_epoch", "train loss", PALETTE[0]),
        ("val_loss", "validation loss", PALETTE[1]),
    ):
        x, y = epoch_series(rows, key)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, line_color=colour), row=2, col=1)
    if phase2_epoch is not None:
        for r in (1, 2):
            _phase_line(fig, phase2_epoch - 0.5, row=r, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    fig.update_layout(height=560, margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.12})
    return fig


def learning_rate_figure(rows: list[dict[str, float]], phase2_step: int | None = None) -> go.Figure:
    """Learning rate of every parameter group per optimizer step.

    Groups often share a schedule (a group and its no-decay twin): each line has its own dash pattern and
    is thinner than the ones drawn before it, so a line drawn over another leaves it visible, and the
    legend says which groups repeat which.
    """
    fig = go.Figure()
    keys = sorted({k for row in rows for k in row if k.startswith("lr-")})
    first_with: dict[tuple[tuple[float, ...], tuple[float, ...]], str] = {}
    for i, key in enumerate(keys):
        x, y = step_series(rows, key)
        name = key.split("/", 1)[-1]
        twin = first_with.setdefault((tuple(x), tuple(y)), name)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=name if twin == name else f"{name} (same values as {twin})",
                line={
                    "color": PALETTE[i % len(PALETTE)],
                    "dash": DASHES[i % len(DASHES)],
                    "width": 2 + 1.5 * (len(keys) - 1 - i),
                },
            )
        )
    if phase2_step is not None:
        _phase_line(fig, phase2_step)
    fig.update_layout(height=360, xaxis_title="step", yaxis_title="learning rate", margin={"t": 30, "b": 40})
    return fig


def training_run_facts(train: dict[str, Any], score_label: str, **extra: Any) -> dict[str, Any]:
    """What a reader needs to find and judge the training run, from its manifest."""
    wandb = train.get("wandb") or {}
    return {
        "best checkpoint": train["best_checkpoint"],
        f"best {score_label}": f"{train['best_score']:.4f}",
        "epochs run": train["epochs_run"],
        **extra,
        "precision": train["precision"],
        "device": train["device"],
        "W&B run": wandb.get("url") or wandb.get("dir") or "not logged",
    }
