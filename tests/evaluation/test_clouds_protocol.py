import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from satpipe.evaluation.clouds import Counts, counts, counts_at, histograms, summarize, sweep


def sklearn_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    tn, fp, fn, tp = confusion_matrix(gt.ravel(), pred.ravel(), labels=[0, 1]).ravel()
    return {"precision": tp / (tp + fp), "recall": tp / (tp + fn), "specificity": tn / (tn + fp),
            "jaccard": tp / (tp + fp + fn), "accuracy": (tp + tn) / gt.size}  # fmt: skip


def test_protocol_agrees_with_an_independent_confusion_matrix_and_averages_per_scene() -> None:
    rng = np.random.default_rng(0)
    scenes = []
    # Scenes of different sizes and quality: pooling their pixels would give another answer.
    for size, cover, noise in ((50, 0.1, 0.9), (200, 0.6, 0.5), (120, 0.3, 0.7)):
        gt = rng.random((size, size)) < cover
        prob = np.clip(gt * 0.5 + rng.random((size, size)) * noise, 0, 1)
        scenes.append((prob, gt))
    per_scene = [counts(prob, gt, 0.5) for prob, gt in scenes]
    expected = [sklearn_metrics(prob > 0.5, gt) for prob, gt in scenes]
    for c, e in zip(per_scene, expected, strict=True):
        for name, value in e.items():
            assert c.metrics()[name] == pytest.approx(value)
    summary = summarize(per_scene)
    for name in expected[0]:
        assert summary["mean_over_scenes"][name] == pytest.approx(np.mean([e[name] for e in expected]))
    pooled = sum(per_scene[1:], per_scene[0]).metrics()["jaccard"]
    assert summary["mean_over_scenes"]["jaccard"] != pytest.approx(pooled)
    p, r = summary["mean_over_scenes"]["precision"], summary["mean_over_scenes"]["recall"]
    assert summary["f1"]["from_mean_precision_and_recall"] == pytest.approx(2 * p * r / (p + r))
    assert summary["f1"]["mean_of_scene_f1"] == pytest.approx(np.mean([c.metrics()["f1"] for c in per_scene]))


def test_histogram_sweep_equals_exact_counts() -> None:
    rng = np.random.default_rng(1)
    prob, gt = rng.random((300, 300)).astype(np.float32), rng.random((300, 300)) < 0.4
    hist = histograms(prob, gt)
    for t in (0.1, 0.25, 0.5, 0.9):
        exact = counts(prob, gt, t)
        binned = counts_at(hist, t)
        assert abs(binned.tp - exact.tp) + abs(binned.fp - exact.fp) <= int((np.abs(prob - t) < 1e-6).sum())
    curves = sweep([hist], [0.1, 0.5, 0.9])
    assert curves["recall"][0] > curves["recall"][1] > curves["recall"][2]


def test_empty_class_scores_as_agreement() -> None:
    assert Counts(0, 0, 0, 100).metrics()["jaccard"] == 1.0
    assert Counts(0, 5, 0, 95).metrics()["jaccard"] == 0.0
