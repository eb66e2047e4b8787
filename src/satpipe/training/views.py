"""Weak and strong views of multispectral batches for weak-to-strong consistency (FixMatch, UniMatch).

Weak: random scale, crop and flips; geometric, so applied identically to an image and every mask that
belongs to it. Strong: photometric changes of the (normalised) image only, per sample and per band
(brightness and contrast jitter, Gaussian noise, blur), and CutMix between two unlabelled batches,
whose boxes are then applied to the pseudo-labels as well.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from satpipe.training.augment import random_dihedral


def random_scale_crop(
    image: Tensor, *masks: Tensor, scale: tuple[float, float] = (0.5, 2.0), fills: tuple[int, ...] = ()
) -> tuple[Tensor, ...]:
    """Rescale each sample by ``s ~ U(scale)`` and crop (or pad) it back to its size at a random place.

    Args:
        image: (B, C, H, W), resized bilinearly; padding is 0.
        *masks: (B, H, W) each, resized by nearest neighbour; padding is ``fills[i]`` (0 by default).
        scale: Range of the scale factor.
        fills: Value that padding takes in each mask (e.g. the ignore value for labels).

    Returns:
        The image and masks, same shapes as given, still aligned pixel for pixel.
    """
    b, _, h, w = image.shape
    fills = tuple(fills) + (0,) * (len(masks) - len(fills))
    out_image = torch.zeros_like(image)
    out_masks = [torch.full_like(m, f) for m, f in zip(masks, fills, strict=True)]
    factors = torch.empty(b).uniform_(*scale)
    for i in range(b):
        sh, sw = max(1, round(h * float(factors[i]))), max(1, round(w * float(factors[i])))
        resized = F.interpolate(image[i : i + 1], size=(sh, sw), mode="bilinear", align_corners=False)[0]
        resized_masks = [F.interpolate(m[i : i + 1, None].float(), size=(sh, sw), mode="nearest")[0, 0] for m in masks]
        # A window of the output's size over the resized sample; where it leaves the sample, padding shows.
        top, left = (
            int(torch.randint(min(0, sh - h), max(0, sh - h) + 1, ())),
            int(torch.randint(min(0, sw - w), max(0, sw - w) + 1, ())),
        )
        src_r, dst_r = _overlap(top, h, sh)
        src_c, dst_c = _overlap(left, w, sw)
        out_image[i, :, dst_r, dst_c] = resized[:, src_r, src_c]
        for out, m in zip(out_masks, resized_masks, strict=True):
            out[i, dst_r, dst_c] = m[src_r, src_c].to(out.dtype)
    return (out_image, *out_masks)


def _overlap(start: int, size: int, source: int) -> tuple[slice, slice]:
    """Source and destination slices where a window ``[start, start + size)`` meets ``[0, source)``."""
    lo, hi = max(start, 0), min(start + size, source)
    return slice(lo, hi), slice(lo - start, hi - start)


def weak_view(image: Tensor, *masks: Tensor, fills: tuple[int, ...] = ()) -> tuple[Tensor, ...]:
    """Random scale and crop, then one of the eight flips/rotations; masks follow the image exactly."""
    return random_dihedral(*random_scale_crop(image, *masks, fills=fills))


def photometric(
    image: Tensor,
    brightness: float = 0.3,
    band_spread: float = 0.05,
    contrast: float = 0.2,
    noise: float = 0.03,
    blur_p: float = 0.5,
    blur_sigma: tuple[float, float] = (0.1, 1.5),
) -> Tensor:
    """Per-sample, per-band brightness and contrast jitter, Gaussian noise and (sometimes) blur.

    For normalised images (B, C, H, W) in roughly [0, 1]: band ``c`` of sample ``b`` is scaled by a
    brightness factor ``U(1 - brightness, 1 + brightness)`` (as illumination scales radiance), then its
    contrast about its mean by ``U(1 - contrast, 1 + contrast)``; noise of standard deviation
    ``U(0, noise)`` is added; with probability ``blur_p`` the sample is blurred with a Gaussian of sigma
    ``U(blur_sigma)``. Geometry is untouched.
    """
    b, c = image.shape[:2]
    device = image.device
    gain = torch.empty(b, 1, 1, 1, device=device).uniform_(1 - brightness, 1 + brightness)
    gain = gain * torch.empty(b, c, 1, 1, device=device).uniform_(1 - band_spread, 1 + band_spread)
    out = image * gain
    mean = out.mean(dim=(2, 3), keepdim=True)
    out = (out - mean) * torch.empty(b, c, 1, 1, device=device).uniform_(1 - contrast, 1 + contrast) + mean
    out = out + torch.randn_like(out) * torch.rand(b, 1, 1, 1, device=device) * noise
    sigmas = [float(torch.empty(()).uniform_(*blur_sigma)) for _ in range(b)]
    chosen = (torch.rand(b, device=device) < blur_p).tolist()
    return torch.stack([gaussian_blur(x, sigma) if c else x for x, sigma, c in zip(out, sigmas, chosen, strict=True)])


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Blur (C, H, W) with a separable Gaussian (reflect padding), every band alike."""
    radius = max(1, math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = image.shape[0]
    padded = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)[0]


def cutmix_boxes(
    batch: int,
    height: int,
    width: int,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
) -> Tensor:
    """One box per sample as a boolean mask (B, H, W): area fraction ``U(area)``, aspect ratio ``U(ratio)``.

    The box's sides are clipped to the image, so very elongated boxes may lose a little area.
    """
    boxes = torch.zeros(batch, height, width, dtype=torch.bool)
    for i in range(batch):
        size = float(torch.empty(()).uniform_(*area)) * height * width
        aspect = float(torch.empty(()).uniform_(*ratio))
        h = min(height, max(1, round(math.sqrt(size * aspect))))
        w = min(width, max(1, round(math.sqrt(size / aspect))))
        top, left = int(torch.randint(0, height - h + 1, ())), int(torch.randint(0, width - w + 1, ()))
        boxes[i, top : top + h, left : left + w] = True
    return boxes


def cutmix(box: Tensor, *pairs: tuple[Tensor, Tensor]) -> tuple[Tensor, ...]:
    """Where ``box`` (B, H, W) is set take the second tensor of each pair, elsewhere the first."""
    out = []
    for base, other in pairs:
        where = box.to(base.device).view(box.shape[0], *([1] * (base.ndim - 3)), *box.shape[1:])
        out.append(torch.where(where, other, base))
    return tuple(out)
