"""Self-contained HTML report pages: plotly.js inlined once, figures, metric cards and tables."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from importlib.resources import files
from string import Template
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.offline import get_plotlyjs

from satpipe.reporting.provenance import RunFacts, facts_html, references_html


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


def png_uri(image: np.ndarray) -> str:
    """An (H, W, 3) uint8 image as a PNG data URI, so the page needs no files beside it."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def gallery(items: list[tuple[list[np.ndarray], str]], width: int = 128) -> str:
    """Captioned tiles in a wrapping grid; each tile shows its images side by side, ``width`` pixels each."""
    tiles = "".join(
        '<figure class="tile"><div class="images">'
        + "".join(f'<img src="{png_uri(image)}" width="{width}" alt="">' for image in images)
        + f"</div><figcaption>{html.escape(caption)}</figcaption></figure>"
        for images, caption in items
    )
    return f'<div class="gallery">{tiles}</div>'


def render_page(
    title: str,
    headline: dict[str, str],
    sections: list[Section],
    config: dict[str, Any],
    facts: RunFacts,
    dataset: str,
) -> str:
    """Assemble a standalone page that renders without network access.

    Args:
        title: Page title.
        headline: Numbers shown as cards at the top.
        sections: Figures and tables in reading order.
        config: The resolved configuration, shown at the bottom.
        facts: Where the data came from, the run, the commit and the wall time, shown under the title.
        dataset: Which dataset's published numbers sit beside the headline (a key of ``REFERENCES``).
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
        facts=facts_html(facts, dataset),
        cards=metric_cards(headline),
        references=references_html(dataset, synthetic=facts.source == "synthetic"),
        sections="\n".join(parts),
        config=html.escape(json.dumps(config, indent=2, sort_keys=True)),
    )
