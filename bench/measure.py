"""Interleaved, repeated measurements shared by the benchmarks.

A benchmark that measures its baseline once and its candidate once, one after the other, lets a noisy
moment of the machine (another process, a frequency change, the page cache) move the ratio. Here every
round measures each set-up once, in an order that reverses from round to round, and a ratio is taken
within each round; the median and the range over rounds are printed.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence

#: Fewer rounds give no spread worth printing.
MIN_REPEATS = 3


def add_options(parser: argparse.ArgumentParser, repeats: int = MIN_REPEATS) -> None:
    """``--repeats`` (rounds, at least three) and ``--smoke`` (a tiny run that checks the script still works)."""
    help_text = f"rounds of interleaved measurements, >= {MIN_REPEATS} (default {repeats})"
    parser.add_argument("--repeats", type=int, default=repeats, help=help_text)
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny run that only checks the script works (numbers mean nothing)"
    )


def check_repeats(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse fewer than three rounds: a median of fewer says nothing about the noise."""
    if args.repeats < MIN_REPEATS:
        parser.error(f"--repeats must be >= {MIN_REPEATS}, got {args.repeats}")


def interleaved(setups: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call every set-up once per round, ``repeats`` rounds, the order reversed in every other round.

    Args:
        setups: Name -> a measurement (seconds, or a rate) of one run of that set-up, warmed up already.
        repeats: Rounds.

    Returns:
        Name -> one value per round.
    """
    names = list(setups)
    values: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            values[name].append(setups[name]())
    return values


def spread(values: Sequence[float], fmt: str = "{:.3f}", unit: str = "rounds") -> str:
    """``median X (min A, max B, N rounds)``."""
    return (
        f"median {fmt.format(statistics.median(values))} (min {fmt.format(min(values))}, "
        f"max {fmt.format(max(values))}, {len(values)} {unit})"
    )


def ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Round-by-round ratios: each pair was measured side by side."""
    return [n / d for n, d in zip(numerator, denominator, strict=True)]


def ratio_line(label: str, numerator: Sequence[float], denominator: Sequence[float], note: str = "") -> str:
    """``ratio LABEL = median X (min A, max B, N rounds)  NOTE``, the ratio taken within each round."""
    return f"ratio {label} = {spread(ratios(numerator, denominator))}" + (f"  {note}" if note else "")
