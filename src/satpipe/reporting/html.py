"""Self-contained HTML report pages: plotly.js inlined once, figures, metric cards and tables."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from importlib.resources import files
from string import Template
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs


@dataclass(frozen=True)
class Section:
    """A titled part of a report: a figure, or ready HTML."""

    title: str
    figure: go.Figure | None = None
    body: str = ""
    note: str = ""


def metric_cards(values: dict[str, str]) -> str:
    """A row of headline numbers."""
    cards = "".join(
        f'<div class="card"><div class="value">{html.escape(v)}</div><div class="label">{html.escape(k)}</div></div>'
        for k, v in values.items()
    )
    return f'<div class="cards">{cards}</div>'


def key_value_table(values: dict[str, Any]) -> str:
    """A two-column table of facts (paths, settings)."""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in values.items())
    return f'<table class="kv">{rows}</table>'


def render_page(title: str, headline: dict[str, str], sections: list[Section], config: dict[str, Any]) -> str:
    """Assemble a standalone page that renders without network access.

    Args:
        title: Page title.
        headline: Numbers shown as cards at the top.
        sections: Figures and tables in reading order.
        config: The resolved configuration, shown at the bottom.
    """
    parts = []
    for i, section in enumerate(sections):
        content = section.body
        if section.figure is not None:
            fig_html = section.figure.to_html(
                full_html=False,
                include_plotlyjs=False,
                div_id=f"fig-{i}",
                config={"responsive": True, "displaylogo": False},
            )
            content = f'<div class="figure">{fig_html}</div>' + content
        note = f'<p class="note">{html.escape(section.note)}</p>' if section.note else ""
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>{note}{content}</section>")
    template = Template((files("satpipe.reporting") / "templates" / "report.html").read_text())
    return template.substitute(
        title=html.escape(title),
        plotlyjs=get_plotlyjs(),
        cards=metric_cards(headline),
        sections="\n".join(parts),
        config=html.escape(json.dumps(config, indent=2, sort_keys=True)),
    )
