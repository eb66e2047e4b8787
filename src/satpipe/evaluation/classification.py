"""Evaluation of a scene classifier on a held-out split with torchmetrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
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
from satpipe.io.rasters import percentile_stretch
from satpipe.training.checkpoints import load_trained
from satpipe.training.classifier import SceneClassifier
from satpipe.training.embeddings import MIN_POINTS, tsne_projection
from satpipe.training.trainer import TRAIN_STAGE

EVALUATE_STAGE = "evaluate"
METRICS_JSON = "metrics.json"
TSNE_JSON = "tsne.json"
ERRORS_NPZ = "errors.npz"
#: Misclassified chips kept for the report's gallery.
GALLERY_SIZE = 12
#: Sentinel-2 bands shown as red, green and blue.
RGB_BANDS = ("B04", "B03", "B02")


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
    gallery: int = GALLERY_SIZE,
    seed: int = 0,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score the best checkpoint on a split and write what the report shows beside a manifest.

    Writes ``metrics.json``, ``tsne.json`` (the split's pre-logit features of this checkpoint in 2-D)
    and ``errors.npz``: the ``gallery`` misclassified chips the model was surest of, as display RGB
    with their true and predicted classes, class probabilities and file names.

    Returns:
        The metrics: ``accuracy``, ``macro_f1``, ``per_class`` (precision, recall, F1, support per
        class), ``confusion`` (rows are true classes) and ``classes``.
    """
    prepared = read_manifest(Path(prepared_dir), PREPARE_STAGE)
    classes: list[str] = prepared["classes"]
    checkpoint = read_manifest(Path(train_dir), TRAIN_STAGE)["best_checkpoint"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_classifier(Path(train_dir), map_location=device)
    metrics = classification_metrics(len(classes)).to(device)
    dataset = ChipDataset(Path(prepared_dir), split)
    features, probabilities = [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        embedded = model.embed(batch["image"].to(device))
        logits = model.model.get_classifier()(embedded)
        metrics.update(logits, batch["label"].to(device))
        features.append(embedded.float().cpu())
        probabilities.append(torch.softmax(logits.float(), dim=1).cpu())
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
        "checkpoint": checkpoint,
    }
    # An ordered list of (name, value): manifests sort their keys.
    result["headline"] = [["test accuracy", result["accuracy"]], ["macro F1", result["macro_f1"]]]
    probs = torch.cat(probabilities).numpy()
    with atomic_dir(Path(out_dir)) as tmp:
        (tmp / METRICS_JSON).write_text(json.dumps(result, indent=2) + "\n")
        if len(dataset) >= MIN_POINTS:
            projection = tsne_projection(torch.cat(features).numpy(), dataset.labels, seed=seed)
            (tmp / TSNE_JSON).write_text(json.dumps({"checkpoint": checkpoint, "split": split, **projection}))
        _write_errors(tmp / ERRORS_NPZ, worst_errors(probs, dataset.labels, gallery), probs, dataset, prepared, split)
        write_manifest(tmp, EVALUATE_STAGE, headline=result["headline"], **(provenance or {}))
    return result


def _write_errors(
    path: Path, worst: np.ndarray, probs: np.ndarray, dataset: ChipDataset, prepared: dict[str, Any], split: str
) -> None:
    rgb = [display_rgb(dataset.images[i], prepared["band_names"]) for i in worst]
    np.savez_compressed(
        path,
        rgb=np.stack(rgb) if rgb else np.zeros((0, *prepared["chip_shape"][1:], 3), np.uint8),
        true=dataset.labels[worst],
        predicted=probs[worst].argmax(axis=1),
        probabilities=probs[worst],
        files=np.array([prepared["files"][split][i] for i in worst], dtype=str),
    )


def worst_errors(probabilities: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of at most ``count`` misclassified samples, the most confidently wrong first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:count]]


def display_rgb(chip: np.ndarray, band_names: list[str]) -> np.ndarray:
    """(C, H, W) chip -> (H, W, 3) uint8 true colour (B04, B03, B02); 8-bit chips as stored, others stretched."""
    rgb = np.asarray(chip)[[band_names.index(b) for b in RGB_BANDS]]
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb.transpose(1, 2, 0))
    return percentile_stretch(rgb.astype(np.float32))
