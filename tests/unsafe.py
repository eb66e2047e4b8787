"""Checkpoints that would run code when unpickled, as someone could hand one to a user."""

from __future__ import annotations

from pathlib import Path

import torch


class CreatesFile:
    """Unpickles by calling ``open(marker, "w")``: any loader that runs code from the file creates the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def unsafe_checkpoint(real: Path | None, out: Path, marker: Path) -> Path:
    """A copy of ``real`` (or an empty checkpoint) whose hyperparameters carry the payload."""
    checkpoint = torch.load(real, map_location="cpu", weights_only=True) if real else {"hyper_parameters": {}}
    checkpoint["hyper_parameters"]["note"] = CreatesFile(marker)
    torch.save(checkpoint, out)
    assert not marker.exists()
    return out
