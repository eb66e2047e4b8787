"""Prediction settings: their defaults, where outputs go, and checks that load no model and read no pixels.

Kept free of torch: the command lines run the checks before importing the model stack, so a wrong setting
is answered in a moment, and before anything is read or written.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

from satpipe.errors import ConfigError, DataError
from satpipe.evaluation.blending import BLEND_MODES

DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
#: Scene prediction's settings by default.
THRESHOLD, WINDOW, OVERLAP, BLEND = 0.5, 384, 64, "cosine"
#: Windows per model call by device type: large batches keep a GPU busy; on a CPU small ones run faster.
WINDOW_BATCH = {"cuda": 16, "cpu": 2}
#: Chips per model call: chips are small, so a batch costs little memory on either device.
CHIP_BATCH = 64


def probability_path(mask: Path) -> Path:
    """Where a scene's probability goes unless told: beside the mask, ``<name>.prob<suffix>``."""
    return mask.with_name(mask.stem + ".prob" + mask.suffix)


def description_path(model: Path) -> Path:
    """The JSON description written beside an exported model."""
    return Path(model).with_suffix(".json")


def check_device_name(device: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether this machine has it is checked when the model loads)."""
    if not DEVICE.fullmatch(device):
        raise ConfigError(f"--device {device}: unknown device; use auto, cpu, cuda or cuda:N")


def check_batch_size(batch_size: int | None) -> None:
    """None (the default) or at least 1."""
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")


def check_scene_settings(*, threshold: float, window: int, overlap: int, blend: str, batch_size: int | None) -> None:
    """The sliding-window settings of scene prediction.

    Raises:
        ConfigError: Naming the first setting out of its range.
    """
    if not (math.isfinite(threshold) and 0 < threshold < 1):
        raise ConfigError(f"--threshold must be between 0 and 1 (exclusive), got {threshold}")
    if window < 32 or window % 32:
        raise ConfigError(f"--window must be a positive multiple of 32, got {window}")
    if not 0 <= overlap < window:
        raise ConfigError(f"--overlap must be in [0, window) = [0, {window}), got {overlap}")
    if blend not in BLEND_MODES:
        raise ConfigError(f"--blend must be one of {', '.join(BLEND_MODES)}, got {blend!r}")
    check_batch_size(batch_size)


def check_outputs(inputs: Iterable[Path], outputs: dict[str, Path]) -> None:
    """Outputs that overwrite no input and no other output, each in a folder that exists or can be made and written.

    Args:
        inputs: Files and folders that are read (scenes, chips, the model).
        outputs: Files to write, by the option that names them.

    Raises:
        DataError: Naming the output and the input (or output) it would replace, or its folder.
    """
    read = {Path(p).resolve(): Path(p) for p in inputs}
    written: dict[Path, str] = {}
    for option, path in outputs.items():
        target = Path(path).resolve()
        if target in read:
            raise DataError(f"{option} {path}: would overwrite the input {read[target]}; write somewhere else")
        if target in written:
            raise DataError(f"{option} {path}: the same file as {written[target]}; give each output its own path")
        written[target] = f"{option} {path}"
        if target.is_dir():
            raise DataError(f"{option} {path}: is a folder; give a file name")
        check_writable_folder(target.parent, option)


def check_writable_folder(folder: Path, option: str) -> None:
    """A folder that exists and can be written, or could be created inside one that can."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise DataError(f"{option}: {existing} is a file, so {folder} cannot be a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DataError(f"{option}: cannot write into {existing} (permission denied)")
