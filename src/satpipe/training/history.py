"""Training history as Lightning's CSVLogger writes it (``metrics.csv``)."""

from __future__ import annotations

import csv
from pathlib import Path


def read_metrics_csv(path: Path) -> list[dict[str, float]]:
    """Rows of a CSVLogger file with empty cells dropped and values as floats."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def epoch_series(rows: list[dict[str, float]], key: str) -> tuple[list[int], list[float]]:
    """``(epochs, values)`` of a per-epoch metric, epochs counted from 1 as users count them."""
    last: dict[int, float] = {}
    for row in rows:
        if key in row and "epoch" in row:
            last[int(row["epoch"])] = row[key]
    epochs = sorted(last)
    return [e + 1 for e in epochs], [last[e] for e in epochs]


def step_series(rows: list[dict[str, float]], key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of a per-step value such as a learning rate."""
    pairs = sorted({int(row["step"]): row[key] for row in rows if key in row and "step" in row}.items())
    return [s for s, _ in pairs], [v for _, v in pairs]
