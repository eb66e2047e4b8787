"""Lightning module for scene classification with two-phase fine-tuning."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from satpipe.models.classifier import create_classifier, head_and_backbone_parameters, split_weight_decay
from satpipe.training.augment import random_dihedral
from satpipe.training.schedules import TwoPhaseSchedule


class SceneClassifier(pl.LightningModule):
    """A timm backbone and head that take raw chip values and normalise them inside the model.

    Normalisation statistics live in the module (and so in every checkpoint), so inference needs
    nothing but the checkpoint. The backbone can be frozen for the first phase of fine-tuning with
    :meth:`freeze_backbone`; frozen, its batch-norm statistics stay fixed too.
    """

    #: Metric that checkpoints and early stopping watch, and whether larger is better.
    monitor = "val_acc"
    mode = "max"

    def __init__(
        self,
        *,
        backbone: str,
        class_names: list[str],
        in_chans: int,
        mean: list[float],
        std: list[float],
        value_scale: float,
        pretrained: bool = False,
        drop_rate: float = 0.0,
        input_size: int | None = None,
        phase1_epochs: int = 0,
        phase1_lr: float = 1e-3,
        phase2_lr: float = 1e-4,
        backbone_lr_ratio: float = 0.1,
        weight_decay: float = 0.05,
        warmup_steps: int = 0,
        label_smoothing: float = 0.0,
        augment: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        num_classes = len(class_names)
        self.model = create_classifier(backbone, num_classes, in_chans, pretrained=pretrained, drop_rate=drop_rate)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.backbone_frozen = False
        #: Set by a callback to collect validation embeddings during the next validation epoch.
        self.collect_embeddings = False
        self.val_embeddings: list[tuple[Tensor, Tensor]] = []

    # -- model ---------------------------------------------------------------------------------------

    def normalize(self, x: Tensor) -> Tensor:
        """Raw stored values (B, C, H, W) -> standardised input at the model's input size."""
        x = (x.float() / self.hparams.value_scale - self.mean) / self.std
        size = self.hparams.input_size
        if size is not None and x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x

    def embed(self, x: Tensor) -> Tensor:
        """Pre-logit features (B, D) of raw input."""
        return self.model.forward_head(self.model.forward_features(self.normalize(x)), pre_logits=True)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, num_classes) of raw input."""
        return self.model(self.normalize(x))

    def freeze_backbone(self, frozen: bool) -> None:
        """Freeze (phase 1) or unfreeze (phase 2) everything but the classifier head."""
        self.backbone_frozen = frozen
        for _, p in head_and_backbone_parameters(self.model)[1]:
            p.requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> SceneClassifier:
        """Set training mode, keeping a frozen backbone's normalisation and dropout layers in eval mode."""
        super().train(mode)
        if mode and self.backbone_frozen:
            head = set(self.model.get_classifier().modules())
            for module in self.model.modules():
                if module is not self.model and module not in head:
                    module.eval()
        return self

    # -- steps ---------------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x, y = batch["image"], batch["label"]
        if self.hparams.augment:
            (x,) = random_dihedral(x)
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        self.train_acc(logits, y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, y = batch["image"], batch["label"]
        features = self.model.forward_head(self.model.forward_features(self.normalize(x)), pre_logits=True)
        logits = self.model.get_classifier()(features)
        if self.collect_embeddings:
            self.val_embeddings.append((features.float().cpu(), y.cpu()))
        self.val_acc(logits, y)
        # sync_dist: with several processes the loss is averaged over all of them (metrics sync themselves).
        self.log("val_loss", F.cross_entropy(logits, y), on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_acc, on_epoch=True, prog_bar=True)

    # -- optimisation --------------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        head, backbone = head_and_backbone_parameters(self.model)
        head_decay, head_no_decay = split_weight_decay(head)
        bb_decay, bb_no_decay = split_weight_decay(backbone)
        # Backbone groups exist from the start at lr 0 so that the optimizer's state has the same shape
        # in both phases, which keeps checkpoints resumable across the phase boundary.
        groups = [
            {"name": "head", "params": head_decay, "weight_decay": hp.weight_decay},
            {"name": "head_no_decay", "params": head_no_decay, "weight_decay": 0.0},
            {"name": "backbone", "params": bb_decay, "weight_decay": hp.weight_decay},
            {"name": "backbone_no_decay", "params": bb_no_decay, "weight_decay": 0.0},
        ]
        schedule = self.schedule()
        for group in groups:
            group["lr"] = hp.phase1_lr if group["name"].startswith("head") else schedule.backbone_base_lr
        optimizer = torch.optim.AdamW(groups)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.lambdas(head_groups=2, backbone_groups=2))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def schedule(self) -> TwoPhaseSchedule:
        """The learning-rate schedule for the attached trainer's epochs and steps."""
        steps_per_epoch = math.ceil(self.trainer.estimated_stepping_batches / self.trainer.max_epochs)
        return TwoPhaseSchedule(
            phase1_steps=self.hparams.phase1_epochs * steps_per_epoch,
            total_steps=self.trainer.max_epochs * steps_per_epoch,
            warmup_steps=self.hparams.warmup_steps,
            phase1_lr=self.hparams.phase1_lr,
            phase2_lr=self.hparams.phase2_lr,
            backbone_lr_ratio=self.hparams.backbone_lr_ratio,
        )
