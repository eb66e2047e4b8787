"""Comparing two arms of an experiment over seeds: mean, spread and whether a gain exceeds the spread."""

from __future__ import annotations

import statistics


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    """Mean and standard deviation over seeds (0 for a single seed)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def gain_over(baseline: list[float], candidate: list[float]) -> dict[str, float | bool]:
    """The candidate's mean gain over the baseline, the larger of their spreads, and whether the gain exceeds it."""
    (base, base_spread), (cand, cand_spread) = mean_and_spread(baseline), mean_and_spread(candidate)
    spread = max(base_spread, cand_spread)
    return {"gain": cand - base, "spread": spread, "beats_spread": cand - base > spread}
