"""Lightning module for K-class segmentation with in-model normalisation and Sat-SlideMix.

Clouds are the two-class case (``clear``, ``cloud``) of the same module. A two-class network has one
output channel ``z``, read as the logits ``(0, z)``: softmax gives ``(1 - sigmoid(z), sigmoid(z))`` and
cross-entropy equals the binary cross-entropy of ``z``, so cloud models train exactly as binary ones did,
their checkpoints keep their shapes, and every consumer sees ``(B, K, H, W)`` logits whatever K is.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryF1Score,
    BinaryJaccardIndex,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)

from satpipe.data.patches import IGNORE
from satpipe.models import create_model
from satpipe.training.augment import random_dihedral, sat_slidemix

#: What a model saved before class names were kept segments (every cloud checkpoint).
CLOUD_CLASSES = ("clear", "cloud")
LOSSES = ("ce", "ce+dice")


def masked_cross_entropy(logits: Tensor, mask: Tensor, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy of (B, K, H, W) logits averaged over labelled pixels (mask :data:`IGNORE` is left out).

    Dividing by the labelled count (not the weights' sum) keeps a batch without labels at zero loss.
    """
    loss = F.cross_entropy(logits.float(), mask.long(), weight=weight, ignore_index=IGNORE, reduction="none")
    return loss.sum() / (mask != IGNORE).sum().clamp_min(1)


def masked_dice(logits: Tensor, mask: Tensor, eps: float = 1.0) -> Tensor:
    """Soft Dice loss over labelled pixels, averaged over the classes."""
    valid = (mask != IGNORE).unsqueeze(1)
    prob = logits.float().softmax(dim=1) * valid
    target = F.one_hot(mask.long().clamp(max=logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2) * valid
    dims = (0, 2, 3)
    dice = (2 * (prob * target).sum(dims) + eps) / (prob.sum(dims) + target.sum(dims) + eps)
    return 1 - dice.mean()


def segmentation_metrics(num_classes: int) -> dict[str, Metric]:
    """Binary metrics of the second class for two classes (the cloud protocol), else multiclass ones.

    ``miou`` averages the IoU of the classes; ``accuracy`` is overall pixel accuracy; ``f1`` is macro F1.
    """
    if num_classes == 2:
        return {
            "jaccard": BinaryJaccardIndex(ignore_index=IGNORE),
            "f1": BinaryF1Score(ignore_index=IGNORE),
            "accuracy": BinaryAccuracy(ignore_index=IGNORE),
        }
    common = {"num_classes": num_classes, "ignore_index": IGNORE}
    return {
        "miou": MulticlassJaccardIndex(**common, average="macro"),
        "f1": MulticlassF1Score(**common, average="macro"),
        "accuracy": MulticlassAccuracy(**common, average="micro"),
    }


class Segmenter(pl.LightningModule):
    """A registered segmentation network that takes raw band values and normalises them itself.

    Each band becomes ``(x - low) / (high - low)``, clipped to [0, 1] when ``clip``: with percentile
    normalisation ``low``/``high`` are the 1st/99th percentiles of the training split, with fixed
    normalisation 0 and the dtype's maximum, and for CloudMask the benchmark's affine map (unclipped).
    All of it is stored in the checkpoint, with the class names and colours (``#rrggbb``, for outputs).
    """

    def __init__(
        self,
        *,
        arch: str,
        band_names: list[str],
        low: list[float],
        high: list[float],
        class_names: list[str] | None = None,
        class_colors: list[str] | None = None,
        class_weights: list[float] | None = None,
        lr: float = 1e-4,
        weight_decay: float = 1e-3,
        loss: str = "ce",
        augment: bool = True,
        slidemix: bool = True,
        slidemix_gamma: int = 3,
        slidemix_beta: float = 1.0,
        clip: bool = True,
        encoder: str | None = None,
        pretrained: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.class_names = list(class_names or CLOUD_CLASSES)
        if len(self.class_names) < 2:
            raise ValueError(f"a segmenter needs at least two classes, got {self.class_names}")
        outputs = 1 if self.num_classes == 2 else self.num_classes
        # Only the network on a timm encoder has an encoder to choose and pretrained weights.
        encoder_options = {"encoder": encoder, "pretrained": pretrained} if arch == "unet_timm" else {}
        self.model = create_model(arch, in_channels=len(band_names), out_channels=outputs, **encoder_options)
        self.register_buffer("low", torch.tensor(low, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("high", torch.tensor(high, dtype=torch.float32).view(1, -1, 1, 1))
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        metrics = segmentation_metrics(self.num_classes)
        self.val_metrics = MetricCollection(metrics).clone(prefix="val_")
        self.train_accuracy = metrics["accuracy"].clone()
        #: Metric that checkpoints and early stopping watch, and whether larger is better.
        self.monitor, self.mode = ("val_jaccard" if self.num_classes == 2 else "val_miou"), "max"

    @property
    def num_classes(self) -> int:
        """K."""
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        """Bands the model expects, in order."""
        return len(self.hparams.band_names)

    def normalize(self, x: Tensor) -> Tensor:
        """Raw values (B, C, H, W) -> normalised bands ([0, 1] when clipping)."""
        x = (x.float() - self.low) / (self.high - self.low).clamp_min(1e-6)
        return x.clamp(0, 1) if self.hparams.get("clip", True) else x

    def class_logits(self, out: Tensor) -> Tensor:
        """The network's output -> (B, K, H, W) logits (a two-class network's one channel ``z`` -> ``(0, z)``)."""
        return torch.cat([torch.zeros_like(out), out], dim=1) if self.num_classes == 2 else out

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, K, H, W) of raw input."""
        return self.class_logits(self.model(self.normalize(x)))

    def scores(self, logits: Tensor) -> Tensor:
        """What the metrics take: the second class's probability for two classes, else the logits."""
        return logits.float().softmax(dim=1)[:, 1] if self.num_classes == 2 else logits

    def compute_loss(self, logits: Tensor, mask: Tensor) -> Tensor:
        """The configured loss on (B, K, H, W) logits and a (B, H, W) mask of class ids."""
        loss = masked_cross_entropy(logits, mask, self.class_weights)
        if self.hparams.loss == "ce+dice":
            loss = loss + masked_dice(logits, mask)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x, mask = batch["image"], batch["mask"]
        if self.hparams.augment:
            x, mask = random_dihedral(x, mask)
        if self.hparams.slidemix:
            x, mask = sat_slidemix(x, mask, self.hparams.slidemix_gamma, self.hparams.slidemix_beta)
        logits = self(x)
        loss = self.compute_loss(logits, mask)
        self.train_accuracy.update(self.scores(logits.detach()), mask)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(x))
        self.log("train_accuracy", self.train_accuracy, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, mask = batch["image"], batch["mask"]
        logits = self(x)
        loss = self.compute_loss(logits, mask)  # averaged over every process, as the metrics are
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.val_metrics.update(self.scores(logits), mask)
        self.log_dict(self.val_metrics, on_epoch=True, prog_bar=True, batch_size=len(x))

    def configure_optimizers(self) -> Any:
        # Adam with L2 weight decay, as Sat-UNet was trained (not decoupled AdamW).
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
