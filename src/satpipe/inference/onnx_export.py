"""Trained models exported to ONNX, with the normalisation inside the graph and a description in the metadata.

The graph takes raw band values exactly as the training data stored them (``image``: batch x bands x height
x width, float32): classifiers return class probabilities (batch x classes), segmenters cloud probabilities
(batch x height x width; height and width any multiple of 32). What the model expects (bands or classes, the
normalisation, the task) is stored in the ONNX metadata and in a JSON file beside the model.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from satpipe.artifacts import atomic_write_text
from satpipe.inference.models import SEGMENTATION, Probabilities, describe
from satpipe.inference.settings import description_path
from satpipe.training.checkpoints import load_trained

OPSET = 17


def export_onnx(checkpoint: Path, out: Path) -> Path:
    """Write ``out`` (ONNX) and ``out`` with ``.json`` (its description); returns ``out``.

    Raises:
        DataError: If the checkpoint is missing, unsafe or not a satpipe checkpoint.
    """
    module = load_trained(Path(checkpoint))
    info = describe(module)
    side = 256 if info["task"] == SEGMENTATION else 64
    example = torch.rand(1, info["in_channels"], side, side)
    axes = {0: "batch", 2: "height", 3: "width"}
    out_axes = axes if info["task"] == SEGMENTATION else {0: "batch"}  # (B, K, H, W) or (B, K)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    with warnings.catch_warnings():  # the TorchScript-based exporter warns that a newer one exists
        warnings.simplefilter("ignore")
        torch.onnx.export(Probabilities(module).eval(), (example,), tmp, input_names=["image"],
                          output_names=["probability"], dynamic_axes={"image": axes, "probability": out_axes},
                          opset_version=OPSET, dynamo=False)  # fmt: skip
    import onnx

    model = onnx.load(tmp)
    for key, value in info.items():
        model.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(model, tmp)
    tmp.replace(out)
    atomic_write_text(description_path(out), json.dumps(info, indent=2) + "\n")
    return out


def onnx_info(path: Path) -> dict[str, Any]:
    """The description stored in an exported model's metadata."""
    import onnx

    model = onnx.load(Path(path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in model.metadata_props}
