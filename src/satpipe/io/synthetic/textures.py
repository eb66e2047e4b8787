"""Texture primitives for procedural scenes: fractal noise, oriented coordinates, shapes."""

from __future__ import annotations

import numpy as np


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float = 2.0) -> np.ndarray:
    """Return zero-mean, unit-variance noise whose power spectrum falls as ``1 / f**beta``.

    Larger ``beta`` gives smoother fields: 1 is grainy, 2 is cloud- or terrain-like, 3 is very smooth.
    """
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0  # the mean is removed below; avoid dividing by zero
    spectrum = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** (beta / 2)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=shape)
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


def oriented_coords(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return pixel coordinates ``(u, v)`` rotated by a random angle about the image centre.

    ``u`` runs along the random direction and ``v`` across it, so ``sin(u)`` makes stripes and
    ``abs(v) < w`` makes a straight band at any orientation.
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy -= (h - 1) / 2
    xx -= (w - 1) / 2
    theta = rng.uniform(0, np.pi)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    return u, v


def rectangles(rng: np.random.Generator, shape: tuple[int, int], count: int, size_range: tuple[int, int]) -> np.ndarray:
    """Return a boolean mask of ``count`` axis-aligned rectangles with sides in ``size_range``."""
    mask = np.zeros(shape, dtype=bool)
    h, w = shape
    for _ in range(count):
        rh, rw = rng.integers(size_range[0], size_range[1] + 1, size=2)
        y, x = rng.integers(0, max(1, h - rh + 1)), rng.integers(0, max(1, w - rw + 1))
        mask[y : y + rh, x : x + rw] = True
    return mask


def blend(masks_and_signatures: list[tuple[np.ndarray, np.ndarray]], base: np.ndarray) -> np.ndarray:
    """Paint per-band signatures over a ``(C, H, W)`` base image where each mask (``(H, W)``, bool or weight) is set.

    Later entries paint over earlier ones.
    """
    out = base.copy()
    for mask, signature in masks_and_signatures:
        weight = mask.astype(np.float32)[None]
        out = out * (1 - weight) + signature[:, None, None] * weight
    return out
