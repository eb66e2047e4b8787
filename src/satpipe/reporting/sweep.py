"""Sweep report: a sortable table of trials, the objective against the settings, every trial's curves, the winner.

The objective is the first headline metric of the evaluation (test accuracy for classification,
full-scene Jaccard for 38-Cloud, per-scene accuracy for CloudMask); larger is better.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from satpipe.artifacts import read_manifest
from satpipe.evaluation.segmentation import EVALUATE_STAGE
from satpipe.reporting.curves import PALETTE, loss_and_metric_figure
from satpipe.reporting.html import Section, render_page
from satpipe.reporting.provenance import RunFacts
from satpipe.sweep import command
from satpipe.training.history import epoch_series, read_metrics_csv
from satpipe.training.trainer import METRICS_CSV, TRAIN_STAGE


@dataclass(frozen=True)
class Trial:
    """A trial's overrides, status and, when it finished, its training and evaluation folders."""

    overrides: list[str]
    status: str
    error: str = ""
    train_dir: Path | None = None
    eval_dir: Path | None = None

    @property
    def params(self) -> dict[str, str]:
        """The swept settings and their values."""
        return dict(o.split("=", 1) for o in self.overrides)

    @cached_property
    def metrics(self) -> dict[str, float]:
        """The evaluation's headline metrics in order (empty for a failed trial)."""
        return {} if self.eval_dir is None else dict(read_manifest(self.eval_dir, EVALUATE_STAGE)["headline"])

    @cached_property
    def training(self) -> dict[str, Any]:
        """The training manifest (empty for a failed trial)."""
        return {} if self.train_dir is None else read_manifest(self.train_dir, TRAIN_STAGE)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def trial_table(trials: list[Trial], objective: str) -> str:
    """An HTML table of every trial, best first; clicking a header sorts by that column."""
    keys = list(trials[0].params)
    metric_names = next((list(t.metrics) for t in trials if t.status == "ok"), [])
    header = ["trial", *keys, *metric_names, "epochs", "train time (s)", "status"]
    rows = []
    for index, trial in sorted(enumerate(trials, 1), key=lambda it: -it[1].metrics.get(objective, -math.inf)):
        metrics, train = trial.metrics, trial.training
        cells = [
            str(index),
            *trial.params.values(),
            *(f"{metrics[m]:.4f}" if m in metrics else "" for m in metric_names),
        ]
        cells += [str(train.get("epochs_run", "")), f"{train['fit_seconds']:.1f}" if "fit_seconds" in train else ""]
        cells.append("ok" if trial.status == "ok" else f"failed: {trial.error}")
        rows.append(cells)
    head = "".join(f'<th onclick="sortTable(this)">{html.escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td data-value="{html.escape(c)}">{html.escape(c)}</td>' for c in row) + "</tr>"
        for row in rows
    )
    return f'<table class="kv sweep"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{SORT_SCRIPT}'


#: Sorts a table by the clicked column: numbers numerically, the rest as text; a second click reverses.
SORT_SCRIPT = """<script>
function sortTable(th) {
  const table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
  const down = th.dataset.dir !== "down"; th.dataset.dir = down ? "down" : "up";
  const key = r => { const v = r.cells[col].dataset.value, n = parseFloat(v); return isNaN(n) ? v : n; };
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b);
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return down ? -order : order;
  });
  rows.forEach(r => body.appendChild(r));
}
</script>"""


def _dimension(label: str, values: list[str]) -> dict[str, Any]:
    numbers = [_number(v) for v in values]
    if all(n is not None for n in numbers):
        return {"label": label, "values": numbers}
    levels = sorted(set(values))
    return {"label": label, "values": [levels.index(v) for v in values], "tickvals": list(range(len(levels))),
            "ticktext": levels}  # fmt: skip


def parallel_coordinates(trials: list[Trial], objective: str) -> go.Figure:
    """Every finished trial as a line through its settings and the objective, coloured by the objective."""
    done = [t for t in trials if t.status == "ok"]
    scores = [t.metrics[objective] for t in done]
    dimensions = [_dimension(key, [t.params[key] for t in done]) for key in done[0].params]
    dimensions.append({"label": objective, "values": scores})
    fig = go.Figure(
        go.Parcoords(line={"color": scores, "colorscale": "Viridis", "showscale": True}, dimensions=dimensions)
    )
    fig.update_layout(height=420, margin={"t": 60, "l": 60, "r": 60})
    return fig


