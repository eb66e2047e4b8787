"""Loading any satpipe checkpoint as the module class that wrote it."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from satpipe.artifacts import read_manifest
from satpipe.errors import DataError
from satpipe.training.classifier import SceneClassifier
from satpipe.training.safe_load import read_checkpoint
from satpipe.training.segmentation import Segmenter
from satpipe.training.semi import SemiSegmenter
from satpipe.training.trainer import TRAIN_STAGE


def module_class(hparams: dict[str, object]) -> type[pl.LightningModule]:
    """The module class whose saved hyperparameters these are."""
    if "backbone" in hparams:
        return SceneClassifier
    return SemiSegmenter if "method" in hparams else Segmenter


def load_trained(path: Path, map_location: str | torch.device = "cpu") -> pl.LightningModule:
    """A checkpoint (``.ckpt``), or the best one of a training output folder, in eval mode.

    The file is read once, without running code from it (:func:`read_checkpoint`), and the module is
    rebuilt from its saved hyperparameters and weights.

    Raises:
        DataError: If the file is missing, unsafe or not a satpipe checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / read_manifest(path, TRAIN_STAGE)["best_checkpoint"]
    checkpoint = read_checkpoint(path)
    try:
        hparams = dict(checkpoint["hyper_parameters"])
        cls = module_class(hparams)
        if "pretrained" in hparams:  # the checkpoint holds every weight: fetching pretrained ones is waste
            hparams["pretrained"] = False
        module = cls(**hparams)
        module.load_state_dict(checkpoint["state_dict"])
    except Exception as e:  # a missing key, an unknown setting or a shape mismatch means: not ours
        raise DataError(f"{path}: not a satpipe checkpoint ({type(e).__name__})") from None
    return module.to(map_location).eval()
