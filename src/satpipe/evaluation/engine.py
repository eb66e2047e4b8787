"""Full-scene inference from overlapping windows, blended, batched and streamed strip by strip.

The scene is read one strip of window rows at a time; the K class probabilities of each window accumulate
as ``sum(w * p)`` and ``sum(w)`` in a buffer one window tall, and rows that no later window touches are finished and
handed to a sink. Memory therefore depends on the scene's width, the window and K, not its height.
Windows whose pixels are all nodata are not run. The last window on each axis is shifted inward so
that every pixel is covered without padding, and scenes smaller than a window are zero-padded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from rich.progress import Progress
from torch import Tensor

from satpipe.evaluation.blending import BLEND_MODES, axis_weights, window_starts
from satpipe.io.rasters import Source

Predictor = Callable[[Tensor], Tensor]  # (B, C, h, w) raw values -> (B, K, h, w) class probabilities


class Sink(Protocol):
    """Receives finished rows of the K probability maps (NaN where there is no data)."""

    def write(self, row: int, prob: np.ndarray) -> None:
        """Store ``prob`` (K, rows, width) starting at ``row``."""
        ...


class ArraySink:
    """Collects the whole (K, H, W) probability maps in memory."""

    def __init__(self, channels: int, height: int, width: int) -> None:
        self.prob = np.full((channels, height, width), np.nan, dtype=np.float32)

    def write(self, row: int, prob: np.ndarray) -> None:
        self.prob[:, row : row + prob.shape[1]] = prob


@dataclass(frozen=True)
class EngineStats:
    """What a scene cost."""

    windows_run: int
    windows_skipped: int


def predict_scene(
    source: Source,
    predict: Predictor,
    sink: Sink,
    *,
    channels: int,
    window: int,
    overlap: int,
    blend: str = "cosine",
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> EngineStats:
    """Predict a whole scene and stream the blended probabilities to ``sink``.

    Args:
        source: The scene (bands, height, width), read window strip by window strip.
        predict: Maps a batch of raw windows on ``device`` to per-pixel class probabilities (B, K, h, w).
        sink: Receives finished rows (K, rows, width), top to bottom, NaN where there is no data.
        channels: K, the probabilities ``predict`` returns per pixel.
        window: Window side in pixels.
        overlap: Pixels shared by neighbouring windows (the stride is ``window - overlap``).
        blend: One of :data:`BLEND_MODES`.
        batch_size: Windows per model call.
        device: Where the model runs and the accumulators live.
        progress: Show a progress bar.

    Returns:
        How many windows were run and how many were skipped as nodata.
    """
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window), got overlap={overlap}, window={window}")
    if blend not in BLEND_MODES:
        raise ValueError(f"blend must be one of {', '.join(BLEND_MODES)}, got {blend!r}")
    device = torch.device(device)
    height, width = source.height, source.width
    padded_h, padded_w = max(height, window), max(width, window)
    ys = window_starts(padded_h, window, window - overlap)
    xs = window_starts(padded_w, window, window - overlap)
    # Sums in float64: hundreds of overlapping contributions would otherwise drift by float32 rounding.
    acc = torch.float64
    tiles: dict[tuple[bool, ...], Tensor] = {}

    def weight_tile(y0: int, x0: int) -> Tensor:
        # A window's weights depend only on which scene borders it touches: at most nine distinct tiles.
        key = (y0 == 0, y0 + window >= padded_h, x0 == 0, x0 + window >= padded_w)
        if key not in tiles:
            wy = axis_weights(padded_h, y0, window, overlap, blend)
            wx = axis_weights(padded_w, x0, window, overlap, blend)
            tiles[key] = torch.from_numpy(np.outer(wy, wx)).to(device, acc)
        return tiles[key]

    def read_strip(y0: int) -> tuple[Tensor, np.ndarray]:
        rows = min(window, height - y0)
        data = source.read(y0, 0, rows, width)  # (C, rows, width)
        strip = np.zeros((data.shape[0], window, padded_w), dtype=np.float32)  # zero = nodata padding
        strip[:, :rows, :width] = data
        valid = np.zeros((window, padded_w), dtype=bool)
        valid[:rows, :width] = source.valid(data)
        return torch.from_numpy(strip).to(device, non_blocking=True), valid

    num = torch.zeros((channels, window, padded_w), device=device, dtype=acc)
    den = torch.zeros((window, padded_w), device=device, dtype=acc)
    buffer_row, valid_rows = 0, np.zeros((window, padded_w), dtype=bool)
    run = skipped = 0

    def finish(rows: int) -> None:
        nonlocal num, den
        prob = (num[:, :rows] / den[:rows].clamp_min(1e-30)).float().cpu().numpy()
        prob[:, (den[:rows] == 0).cpu().numpy() | ~valid_rows[:rows]] = np.nan
        keep = min(rows, height - buffer_row)
        if keep > 0:
            sink.write(buffer_row, prob[:, :keep, :width])
        zeros = torch.zeros((rows, padded_w), device=device, dtype=acc)
        num = torch.cat([num[:, rows:], zeros.expand(channels, -1, -1)], dim=1)
        den = torch.cat([den[rows:], zeros])

    with ThreadPoolExecutor(max_workers=1) as reader, Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("predicting windows", total=len(ys) * len(xs))
        pending = reader.submit(read_strip, ys[0])
        for i, y0 in enumerate(ys):
            strip, valid = pending.result()
            if i + 1 < len(ys):  # read the next strip while this one is on the model
                pending = reader.submit(read_strip, ys[i + 1])
            if y0 > buffer_row:
                finish(y0 - buffer_row)
                buffer_row = y0
            valid_rows = valid
            todo = [x for x in xs if valid[:, x : x + window].any()]
            skipped += len(xs) - len(todo)
            for b in range(0, len(todo), batch_size):
                batch_x = todo[b : b + batch_size]
                probs = predict(torch.stack([strip[:, :, x : x + window] for x in batch_x]))  # (B, K, window, window)
                if probs.shape[1] != channels:
                    raise ValueError(f"the predictor returned {probs.shape[1]} channels, expected {channels}")
                for x, p in zip(batch_x, probs, strict=True):
                    w = weight_tile(y0, x)
                    num[:, :, x : x + window].addcmul_(w, p.to(acc))
                    den[:, x : x + window].add_(w)
                run += len(batch_x)
            bar.advance(task, len(xs))
        finish(padded_h - buffer_row)
    return EngineStats(windows_run=run, windows_skipped=skipped)


def windows_in(height: int, width: int, window: int, overlap: int) -> int:
    """How many windows a scene of this size takes."""
    per_axis = [len(window_starts(max(s, window), window, window - overlap)) for s in (height, width)]
    return math.prod(per_axis)
