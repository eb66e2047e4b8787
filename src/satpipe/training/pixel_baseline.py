"""The per-pixel baseline: a classifier that sees one pixel's band values and nothing around it.

It shows how much of a segmentation task spatial context carries: printed beside a network's score, the
gap is what no per-pixel rule can reach. The classifier is a small multilayer perceptron applied to every
pixel alike (a stack of 1x1 convolutions), so it takes raw windows ``(B, C, H, W)`` like any segmenter (the
full-scene engine runs it unchanged) and returns per-class probabilities ``(B, K, H, W)``; band
normalisation is inside, and its weights save and load as plain tensors.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satpipe.data.patches import IGNORE


class PixelClassifier(nn.Module):
    """Per-pixel MLP over normalised band values (``(x - low) / (high - low)``, clipped to [0, 1])."""

    def __init__(self, low: list[float], high: list[float], num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.register_buffer("low", torch.tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.tensor(high, dtype=torch.float32))
        self.net = nn.Sequential(
            nn.Linear(len(low), hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def logits(self, values: Tensor) -> Tensor:
        """Raw band values ``(..., C)`` -> class logits ``(..., K)``."""
        scale = (self.high - self.low).clamp_min(1e-6)
        return self.net(((values.float() - self.low) / scale).clamp(0, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Raw windows ``(B, C, H, W)`` -> class probabilities ``(B, K, H, W)``."""
        return self.logits(x.permute(0, 2, 3, 1)).softmax(dim=-1).permute(0, 3, 1, 2)


def sample_pixels(
    images: np.ndarray, masks: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw up to ``count`` labelled pixels uniformly from patches.

    Args:
        images: Raw values ``(N, C, H, W)`` (a memory map is fine: only drawn pixels are read).
        masks: Class ids ``(N, H, W)``, :data:`IGNORE` where unlabelled.
        count: Pixels to draw.
        rng: Where the draw comes from.

    Returns:
        Band values ``(n, C)`` (float32) and their class ids ``(n,)``.
    """
    labelled = np.flatnonzero(np.asarray(masks).reshape(-1) != IGNORE)
    if labelled.size == 0:
        raise ValueError("no labelled pixel to fit the per-pixel baseline on")
    pick = np.sort(rng.choice(labelled, min(count, labelled.size), replace=False))
    h, w = masks.shape[1:]
    patch, rest = np.divmod(pick, h * w)
    row, col = np.divmod(rest, w)
    values = np.stack([np.asarray(images[p, :, r, c]) for p, r, c in zip(patch, row, col, strict=True)])
    return values.astype(np.float32), np.asarray(masks)[patch, row, col].astype(np.int64)


def fit_pixel_classifier(
    values: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    low: list[float],
    high: list[float],
    steps: int = 400,
    lr: float = 1e-2,
    seed: int = 0,
) -> PixelClassifier:
    """Fit a :class:`PixelClassifier` on pixels ``values (n, C)`` with class ids ``labels (n,)``, full batch.

    A few hundred full-batch Adam steps on tens of thousands of pixels take seconds on a CPU.
    """
    torch.manual_seed(seed)
    model = PixelClassifier(low, high, num_classes)
    x = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))  # (n, C)
    y = torch.from_numpy(labels.astype(np.int64))  # (n,)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    model.train()
    for _ in range(steps):
        loss = F.cross_entropy(model.logits(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()
