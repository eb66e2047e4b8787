"""Where overlapping windows start and how their predictions are weighted where they overlap.

Kept free of torch, so that a command line can offer the blending modes before it imports a model stack.
"""

from __future__ import annotations

import numpy as np

BLEND_MODES = ("cosine", "gaussian", "center", "none")


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Window starts along one axis: every ``stride`` pixels, the last shifted inward to end at ``size``."""
    if size <= window:
        return [0]
    return [*range(0, size - window, stride), size - window]


def axis_weights(size: int, start: int, window: int, overlap: int, mode: str) -> np.ndarray:
    """Blending weight along one axis of the window at ``start`` (``(window,)``, all > 0 where used).

    ``cosine`` ramps as sin² over the ``overlap`` pixels on each side that meets another window, so
    two overlapping ramps sum to one; ``gaussian`` is a Gaussian with sigma = window/8; ``center``
    keeps the central ``window - overlap`` pixels (plus the margins on the scene's border), as the
    MLCommons CloudMask reference does; ``none`` weighs every pixel equally (plain averaging).
    """
    weights = np.ones(window, dtype=np.float32)
    first, last = start == 0, start + window >= size
    if mode == "none" or (overlap == 0 and mode != "gaussian"):
        return weights
    if mode == "gaussian":
        i = np.arange(window) - (window - 1) / 2
        return np.exp(-(i**2) / (2 * (window / 8) ** 2)).astype(np.float32)
    if mode == "cosine":
        ramp = np.sin(np.pi / 2 * (np.arange(overlap) + 0.5) / overlap) ** 2
        if not first:
            weights[:overlap] = ramp
        if not last:
            weights[window - overlap :] = ramp[::-1]
        return weights
    if mode == "center":
        lead, trail = overlap // 2, overlap - overlap // 2
        if not first:
            weights[:lead] = 0
        if not last:
            weights[window - trail :] = 0
        return weights
    raise ValueError(f"blend must be one of {', '.join(BLEND_MODES)}, got {mode!r}")
