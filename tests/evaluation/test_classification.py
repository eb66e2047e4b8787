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


def test_tsne_projects_the_scored_checkpoint_on_the_test_split(trained_run: dict[str, Path]) -> None:
    from satpipe.training.embeddings import tsne_projection

    projection = json.loads((trained_run["evaluate"] / "tsne.json").read_text())
    metrics = json.loads((trained_run["evaluate"] / "metrics.json").read_text())
    assert projection["checkpoint"] == metrics["checkpoint"] and projection["split"] == "test"
    data = ChipDataset(trained_run["prepared"], "test")
    images = torch.from_numpy(data.images[:].astype(np.float32))
    with torch.inference_mode():  # the best checkpoint's features, as the evaluation computed them (one batch)
        features = load_classifier(trained_run["train"]).embed(images)
    expected = tsne_projection(features.numpy(), data.labels)
    assert projection["label"] == expected["label"] == data.labels.tolist()
    assert np.allclose(projection["x"], expected["x"]) and np.allclose(projection["y"], expected["y"])


def test_errors_keep_the_most_confident_mistakes_with_their_chips(trained_run: dict[str, Path]) -> None:
    errors = np.load(trained_run["evaluate"] / "errors.npz")
    data = ChipDataset(trained_run["prepared"], "test")
    images = torch.from_numpy(data.images[:].astype(np.float32))
    with torch.inference_mode():
        probs = torch.softmax(load_classifier(trained_run["train"])(images), 1)
    predicted = probs.argmax(1).numpy()
    wrong = np.flatnonzero(predicted != data.labels)
    order = wrong[np.argsort(-probs[wrong, predicted[wrong]].numpy(), kind="stable")][:12]
    files = json.loads((trained_run["prepared"] / "manifest.json").read_text())["files"]["test"]
    assert len(order) > 0 and list(errors["files"]) == [files[i] for i in order]
    assert list(errors["true"]) == list(data.labels[order]) and list(errors["predicted"]) == list(predicted[order])
    assert np.allclose(errors["probabilities"], probs[order].numpy(), atol=1e-5)
    assert np.array_equal(errors["rgb"], data.images[order].transpose(0, 2, 3, 1))  # 8-bit RGB chips as stored


def test_worst_errors_rank_by_confidence_in_the_wrong_class() -> None:
    from satpipe.evaluation.classification import worst_errors

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3], [0.05, 0.95]])
    labels = np.array([0, 0, 0, 1, 1])  # wrong: 1 (0.8), 2 (0.6), 3 (0.7)
    assert worst_errors(probs, labels, 2).tolist() == [1, 3]
    assert worst_errors(probs, labels, 10).tolist() == [1, 3, 2]
    assert worst_errors(probs[:1], labels[:1], 10).tolist() == []
