"""Evaluation of a scene classifier on a held-out split with torchmetrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from satpipe.artifacts import atomic_dir, read_manifest, write_manifest
from satpipe.data.chips import PREPARE_STAGE, ChipDataset
from satpipe.training.checkpoints import load_trained
from satpipe.training.classifier import SceneClassifier
from satpipe.training.trainer import TRAIN_STAGE

EVALUATE_STAGE = "evaluate"
METRICS_JSON = "metrics.json"


def classification_metrics(num_classes: int) -> MetricCollection:
    """Overall accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix."""
    return MetricCollection(
        {
            "accuracy": MulticlassAccuracy(num_classes, average="micro"),
            "macro_f1": MulticlassF1Score(num_classes, average="macro"),
            "precision": MulticlassPrecision(num_classes, average=None),
            "recall": MulticlassRecall(num_classes, average=None),
            "f1": MulticlassF1Score(num_classes, average=None),
            "confusion": MulticlassConfusionMatrix(num_classes),
        }
    )


def load_classifier(train_dir: Path, map_location: str | torch.device = "cpu") -> SceneClassifier:
    """Load the best checkpoint of a training output, without fetching pretrained weights again."""
    return load_trained(Path(train_dir), map_location)  # type: ignore[return-value]


@torch.inference_mode()
def evaluate_classifier(
    prepared_dir: Path,
    train_dir: Path,
    out_dir: Path,
    *,
    split: str = "test",
    batch_size: int = 256,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score the best checkpoint on a split and write ``metrics.json`` beside a manifest.

    Returns:
        The metrics: ``accuracy``, ``macro_f1``, ``per_class`` (precision, recall, F1, support per
        class), ``confusion`` (rows are true classes) and ``classes``.
    """
    prepared = read_manifest(Path(prepared_dir), PREPARE_STAGE)
    classes: list[str] = prepared["classes"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_classifier(Path(train_dir), map_location=device)
    metrics = classification_metrics(len(classes)).to(device)
    for batch in DataLoader(ChipDataset(Path(prepared_dir), split), batch_size=batch_size):
        metrics.update(model(batch["image"].to(device)), batch["label"].to(device))
    values = {name: value.cpu() for name, value in metrics.compute().items()}
    confusion = values["confusion"].long()
    result = {
        "split": split,
        "samples": int(confusion.sum()),
        "accuracy": float(values["accuracy"]),
        "macro_f1": float(values["macro_f1"]),
        "classes": classes,
        "per_class": [
            {
                "class": name,
                "precision": float(values["precision"][i]),
                "recall": float(values["recall"][i]),
                "f1": float(values["f1"][i]),
                "support": int(confusion[i].sum()),
            }
            for i, name in enumerate(classes)
        ],
        "confusion": confusion.tolist(),
        "checkpoint": read_manifest(Path(train_dir), TRAIN_STAGE)["best_checkpoint"],
    }
    # An ordered list of (name, value): manifests sort their keys.
    result["headline"] = [["test accuracy", result["accuracy"]], ["macro F1", result["macro_f1"]]]
    with atomic_dir(Path(out_dir)) as tmp:
        (tmp / METRICS_JSON).write_text(json.dumps(result, indent=2) + "\n")
        write_manifest(tmp, EVALUATE_STAGE, headline=result["headline"], **(provenance or {}))
    return result
