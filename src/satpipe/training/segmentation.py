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

    With ``normalization="percentile"`` each band becomes ``(x - low) / (high - low)`` clipped to
    [0, 1], ``low``/``high`` being the 1st/99th percentiles of the training split; with ``"fixed"``,
    ``low = 0`` and ``high`` is the dtype's maximum. Both are stored in the checkpoint.
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

    @property
    def in_channels(self) -> int:
        """Bands the model expects, in order."""
        return len(self.hparams.band_names)

    def normalize(self, x: Tensor) -> Tensor:
        """Raw values (B, C, H, W) -> [0, 1] per band."""
        return ((x.float() - self.low) / (self.high - self.low).clamp_min(1e-6)).clamp(0, 1)

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
        loss = self.compute_loss(self(x), mask)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, mask = batch["image"], batch["mask"]
        logits = self(x)
        self.log("val_loss", self.compute_loss(logits, mask), on_epoch=True, prog_bar=True, batch_size=len(x))
        self.val_metrics.update(torch.sigmoid(logits[:, 0]), mask)
        self.log_dict(self.val_metrics, on_epoch=True, prog_bar=True, batch_size=len(x))

    def configure_optimizers(self) -> Any:
        # Adam with L2 weight decay, as Sat-UNet was trained (not decoupled AdamW).
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
