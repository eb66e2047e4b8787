"""Classes of chips: each chip's class and the probability of every class, written as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from satpipe.artifacts import atomic_write_text
from satpipe.errors import DataError
from satpipe.inference.models import CLASSIFICATION, LoadedModel, load_model, resolve_device
from satpipe.inference.settings import CHIP_BATCH, check_batch_size
from satpipe.io.chips import find_chips, read_image


@dataclass(frozen=True)
class ChipPrediction:
    """One chip's class and the probability of each class, in the model's class order."""

    chip: Path
    label: str
    probabilities: list[float]


def classify_chips(
    inputs: list[Path],
    model: LoadedModel | Path,
    *,
    batch_size: int | None = None,
    device: str = "auto",
) -> list[ChipPrediction]:
    """Classify chip files, and the chips in folders (searched recursively), in that order.

    Each chip is read as stored (JPEG, PNG or GeoTIFF) and given to the model raw: the model applies the
    normalisation it was trained with. Chips of the same size are batched together.

    Args:
        inputs: Chip files and folders of chips.
        model: A classifier, or the path of a checkpoint, training output or exported model.
        batch_size: Chips per model call (default :data:`~satpipe.inference.settings.CHIP_BATCH`).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; used when ``model`` is a path.

    Raises:
        DataError: For a missing input, a file that is not a chip, a chip with another band count than
            the model's, or a model that is not a classifier.
    """
    check_batch_size(batch_size)
    chips = find_chips([Path(p) for p in inputs])
    if not isinstance(model, LoadedModel):
        model = load_model(Path(model), resolve_device(device))
    if model.task != CLASSIFICATION:
        raise DataError(f"{model.path}: a {model.task} model, not a classifier")
    classes, bands = model.info["classes"], model.info["in_channels"]
    batch_size = batch_size or CHIP_BATCH
    predictions: list[ChipPrediction] = []
    for start in range(0, len(chips), batch_size):
        batch = chips[start : start + batch_size]
        images = [read_image(chip, bands) for chip in batch]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        probs = np.empty((len(batch), len(classes)), np.float32)
        for rows in by_shape.values():
            x = torch.from_numpy(np.stack([images[i] for i in rows]).astype(np.float32)).to(model.device)
            probs[rows] = model.predict(x).float().cpu().numpy()
        predictions.extend(
            ChipPrediction(chip, classes[int(p.argmax())], p.tolist()) for chip, p in zip(batch, probs, strict=True)
        )
    return predictions


def write_predictions(
    predictions: list[ChipPrediction], classes: list[str], csv_path: Path, json_path: Path | None = None
) -> None:
    """CSV with columns ``chip``, ``class`` and one probability per class; JSON (optional) with the same.

    Each file is written under a temporary name and renamed into place.
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["chip", "class", *classes])
    for p in predictions:
        writer.writerow([str(p.chip), p.label, *(f"{v:.6f}" for v in p.probabilities)])
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(csv_path), text.getvalue())
    if json_path is not None:
        rows = [
            {"chip": str(p.chip), "class": p.label, "probabilities": dict(zip(classes, p.probabilities, strict=True))}
            for p in predictions
        ]
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(json_path), json.dumps({"classes": classes, "predictions": rows}, indent=2) + "\n")
