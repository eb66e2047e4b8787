"""Batch augmentations on the device: dihedral flips/rotations and Sat-SlideMix."""

from __future__ import annotations

import torch
from torch import Tensor


def random_dihedral(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Apply one random flip/rotate (of the 8 symmetries of the square) per sample, the same to every tensor.

    Tensors share the batch size and end in (H, W): an image (B, C, H, W) and its mask (B, H, W) stay aligned.
    """
    first = tensors[0]
    flip_w, flip_h, swap = (torch.rand(3, first.shape[0], device=first.device) < 0.5).unbind(0)
    square = first.shape[-1] == first.shape[-2]
    out = []
    for t in tensors:
        shape = (-1,) + (1,) * (t.ndim - 1)
        t = torch.where(flip_w.view(shape), t.flip(-1), t)
        t = torch.where(flip_h.view(shape), t.flip(-2), t)
        if square:  # a transpose composes with the flips into the 90-degree rotations
            t = torch.where(swap.view(shape), t.transpose(-1, -2), t)
        out.append(t)
    return tuple(out)


def sat_slidemix(
    image: Tensor, mask: Tensor, gamma: int, beta: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Sat-SlideMix (Hopkins et al. 2025): expand the batch ``gamma`` times by circular shifts.

    Each image of each copy is rolled by ``round(m * size)`` pixels, ``m ~ U(0, beta)``, along a random
    axis (H or W) in a random direction; its mask is rolled identically.

    Args:
        image: (B, C, H, W).
        mask: (B, H, W).
        gamma: Copies of the batch in the output.
        beta: Upper bound of the shift as a fraction of the image side.
        generator: Random source, for reproducible tests.

    Returns:
        ``image`` (gamma * B, C, H, W) and ``mask`` (gamma * B, H, W).
    """
    images, masks = image.repeat(gamma, 1, 1, 1), mask.repeat(gamma, 1, 1)
    n = images.shape[0]
    m = torch.rand(n, generator=generator) * beta
    axes = torch.randint(0, 2, (n,), generator=generator)
    signs = torch.randint(0, 2, (n,), generator=generator) * 2 - 1
    rolled_images, rolled_masks = [], []
    for i in range(n):
        dim = -2 + int(axes[i])  # -2: rows (H), -1: columns (W)
        shift = int(signs[i]) * round(float(m[i]) * images.shape[dim])
        rolled_images.append(torch.roll(images[i], shift, dims=dim))
        rolled_masks.append(torch.roll(masks[i], shift, dims=dim))
    return torch.stack(rolled_images), torch.stack(rolled_masks)
