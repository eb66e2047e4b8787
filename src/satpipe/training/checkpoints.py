"""Loading any satpipe checkpoint as the module class that wrote it."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from satpipe.artifacts import read_manifest
from satpipe.errors import DataError
from satpipe.training.classifier import SceneClassifier
from satpipe.training.segmentation import CloudSegmenter
from satpipe.training.semi import SemiSegmenter
from satpipe.training.trainer import TRAIN_STAGE


def module_class(hparams: dict[str, object]) -> type[pl.LightningModule]:
    """The module class whose saved hyperparameters these are."""
    if "backbone" in hparams:
        return SceneClassifier
    return SemiSegmenter if "method" in hparams else CloudSegmenter


def load_trained(path: Path, map_location: str | torch.device = "cpu") -> pl.LightningModule:
    """A checkpoint (``.ckpt``), or the best one of a training output folder, in eval mode.

    Raises:
        DataError: If the file is missing or is not a satpipe checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / read_manifest(path, TRAIN_STAGE)["best_checkpoint"]
    if not path.is_file():
        raise DataError(f"{path}: checkpoint does not exist")
    try:
        hparams = torch.load(path, map_location="cpu", weights_only=False, mmap=True)["hyper_parameters"]
        cls = module_class(hparams)
        # The checkpoint holds every weight: fetching a classifier's pretrained backbone again would be wasted.
        rebuild = {"pretrained": False} if cls is SceneClassifier else {}
        return cls.load_from_checkpoint(path, map_location=map_location, **rebuild).eval()
    except Exception as e:  # any unpickling error, missing key or shape mismatch means: not ours
        raise DataError(f"{path}: not a satpipe checkpoint ({type(e).__name__})") from None
