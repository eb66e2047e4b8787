"""Two-dimensional t-SNE projections of a classifier's pre-logit features."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.manifold import TSNE

#: Fewer samples than this give t-SNE nothing to arrange.
MIN_POINTS = 5


def tsne_projection(features: np.ndarray, labels: np.ndarray, max_points: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Project at most ``max_points`` samples (chosen by ``seed``) of (N, D) ``features`` to 2-D.

    Returns:
        ``x``, ``y`` and ``label`` lists, one entry per projected sample, in the samples' order.
    """
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(labels))[:max_points])
    tsne = TSNE(n_components=2, perplexity=min(30.0, (len(keep) - 1) / 3), init="pca", random_state=seed)
    xy = tsne.fit_transform(features[keep])
    return {"x": xy[:, 0].round(3).tolist(), "y": xy[:, 1].round(3).tolist(), "label": labels[keep].tolist()}
