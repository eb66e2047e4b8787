"""Deterministic dataset splits."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def stratified_split(labels: np.ndarray, train: float, val: float, seed: int) -> dict[str, np.ndarray]:
    """Split sample indices into train/val/test with the same class proportions in each.

    Within each class the indices are shuffled by ``seed``; the first ``round(n * train)`` go to
    train, the next ``round(n * val)`` to val and the rest to test. The result depends only on the
    labels, the fractions and the seed.

    Args:
        labels: Class index of every sample.
        train: Fraction for training.
        val: Fraction for validation; the test fraction is what remains.
        seed: Seed of the shuffle.

    Returns:
        Sorted index arrays keyed ``"train"``, ``"val"`` and ``"test"``.
    """
    if not (0 < train < 1 and 0 <= val < 1 and train + val <= 1):
        raise ValueError(f"split fractions must satisfy 0 < train, 0 <= val, train + val <= 1; got {train}, {val}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_train, n_val = round(len(idx) * train), round(len(idx) * val)
        parts["train"].append(idx[:n_train])
        parts["val"].append(idx[n_train : n_train + n_val])
        parts["test"].append(idx[n_train + n_val :])
    return {name: np.sort(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()}
