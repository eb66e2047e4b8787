"""Semi-supervised segmentation: FixMatch-style weak-to-strong consistency, UniMatch's extras, an EMA teacher.

One module trains both arms of the experiment, so they differ only in the unlabelled loss:

- ``supervised``: the labelled batch (weak view) and masked cross-entropy, nothing else;
- ``fixmatch``: plus, for an unlabelled batch of the same size, pseudo-labels predicted on its weak view
  without gradients, kept where the confidence (the largest class probability; ``max(p, 1 - p)`` for
  clouds) reaches ``threshold``, and a masked cross-entropy of the strong view (photometric jitter and
  CutMix with a second unlabelled batch) against them, summed and divided by the count of pixels with
  data; total ``(supervised + unsupervised) / 2``;
- ``unimatch``: two strong views and a feature-perturbed branch (Dropout2d(0.5) on the encoder
  features of the weak view); total ``(supervised + 0.25 s1 + 0.25 s2 + 0.5 fp) / 2``.

With ``ema_decay`` the pseudo-labels come from an exponential moving average of the model (a teacher).
Hidden labels of the unlabelled batch serve only to log how accurate the pseudo-labels are.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satpipe.data.patches import IGNORE
from satpipe.data.semi import SemiDataModule
from satpipe.training.callbacks import EpochTimer
from satpipe.training.fit import normalization_range
from satpipe.training.segmentation import Segmenter
from satpipe.training.trainer import train_and_record
from satpipe.training.views import cutmix, cutmix_boxes, photometric, weak_view

METHODS = ("supervised", "fixmatch", "unimatch")


@torch.no_grad()
def pseudo_labels(model: nn.Module, to_logits: Callable[[Tensor], Tensor], image: Tensor) -> tuple[Tensor, Tensor]:
    """Class ids (B, H, W) and their confidence (the largest probability), from normalised input.

    ``to_logits`` turns the network's output into class logits (:meth:`Segmenter.class_logits`). The
    model runs in eval mode (batch-norm statistics are used, not updated) and without gradients.
    """
    was_training = model.training
    model.eval()
    confidence, labels = to_logits(model(image)).float().softmax(dim=1).max(dim=1)
    model.train(was_training)
    return labels, confidence


@contextmanager
def frozen_norm_statistics(model: nn.Module) -> Iterator[None]:
    """Batch norm still normalises by batch statistics but does not fold them into its running ones.

    Strong views are deliberately off-distribution; their statistics would drift the running means
    that evaluation and pseudo-labelling rely on.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum


def consistency_loss(logits: Tensor, target: Tensor, keep: Tensor, valid: Tensor) -> Tensor:
    """Cross-entropy of ``logits`` (B, K, H, W) against class ids ``target`` where ``keep & valid``, per valid pixel.

    Dividing by every pixel with data rather than by the confident ones keeps the loss small while few
    pixels are confident (as FixMatch and UniMatch normalise it).
    """
    loss = F.cross_entropy(logits.float(), target.long(), reduction="none")
    return (loss * (keep & valid)).sum() / valid.sum().clamp_min(1)


