import numpy as np
import pytest

from satpipe.data.splits import stratified_split


def test_split_is_stratified_disjoint_complete_and_deterministic() -> None:
    labels = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 110, 120, 130, 140])
    split = stratified_split(labels, 0.6, 0.2, seed=7)
    everything = np.concatenate(list(split.values()))
    assert sorted(everything.tolist()) == list(range(len(labels)))  # complete and disjoint
    for c in range(10):
        n = (labels == c).sum()
        counts = [(labels[split[s]] == c).sum() for s in ("train", "val", "test")]
        assert counts[0] == round(0.6 * n) and counts[1] == round(0.2 * n) and sum(counts) == n
    again = stratified_split(labels, 0.6, 0.2, seed=7)
    other = stratified_split(labels, 0.6, 0.2, seed=8)
    assert all(np.array_equal(split[s], again[s]) for s in split)
    assert not np.array_equal(split["test"], other["test"])


def test_bad_fractions_are_refused() -> None:
    with pytest.raises(ValueError, match="fractions"):
        stratified_split(np.zeros(10, int), 0.9, 0.2, seed=0)
