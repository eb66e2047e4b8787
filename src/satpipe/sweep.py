"""Hyperparameter sweeps: trials from ``--sweep`` specifications, each a list of ``key=value`` overrides.

A specification names a setting and its values: ``training.lr=1e-4,3e-4,1e-3`` (choices) or, for random
sweeps, a range ``training.lr=log:1e-5:1e-2`` (log-uniform), ``uniform:0:0.5`` or ``int:8:64``
(inclusive). A grid takes every combination of choices; a random sweep draws ``trials`` combinations
with a seed, trial by trial, so asking for more trials keeps the ones already drawn.
"""

from __future__ import annotations

import itertools
import math
import random
import shlex
from dataclasses import dataclass

from satpipe.errors import ConfigError

DISTRIBUTIONS = ("log", "uniform", "int")


@dataclass(frozen=True)
class Axis:
    """One swept setting: its choices, or a distribution ``(kind, low, high)``."""

    key: str
    choices: tuple[str, ...] = ()
    distribution: tuple[str, float, float] | None = None

    def draw(self, rng: random.Random) -> str:
        """One value, as the text a ``--set`` override would carry."""
        if self.distribution is None:
            return rng.choice(self.choices)
        kind, low, high = self.distribution
        if kind == "int":
            return str(rng.randint(int(low), int(high)))
        value = math.exp(rng.uniform(math.log(low), math.log(high))) if kind == "log" else rng.uniform(low, high)
        return f"{value:.3g}"


def parse_axis(spec: str) -> Axis:
    """Parse ``key=v1,v2,...`` or ``key=kind:low:high``.

    Raises:
        ConfigError: If the specification is malformed.
    """
    key, sep, values = spec.partition("=")
    key, values = key.strip(), values.strip()
    if not sep or not key or not values:
        raise ConfigError(f"--sweep expects key=v1,v2,... or key=log:low:high, got {spec!r}")
    kind, _, bounds = values.partition(":")
    if kind in DISTRIBUTIONS:
        low_text, _, high_text = bounds.partition(":")
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise ConfigError(f"--sweep {key}: {kind} range needs numbers as {kind}:low:high, got {values!r}") from None
        if not low < high or (kind == "log" and low <= 0):
            raise ConfigError(f"--sweep {key}: {kind} range needs low < high{' and low > 0' if kind == 'log' else ''}")
        return Axis(key, distribution=(kind, low, high))
    choices = tuple(v.strip() for v in values.split(","))
    if any(not v for v in choices) or len(set(choices)) != len(choices):
        raise ConfigError(f"--sweep {key}: values must be distinct and non-empty, got {values!r}")
    return Axis(key, choices=choices)


def expand(specs: list[str], mode: str = "grid", trials: int = 10, seed: int = 0) -> list[list[str]]:
    """The trials of a sweep, each as ``key=value`` overrides in the order the keys were given.

    Raises:
        ConfigError: For a malformed or repeated key, a range in a grid, or a bad trial count or mode.
    """
    axes = [parse_axis(spec) for spec in specs]
    keys = [axis.key for axis in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--sweep names a setting twice: {', '.join(sorted({k for k in keys if keys.count(k) > 1}))}")
    if mode == "grid":
        if ranged := [axis.key for axis in axes if axis.distribution]:
            raise ConfigError(f"--sweep {ranged[0]}: a range needs --sweep-mode random (a grid takes listed values)")
        return [
            [f"{a.key}={v}" for a, v in zip(axes, values, strict=True)]
            for values in itertools.product(*(a.choices for a in axes))
        ]
    if mode != "random":
        raise ConfigError(f"--sweep-mode must be grid or random, got {mode!r}")
    if trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    rng = random.Random(seed)
    drawn = [[f"{axis.key}={axis.draw(rng)}" for axis in axes] for _ in range(trials)]
    return list({tuple(t): t for t in drawn}.values())  # a repeated draw is one trial, not two


def command(preset: str, base: list[str], overrides: list[str]) -> str:
    """The command line that reruns one trial on its own (a swept setting replaces the same shared one)."""
    swept = {o.split("=", 1)[0] for o in overrides}
    settings = [o for o in base if o.split("=", 1)[0] not in swept] + overrides
    return shlex.join(["uv", "run", "run.py", preset, *(arg for o in settings for arg in ("--set", o))])
