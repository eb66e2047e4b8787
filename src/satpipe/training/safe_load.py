"""Reading checkpoint files without running code from them.

A checkpoint is a pickle, and unpickling can call any function the file names. Every checkpoint satpipe
reads (for prediction, export, evaluation or a resumed training run) goes through torch's weights-only
unpickler, which rebuilds tensors and plain values only and refuses everything else.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from satpipe.errors import DataError

#: What ``torch.load`` and Lightning are told: never unpickle more than tensors and plain values. Everything
#: satpipe puts into a checkpoint (weights, optimizer, scheduler and callback states, hyperparameters, random
#: number generator states as tensors and lists) is of those kinds, so nothing is allowed beyond torch's defaults.
WEIGHTS_ONLY = True
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's content on the CPU (memory-mapped), read with the weights-only unpickler.

    Raises:
        DataError: If the file is missing, asks for anything but tensors and plain values (code that
            unpickling would run), or is not a torch checkpoint at all.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=WEIGHTS_ONLY, mmap=True)
    except pickle.UnpicklingError as e:
        if culprit := _GLOBAL.search(str(e)):
            raise DataError(
                f"{path}: refused: it references {culprit[1]}, which no checkpoint needs "
                "(only tensors and plain values are loaded)"
            ) from None
        raise DataError(f"{path}: not a satpipe checkpoint ({type(e).__name__})") from None
    except Exception as e:  # a truncated, foreign or damaged file
        raise DataError(f"{path}: not a satpipe checkpoint ({type(e).__name__})") from None
    if not isinstance(checkpoint, dict):
        raise DataError(f"{path}: not a satpipe checkpoint (holds a {type(checkpoint).__name__})")
    return checkpoint
