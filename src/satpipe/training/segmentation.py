"""Lightning module for binary (cloud) segmentation with percentile normalisation and Sat-SlideMix."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryF1Score, BinaryJaccardIndex

from satpipe.data.patches import IGNORE
from satpipe.models import create_model
from satpipe.training.augment import random_dihedral, sat_slidemix


def masked_bce(logits: Tensor, mask: Tensor) -> Tensor:
    """Binary cross-entropy averaged over pixels with data (mask values 0 or 1; 255 is ignored)."""
    valid = mask != IGNORE
    loss = F.binary_cross_entropy_with_logits(logits, mask.clamp(max=1).float(), reduction="none")
    return (loss * valid).sum() / valid.sum().clamp_min(1)


def masked_dice(logits: Tensor, mask: Tensor, eps: float = 1.0) -> Tensor:
    """Soft Dice loss over pixels with data."""
    valid = (mask != IGNORE).float()
    prob, target = torch.sigmoid(logits) * valid, mask.clamp(max=1).float() * valid
    return 1 - (2 * (prob * target).sum() + eps) / (prob.sum() + target.sum() + eps)


class CloudSegmenter(pl.LightningModule):
    """A registered segmentation network that takes raw band values and normalises them itself.

    Each band becomes ``(x - low) / (high - low)``, clipped to [0, 1] when ``clip``: with percentile
    normalisation ``low``/``high`` are the 1st/99th percentiles of the training split, with fixed
    normalisation 0 and the dtype's maximum, and for CloudMask the benchmark's affine map (unclipped).
    All of it is stored in the checkpoint.
    """

    #: Metric that checkpoints and early stopping watch, and whether larger is better.
    monitor = "val_jaccard"
    mode = "max"

    def __init__(
        self,
        *,
        arch: str,
        band_names: list[str],
        low: list[float],
        high: list[float],
        lr: float = 1e-4,
        weight_decay: float = 1e-3,
        loss: str = "bce",
        augment: bool = True,
        slidemix: bool = True,
        slidemix_gamma: int = 3,
        slidemix_beta: float = 1.0,
        clip: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = create_model(arch, in_channels=len(band_names), out_channels=1)
        self.register_buffer("low", torch.tensor(low, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("high", torch.tensor(high, dtype=torch.float32).view(1, -1, 1, 1))
        metrics = MetricCollection(
            {
                "jaccard": BinaryJaccardIndex(ignore_index=IGNORE),
                "f1": BinaryF1Score(ignore_index=IGNORE),
                "accuracy": BinaryAccuracy(ignore_index=IGNORE),
            }
        )
        self.val_metrics = metrics.clone(prefix="val_")
        self.train_accuracy = BinaryAccuracy(ignore_index=IGNORE)

    @property
    def in_channels(self) -> int:
        """Bands the model expects, in order."""
        return len(self.hparams.band_names)

    def normalize(self, x: Tensor) -> Tensor:
        """Raw values (B, C, H, W) -> normalised bands ([0, 1] when clipping)."""
        x = (x.float() - self.low) / (self.high - self.low).clamp_min(1e-6)
        return x.clamp(0, 1) if self.hparams.get("clip", True) else x

    def forward(self, x: Tensor) -> Tensor:
        """Cloud logits (B, 1, H, W) of raw input."""
        return self.model(self.normalize(x))

    def compute_loss(self, logits: Tensor, mask: Tensor) -> Tensor:
        """The configured loss on (B, 1, H, W) logits and a (B, H, W) mask."""
        loss = masked_bce(logits[:, 0], mask)
        if self.hparams.loss == "bce+dice":
            loss = loss + masked_dice(logits[:, 0], mask)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x, mask = batch["image"], batch["mask"]
        if self.hparams.augment:
            x, mask = random_dihedral(x, mask)
        if self.hparams.slidemix:
            x, mask = sat_slidemix(x, mask, self.hparams.slidemix_gamma, self.hparams.slidemix_beta)
        logits = self(x)
        loss = self.compute_loss(logits, mask)
        self.train_accuracy.update(torch.sigmoid(logits[:, 0].detach()), mask)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(x))
        self.log("train_accuracy", self.train_accuracy, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, mask = batch["image"], batch["mask"]
        logits = self(x)
        loss = self.compute_loss(logits, mask)  # averaged over every process, as the metrics are
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.val_metrics.update(torch.sigmoid(logits[:, 0]), mask)
        self.log_dict(self.val_metrics, on_epoch=True, prog_bar=True, batch_size=len(x))

    def configure_optimizers(self) -> Any:
        # Adam with L2 weight decay, as Sat-UNet was trained (not decoupled AdamW).
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
