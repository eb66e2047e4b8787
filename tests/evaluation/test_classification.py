import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from satpipe.data.chips import ChipDataset
from satpipe.evaluation.classification import load_classifier


def test_metrics_agree_with_an_independent_computation(trained_run: dict[str, Path]) -> None:
    metrics = json.loads((trained_run["evaluate"] / "metrics.json").read_text())
    model = load_classifier(trained_run["train"])
    data = ChipDataset(trained_run["prepared"], "test")
    with torch.inference_mode():
        logits = model(torch.stack([data[i]["image"] for i in range(len(data))]))
    y_true, y_pred = data.labels, logits.argmax(1).numpy()
    assert np.array_equal(metrics["confusion"], confusion_matrix(y_true, y_pred, labels=range(10)))
    assert metrics["accuracy"] == np.float32((y_true == y_pred).mean())
    assert abs(metrics["macro_f1"] - f1_score(y_true, y_pred, average="macro", zero_division=0)) < 1e-6
    p, r, _, support = precision_recall_fscore_support(y_true, y_pred, labels=range(10), zero_division=0)
    for i, row in enumerate(metrics["per_class"]):
        assert abs(row["precision"] - p[i]) < 1e-6 and abs(row["recall"] - r[i]) < 1e-6 and row["support"] == support[i]


def test_checkpoint_carries_its_normalisation(trained_run: dict[str, Path]) -> None:
    model = load_classifier(trained_run["train"])
    prepared = json.loads((trained_run["prepared"] / "manifest.json").read_text())
    assert torch.allclose(model.mean.flatten(), torch.tensor(prepared["mean"]))
    assert model.hparams.class_names == prepared["classes"] and not model.hparams.pretrained