class SemiSegmenter(Segmenter):
    """A :class:`Segmenter` trained on weak views of labelled batches and, unless supervised, unlabelled ones."""

    def __init__(
        self, *, method: str = "fixmatch", threshold: float = 0.95, ema_decay: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.teacher = copy.deepcopy(self.model).requires_grad_(False) if ema_decay else None

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        labelled = batch["labelled"]
        x, y = weak_view(labelled["image"].float(), labelled["mask"], fills=(IGNORE,))
        supervised = self.compute_loss(self(x), y)
        self.log("train_sup_loss", supervised, on_step=False, on_epoch=True, batch_size=len(x))
        if self.hparams.method == "supervised":
            loss = supervised
        else:
            loss = self._with_unlabelled(supervised, batch["unlabelled"])
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def _with_unlabelled(self, supervised: Tensor, unlabelled: dict[str, Tensor]) -> Tensor:
        u, valid, hidden = weak_view(
            unlabelled["image"].float(), unlabelled["valid"], unlabelled["mask"], fills=(0, IGNORE)
        )
        u, valid = self.normalize(u), valid.bool()
        pseudo, confidence = pseudo_labels(self.teacher or self.model, self.class_logits, u)
        keep = confidence >= self.hparams.threshold
        self._log_pseudo_labels(pseudo, keep, valid, hidden)
        other = torch.roll(torch.arange(len(u), device=u.device), 1)  # the second unlabelled batch: another order
        views = 2 if self.hparams.method == "unimatch" else 1
        strong = []
        for _ in range(views):
            box = cutmix_boxes(len(u), *u.shape[-2:]).to(u.device)
            s = photometric(u)
            s, target, kept, mixed_valid = cutmix(
                box, (s, s[other]), (pseudo, pseudo[other]), (keep, keep[other]), (valid, valid[other])
            )
            with frozen_norm_statistics(self.model):
                strong.append(consistency_loss(self.class_logits(self.model(s)), target, kept, mixed_valid))
        self.log("train_unsup_loss", sum(strong) / views, on_step=False, on_epoch=True, batch_size=len(u))
        if views == 1:
            return (supervised + strong[0]) / 2
        with frozen_norm_statistics(self.model):
            features = self.model.forward_features(u)
            perturbed = self.model.forward_head([F.dropout2d(f, 0.5, training=True) for f in features])
        fp = consistency_loss(self.class_logits(perturbed), pseudo, keep, valid)
        self.log("train_fp_loss", fp, on_step=False, on_epoch=True, batch_size=len(u))
        return (supervised + 0.25 * strong[0] + 0.25 * strong[1] + 0.5 * fp) / 2

    def _log_pseudo_labels(self, pseudo: Tensor, keep: Tensor, valid: Tensor, hidden: Tensor) -> None:
        confident = keep & valid
        self.log("confident_ratio", confident.sum() / valid.sum().clamp_min(1), on_step=True, on_epoch=True)
        known = hidden != IGNORE
        if known.any():  # labels were hidden, not absent: how good are the pseudo-labels?
            right = pseudo == hidden
            self.log("pseudo_accuracy", (right & confident & known).sum() / (confident & known).sum().clamp_min(1),
                     on_step=True, on_epoch=True)  # fmt: skip
            self.log("pseudo_accuracy_all", (right & known).sum() / known.sum(), on_step=False, on_epoch=True)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.teacher is None:
            return
        decay = self.hparams.ema_decay
        with torch.no_grad():
            for t, s in zip(self.teacher.parameters(), self.model.parameters(), strict=True):
                t.lerp_(s, 1 - decay)
            for t, s in zip(self.teacher.buffers(), self.model.buffers(), strict=True):
                t.copy_(s)

    def configure_optimizers(self) -> Any:
        # Adam with L2 weight decay as the supervised segmenter, annealed to zero over the run so that the
        # arms are compared at rest rather than mid-oscillation; the teacher is not optimised.
        optimizer = torch.optim.Adam(
            self.model.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def fit_semi(
    prepared_dir: Path,
    out_dir: Path,
    *,
    method: str,
    fraction: float,
    split_by: str,
    split_seed: int,
    threshold: float,
    ema_decay: float | None,
    arch: str,
    normalization: str,
    encoder: str | None = None,
    pretrained: bool = False,
    epochs: int,
    lr: float,
    weight_decay: float,
    loss: str,
    batch_size: int,
    num_workers: int,
    precision: str,
    save_top_k: int,
    early_stopping_patience: int | None,
    seed: int,
    unlabelled_dir: Path | None = None,
    deterministic: bool = False,
    resume_every_n_steps: int = 0,
    wandb_run: Any = None,
    progress: bool = True,
    work_dir: Path | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    provenance: dict[str, Any] | None = None,
    **ignored: Any,
) -> dict[str, Any]:
    """Train one arm of the semi-supervised experiment on a labelled fraction of prepared patches.

    The unlabelled pool is the rest of the training patches plus, given ``unlabelled_dir``, the patches
    of scenes prepared without labels; both arms take one step per unlabelled batch.

    ``ignored`` takes the supervised trainer's settings that do not apply here (Sat-SlideMix, dihedral
    augmentation of whole batches, prediction overlays): weak and strong views replace them.

    Returns:
        The training manifest, which also records the labelled and unlabelled patch counts.
    """
    pl.seed_everything(seed, workers=True, verbose=False)
    datamodule = SemiDataModule(
        Path(prepared_dir), batch_size, fraction=fraction, split_by=split_by, split_seed=split_seed,
        unlabelled=method != "supervised", unlabelled_dir=unlabelled_dir, num_workers=num_workers,
    )  # fmt: skip
    bands = datamodule.manifest["bands"]
    low, high = normalization_range(datamodule.manifest, normalization)
    module = SemiSegmenter(
        method=method, threshold=threshold, ema_decay=ema_decay, arch=arch, band_names=bands, low=low, high=high,
        class_names=datamodule.manifest.get("classes"), encoder=encoder, pretrained=pretrained, lr=lr,
        weight_decay=weight_decay, loss=loss, augment=False, slidemix=False,
    )  # fmt: skip
    return train_and_record(
        module,
        datamodule,
        Path(out_dir),
        callbacks=lambda tmp: [EpochTimer()],
        epochs=epochs,
        save_top_k=save_top_k,
        precision=precision,
        early_stopping_patience=early_stopping_patience,
        wandb_run=wandb_run,
        progress=progress,
        deterministic=deterministic,
        resume_every_n_steps=resume_every_n_steps,
        work_dir=work_dir,
        on_checkpoint=on_checkpoint,
        method=method,
        fraction=fraction,
        split_by=split_by,
        labelled_patches=len(datamodule.labelled),
        unlabelled_patches=len(datamodule.pool) + datamodule.extra,
        unlabelled_scene_patches=datamodule.extra,
        normalization=normalization,
        bands=bands,
        seed=seed,
        **(provenance or {}),
    )
