"""A trained model ready to predict, from a checkpoint or an exported ONNX model: raw values in, probabilities out."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from satpipe.errors import ConfigError, DataError
from satpipe.evaluation.segmentation import model_predictor
from satpipe.inference.settings import check_device_name
from satpipe.training.checkpoints import load_trained
from satpipe.training.classifier import SceneClassifier

CLASSIFICATION, SEGMENTATION = "classification", "segmentation"
#: ONNX Runtime providers by preference; those not installed are skipped.
PROVIDERS = {"cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"), "cpu": ("CPUExecutionProvider",)}


class Probabilities(nn.Module):
    """A trained module as raw input -> class probabilities: (B, K) for chips, (B, K, H, W) for scenes."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, image: Tensor) -> Tensor:
        return torch.softmax(self.module(image), dim=1)


def describe(module: nn.Module) -> dict[str, Any]:
    """What a user of the model needs to know about its input and output."""
    h = dict(module.hparams)  # type: ignore[union-attr]
    if isinstance(module, SceneClassifier):
        return {
            "task": CLASSIFICATION,
            "in_channels": h["in_chans"],
            "classes": h["class_names"],
            "value_scale": h["value_scale"],
            "mean": module.mean.flatten().tolist(),
            "std": module.std.flatten().tolist(),
            "input_size": h["input_size"],
            "output": "class probabilities",
        }
    return {
        "task": SEGMENTATION,
        "in_channels": len(h["band_names"]),
        "bands": h["band_names"],
        "classes": module.class_names,  # type: ignore[union-attr]
        "colors": h.get("class_colors"),
        "low": h["low"],
        "high": h["high"],
        "clip": h.get("clip", True),
        "arch": h["arch"],
        "output": "probability of every class per pixel (B, K, H, W); sides must be multiples of 32",
    }


@dataclass(frozen=True)
class LoadedModel:
    """A model that maps raw values ``(B, C, H, W)`` on ``device`` to class probabilities ``(B, K[, H, W])``."""

    path: Path
    info: dict[str, Any]
    predict: Callable[[Tensor], Tensor]
    device: torch.device

    @property
    def task(self) -> str:
        """``classification`` or ``segmentation``."""
        return self.info["task"]


def resolve_device(name: str) -> torch.device:
    """``auto`` (a GPU when one is usable), ``cpu``, ``cuda`` or ``cuda:N``, checked against this machine.

    Raises:
        ConfigError: If the device is unknown or not on this machine.
    """
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"--device {name}: no usable CUDA GPU on this machine; use cpu or auto")
        if (device.index or 0) >= count:
            raise ConfigError(f"--device {name}: this machine has {count} GPU(s) (cuda:0..cuda:{count - 1})")
    return device


def load_model(path: Path, device: torch.device) -> LoadedModel:
    """A checkpoint (``.ckpt``), a training output folder (its best checkpoint) or an exported model (``.onnx``).

    Raises:
        DataError: If the file is missing, unsafe or not a model satpipe wrote.
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return _onnx_model(path, device)
    module = load_trained(path, device)
    info = describe(module)
    if info["task"] == SEGMENTATION:  # in bf16 autocast on GPUs that have it
        return LoadedModel(path, info, model_predictor(module, device), device)
    probabilities = Probabilities(module).to(device).eval()

    @torch.inference_mode()
    def classify(x: Tensor) -> Tensor:
        return probabilities(x.float())

    return LoadedModel(path, info, classify, device)


def _onnx_model(path: Path, device: torch.device) -> LoadedModel:
    """An exported model run by ONNX Runtime (with its CUDA provider when the device is a GPU and it is there)."""
    import onnxruntime as ort

    if not path.is_file():
        raise DataError(f"{path}: model does not exist")
    available = ort.get_available_providers()
    try:
        session = ort.InferenceSession(str(path), providers=[p for p in PROVIDERS[device.type] if p in available])
        info = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    except Exception as e:  # a damaged or foreign file
        raise DataError(f"{path}: not an ONNX model satpipe exported ({type(e).__name__})") from None
    if info.get("task") not in (CLASSIFICATION, SEGMENTATION):
        raise DataError(f"{path}: not an ONNX model satpipe exported (no task in its metadata)")

    def predict(x: Tensor) -> Tensor:
        return torch.from_numpy(session.run(None, {"image": x.float().cpu().numpy()})[0]).to(x.device)

    return LoadedModel(path, info, predict, device)
