"""Cloud-mask metrics: the official 38-Cloud full-scene protocol, patch-level pooling, threshold sweeps.

38-Cloud's evaluation binarizes each prediction (Cloud-Net used ``p > 12/255``), computes precision,
recall, specificity, Jaccard and overall accuracy of the cloud class over every pixel of each scene's
ground truth, and averages each metric over the scenes. F1 is reported two ways, labelled: the mean of
per-scene F1, and the harmonic mean of the mean precision and mean recall (as papers often quote it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import binary_stat_scores

CLOUD_NET_THRESHOLD = 12 / 255
METRICS = ("precision", "recall", "specificity", "jaccard", "accuracy", "f1")
SWEEP_BINS = 1000


@dataclass(frozen=True)
class Counts:
    """Confusion counts of the cloud class."""

    tp: int
    fp: int
    fn: int
    tn: int

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    def metrics(self) -> dict[str, float]:
        """Precision, recall, specificity, Jaccard, accuracy and F1 (a class absent from both is a perfect 1)."""

        def ratio(num: int, den: int) -> float:
            return num / den if den else 1.0

        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        return {
            "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn),
            "specificity": ratio(tn, tn + fp),
            "jaccard": ratio(tp, tp + fp + fn),
            "accuracy": ratio(tp + tn, tp + fp + fn + tn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn),
        }


def counts(prob: np.ndarray, gt: np.ndarray, threshold: float) -> Counts:
    """Confusion counts of ``prob > threshold`` against a boolean ground truth (torchmetrics stat scores)."""
    pred = torch.from_numpy(np.asarray(prob) > threshold)
    tp, fp, tn, fn, _ = binary_stat_scores(pred.long().flatten(), torch.from_numpy(np.asarray(gt)).long().flatten())
    return Counts(int(tp), int(fp), int(fn), int(tn))


def summarize(per_scene: list[Counts]) -> dict[str, Any]:
    """The protocol's summary: each metric averaged over scenes, and F1 both ways, labelled."""
    rows = [c.metrics() for c in per_scene]
    mean = {m: float(np.mean([r[m] for r in rows])) for m in METRICS}
    p, r = mean["precision"], mean["recall"]
    return {
        "mean_over_scenes": mean,
        "f1": {
            "mean_of_scene_f1": mean["f1"],
            "from_mean_precision_and_recall": 2 * p * r / (p + r) if p + r else 0.0,
        },
        "scenes": len(rows),
    }


def histograms(prob: np.ndarray, gt: np.ndarray, bins: int = SWEEP_BINS) -> np.ndarray:
    """Counts of probabilities in ``bins`` equal bins, for cloud (row 0) and clear (row 1) pixels."""
    index = np.minimum((np.asarray(prob, dtype=np.float64) * bins).astype(np.int64), bins - 1)
    gt = np.asarray(gt, dtype=bool)
    return np.stack([np.bincount(index[gt], minlength=bins), np.bincount(index[~gt], minlength=bins)])


def counts_at(hist: np.ndarray, threshold: float) -> Counts:
    """Confusion counts at a threshold from :func:`histograms` (exact for thresholds on the bin edges)."""
    cut = int(np.ceil(threshold * hist.shape[1] - 1e-9))  # bins at or above ``cut`` hold p >= threshold
    positive, negative = hist
    tp, fp = int(positive[cut:].sum()), int(negative[cut:].sum())
    return Counts(tp, fp, int(positive.sum()) - tp, int(negative.sum()) - fp)


def sweep(scene_histograms: list[np.ndarray], thresholds: list[float]) -> dict[str, list[float]]:
    """Each protocol metric (averaged over scenes) at each threshold."""
    curves: dict[str, list[float]] = {m: [] for m in METRICS}
    for t in thresholds:
        mean = summarize([counts_at(h, t) for h in scene_histograms])["mean_over_scenes"]
        for m in METRICS:
            curves[m].append(mean[m])
    return {"threshold": list(thresholds), **curves}


def counts_dict(c: Counts) -> dict[str, int]:
    """Counts as plain JSON."""
    return asdict(c)
