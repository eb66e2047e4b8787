"""Export a trained model to ONNX: ``python -m satpipe.export CKPT --format onnx [--out model.onnx]``.

CKPT is a checkpoint (``.ckpt``) or a training output folder (its best checkpoint). The graph takes raw
band values exactly as the training data stored them (``image``: batch x bands x height x width,
float32) and includes the model's normalisation, so nothing has to be re-implemented beside it:
classifiers return class probabilities (batch x classes), segmenters cloud probabilities (batch x
height x width; height and width any multiple of 32). What the model expects (bands or classes, the
normalisation, the task) is stored in the ONNX metadata and in a JSON file beside the model.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from satpipe.artifacts import atomic_write_text
from satpipe.errors import SatpipeError
from satpipe.training.checkpoints import load_trained
from satpipe.training.classifier import SceneClassifier

OPSET = 17


class Probabilities(nn.Module):
    """A trained module as raw input -> probabilities (softmax over classes, or the cloud sigmoid)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module, self.classifier = module, isinstance(module, SceneClassifier)

    def forward(self, image: Tensor) -> Tensor:
        logits = self.module(image)
        return torch.softmax(logits, dim=1) if self.classifier else torch.sigmoid(logits)[:, 0]


def describe(module: nn.Module) -> dict[str, Any]:
    """What a user of the exported model needs to know about its input and output."""
    h = dict(module.hparams)  # type: ignore[union-attr]
    if isinstance(module, SceneClassifier):
        return {
            "task": "classification",
            "in_channels": h["in_chans"],
            "classes": h["class_names"],
            "value_scale": h["value_scale"],
            "mean": module.mean.flatten().tolist(),
            "std": module.std.flatten().tolist(),
            "input_size": h["input_size"],
            "output": "class probabilities",
        }
    return {
        "task": "cloud segmentation",
        "in_channels": len(h["band_names"]),
        "bands": h["band_names"],
        "low": h["low"],
        "high": h["high"],
        "clip": h.get("clip", True),
        "arch": h["arch"],
        "output": "cloud probability per pixel; sides must be multiples of 32",
    }


def export_onnx(checkpoint: Path, out: Path) -> Path:
    """Write ``out`` (ONNX) and ``out`` with ``.json`` (its description); returns ``out``."""
    module = load_trained(Path(checkpoint))
    info = describe(module)
    side = 256 if info["task"] == "cloud segmentation" else 64
    example = torch.rand(1, info["in_channels"], side, side)
    axes = {0: "batch", 2: "height", 3: "width"}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    with warnings.catch_warnings():  # the TorchScript-based exporter warns that a newer one exists
        warnings.simplefilter("ignore")
        torch.onnx.export(Probabilities(module).eval(), (example,), tmp, input_names=["image"],
                          output_names=["probability"], dynamic_axes={"image": axes, "probability": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)  # fmt: skip
    import onnx

    model = onnx.load(tmp)
    for key, value in info.items():
        model.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(model, tmp)
    tmp.replace(out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(info, indent=2) + "\n")
    return out


def onnx_info(path: Path) -> dict[str, Any]:
    """The description stored in an exported model's metadata."""
    import onnx

    model = onnx.load(Path(path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in model.metadata_props}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m satpipe.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("checkpoint", type=Path, help="a .ckpt file or a training output folder")
    parser.add_argument("--format", choices=("onnx",), default="onnx")
    parser.add_argument("--out", type=Path, help="the model to write (default: beside the checkpoint, .onnx)")
    args = parser.parse_args(argv)
    out = args.out or (
        args.checkpoint / "model.onnx" if args.checkpoint.is_dir() else args.checkpoint.with_suffix(".onnx")
    )
    try:
        path = export_onnx(args.checkpoint, out)
    except SatpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {path.with_suffix('.json')} ({onnx_info(path)['task']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