def objective_by_setting(trials: list[Trial], objective: str) -> go.Figure:
    """The objective of every finished trial against each swept setting (log axis for ranges over decades).

    With one swept setting each value has its own trial: numbers make a line in the order of the value,
    with a tick at each value tried, and names a bar chart.
    """
    done = [t for t in trials if t.status == "ok"]
    keys = list(done[0].params)
    one = len(keys) == 1
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=None if one else keys, shared_yaxes=True)
    for i, key in enumerate(keys, start=1):
        texts = [t.params[key] for t in done]
        numbers = [_number(v) for v in texts]
        numeric = all(n is not None for n in numbers)
        scores = [t.metrics[objective] for t in done]
        points = list(zip(numbers if numeric else texts, scores, texts, strict=True))
        if one:  # a line joins the values in their order
            points.sort(key=lambda p: p[0])
        x, y, labels = ([p[k] for p in points] for k in range(3))
        colour = PALETTE[(i - 1) % len(PALETTE)]
        if one and not numeric:
            trace: go.BaseTraceType = go.Bar(
                x=x, y=y, name=key, marker_color=colour, text=[f"{v:.4f}" for v in y], textposition="outside"
            )
        else:
            trace = go.Scatter(
                x=x, y=y, mode="lines+markers" if one else "markers", name=key, marker={"size": 10, "color": colour}
            )
        fig.add_trace(trace, row=1, col=i)
        if numeric and all(n > 0 for n in numbers) and max(numbers) / min(numbers) >= 100:  # type: ignore[operator, type-var]
            fig.update_xaxes(type="log", row=1, col=i)
        if one:
            fig.update_xaxes(title_text=key, tickvals=x, ticktext=labels)
    fig.update_yaxes(title_text=objective, row=1, col=1)
    fig.update_layout(height=380, margin={"t": 40}, showlegend=False)
    return fig


def trial_curves(trials: list[Trial]) -> go.Figure:
    """The validation metric (top) and validation loss (bottom) per epoch of every finished trial, overlaid."""
    done = [(i, t) for i, t in enumerate(trials, start=1) if t.status == "ok"]
    monitor = done[0][1].training["monitor"]
    titles = (f"validation {monitor.removeprefix('val_')}", "validation loss")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=titles)
    for n, (index, trial) in enumerate(done):
        rows, colour = read_metrics_csv(trial.train_dir / METRICS_CSV), PALETTE[n % len(PALETTE)]  # type: ignore[operator]
        name = f"trial {index}: {', '.join(trial.overrides)}"
        for row, key in ((1, monitor), (2, "val_loss")):
            x, y = epoch_series(rows, key)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, legendgroup=str(index),
                                     showlegend=row == 1, line={"color": colour}), row=row, col=1)  # fmt: skip
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    fig.update_layout(height=600, margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.12})
    return fig


def sweep_report(
    trials: list[Trial],
    preset: str,
    base: list[str],
    title: str,
    config: dict[str, Any],
    facts: RunFacts,
    dataset: str,
) -> str:
    """Build the sweep's report page; the objective is the first headline metric of the evaluations.

    Args:
        trials: Every trial, finished or failed, in the sweep's order.
        preset: The swept preset.
        base: Overrides shared by every trial.
        title: Page title.
        config: What the sweep ran, shown at the bottom.
        facts: Data, run, commit and wall time for the top of the page.
        dataset: Whose published numbers sit beside the headline (a key of ``REFERENCES``).
    """
    done = [t for t in trials if t.status == "ok"]
    sections = []
    headline = {"trials": str(len(trials)), "finished": str(len(done)), "failed": str(len(trials) - len(done))}
    if done:
        objective = next(iter(done[0].metrics))
        best = max(done, key=lambda t: t.metrics[objective])
        train = best.training
        keys = list(done[0].params)
        headline |= {f"best {objective}": f"{best.metrics[objective]:.4f}", "best trial": f"{trials.index(best) + 1}"}
        note = "Best first; click a header to sort."
        sections.append(Section("Trials", body=trial_table(trials, objective), note=note))
        if len(keys) > 1:  # one axis would be a column of points: the chart below says it better
            sections.append(Section("Parallel coordinates", parallel_coordinates(trials, objective)))
        sections += [
            Section(f"{objective} against {keys[0] if len(keys) == 1 else 'each setting'}",
                    objective_by_setting(trials, objective)),
            Section("Training curves of every trial", trial_curves(trials),
                    note="Per epoch on the validation split; the evaluation scores each trial's best epoch."),
            Section(
                f"Best trial: {', '.join(best.overrides)}",
                loss_and_metric_figure(read_metrics_csv(best.train_dir / METRICS_CSV), train["monitor"],  # type: ignore[operator]
                                       f"validation {train['monitor'].removeprefix('val_')}"),
                body=f"<p>Reproduce it: <code>{html.escape(command(preset, base, best.overrides))}</code></p>",
            ),
        ]  # fmt: skip
    else:
        sections.append(Section("Trials", body=trial_table(trials, ""), note="No trial finished."))
    return render_page(title, headline, sections, config, facts, dataset)
