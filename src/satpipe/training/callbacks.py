"""Training callbacks: the phase change of two-phase fine-tuning, embedding projections, and guards."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import CombinedLoader

from satpipe.artifacts import atomic_write_text
from satpipe.data.loaders import EpochSampler
from satpipe.errors import NonFiniteLossError
from satpipe.io.rasters import percentile_stretch
from satpipe.training.embeddings import MIN_POINTS, tsne_projection

logger = logging.getLogger(__name__)


class TwoPhaseFinetuning(pl.Callback):
    """Freeze the backbone for the first ``phase1_epochs`` epochs, then unfreeze it.

    The learning rates of the two phases come from the module's step-based schedule (see
    :class:`satpipe.training.schedules.TwoPhaseSchedule`); this callback owns what the schedule
    cannot express: which parameters receive gradients and whether frozen layers update their
    batch-norm statistics. It decides from the epoch alone, so a resumed run lands in the right phase.
    """

    def __init__(self, phase1_epochs: int) -> None:
        self.phase1_epochs = phase1_epochs

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A run resumed mid-epoch starts without an epoch start: set the phase here too.
        pl_module.freeze_backbone(trainer.current_epoch < self.phase1_epochs)  # type: ignore[operator]

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        frozen = trainer.current_epoch < self.phase1_epochs
        if frozen != getattr(pl_module, "backbone_frozen", None):
            logger.info(
                "epoch %d: phase %d (backbone %s)",
                trainer.current_epoch,
                1 if frozen else 2,
                "frozen" if frozen else "trainable",
            )
        pl_module.freeze_backbone(frozen)  # type: ignore[operator]
        pl_module.log("phase", 1.0 if frozen else 2.0, on_step=False, on_epoch=True)


class EmbeddingProjection(pl.Callback):
    """Project validation embeddings to 2-D with t-SNE every ``every_n_epochs`` epochs and at the last.

    Projections are appended to a JSON file (for reports) and logged to W&B, as a table and as a scatter
    plot coloured by class, when a W&B logger is attached. The module must expose ``collect_embeddings``
    and ``val_embeddings``.
    """

    def __init__(self, path: Path, every_n_epochs: int, max_points: int = 1000, seed: int = 0) -> None:
        self.path = Path(path)
        self.every_n_epochs = every_n_epochs
        self.max_points = max_points
        self.seed = seed
        self.projections: list[dict[str, Any]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"projections": self.projections}  # a resumed run keeps the earlier epochs' projections

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.projections = list(state_dict["projections"])

    def _due(self, trainer: pl.Trainer) -> bool:
        epoch = trainer.current_epoch
        return not trainer.sanity_checking and (
            (epoch + 1) % self.every_n_epochs == 0 or epoch + 1 == trainer.max_epochs
        )

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.val_embeddings.clear()  # type: ignore[union-attr]
        pl_module.collect_embeddings = self._due(trainer)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not pl_module.collect_embeddings or not pl_module.val_embeddings:  # type: ignore[union-attr]
            return
        pl_module.collect_embeddings = False
        features = torch.cat([f for f, _ in pl_module.val_embeddings]).numpy()  # type: ignore[union-attr]
        labels = torch.cat([y for _, y in pl_module.val_embeddings]).numpy()  # type: ignore[union-attr]
        pl_module.val_embeddings.clear()  # type: ignore[union-attr]
        if trainer.global_rank != 0 or len(labels) < MIN_POINTS:
            return
        record = {"epoch": trainer.current_epoch, **tsne_projection(features, labels, self.max_points, self.seed)}
        self.projections.append(record)
        atomic_write_text(self.path, json.dumps({"projections": self.projections}))
        names = pl_module.hparams.get("class_names") or [str(c) for c in range(int(labels.max()) + 1)]
        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                import wandb

                # The report's figure: the table alone shows no picture, and W&B's own scatter cannot colour by class.
                from satpipe.reporting.classification import tsne_figure

                rows = [[x, y, names[c]] for x, y, c in zip(record["x"], record["y"], record["label"], strict=True)]
                table = wandb.Table(columns=["x", "y", "class"], data=rows)
                figure = wandb.Plotly(tsne_figure(record, names))
                lg.log_metrics({"val_tsne": table, "val_tsne_plot": figure}, step=trainer.global_step)  # type: ignore[dict-item]


class FiniteLoss(pl.Callback):
    """Stop training at the first loss that is NaN or infinite, before its gradients reach the weights.

    Such a loss poisons every weight it flows back into: training on would only produce a model that
    predicts nothing, and score it. Every process checks its own loss and all stop together.
    """

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        if trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss).all()), all=True):
            return
        value = loss.detach().float().cpu().item()
        raise NonFiniteLossError(
            f"training loss became {value} at epoch {trainer.current_epoch}, step {trainer.global_step}; "
            "look for NaN, infinite or extreme input values, or lower the learning rate"
        )


class EpochTimer(pl.Callback):
    """Log the seconds each epoch's training batches take as ``epoch_time`` (validation excluded).

    Lightning validates before ``on_train_epoch_end``, so the clock stops at the last training batch.
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last = time.perf_counter()  # a run resumed mid-epoch times what is left of it

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if trainer.is_last_batch and pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # kernels still queued belong to this epoch
        self._last = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.log("epoch_time", self._last - self._start, on_step=False, on_epoch=True)


class PredictionOverlays(pl.Callback):
    """Log a few validation patches with ground-truth and predicted masks to W&B every ``every_n_epochs``."""

    def __init__(self, every_n_epochs: int = 1, count: int = 4) -> None:
        self.every_n_epochs, self.count = every_n_epochs, count

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if trainer.sanity_checking or not loggers or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        import wandb

        batch = next(iter(trainer.datamodule.val_dataloader()))  # type: ignore[attr-defined]
        x, mask = batch["image"][: self.count].to(pl_module.device), batch["mask"][: self.count]
        with torch.inference_mode():
            pred = pl_module(x).argmax(dim=1).cpu().numpy().astype(np.uint8)
            rgb = [percentile_stretch(image[:3].float().cpu().numpy()) for image in x]
        labels = {**dict(enumerate(pl_module.class_names)), 255: "no data"}
        images = [
            wandb.Image(
                rgb[i],
                masks={
                    "ground_truth": {"mask_data": mask[i].numpy().astype(np.uint8), "class_labels": labels},
                    "prediction": {"mask_data": pred[i], "class_labels": labels},
                },
            )
            for i in range(len(x))
        ]
        # Lightning's logger lets W&B count its own steps and records the trainer's as a metric; an explicit
        # step would lag W&B's count and be dropped.
        loggers[0].experiment.log({"val_predictions": images, "trainer/global_step": trainer.global_step})


RESUME_CHECKPOINT = "resume.ckpt"


def rng_states() -> dict[str, Any]:
    """Every random number generator a training step may draw from, as tensors and plain numbers.

    Plain types keep the checkpoint loadable with ``torch.load(weights_only=True)``.
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(python_state), python_gauss],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` captured."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, python_state, python_gauss = states["python"]
    random.setstate((version, tuple(python_state), python_gauss))


class ResumeCheckpoint(pl.Callback):
    """Write ``resume.ckpt`` into ``folder`` every ``every_n_steps`` optimizer steps and at every epoch end.

    Each is written to a temporary name and renamed, so a killed run never leaves a torn file. Beside
    what Lightning saves (weights, optimizer, scheduler, loop counters, callback states) it holds the
    random number generator states and how many batches of the epoch were done; a run started from it
    skips those batches of the same shuffled order and restores the generators before its first step,
    so it repeats the interrupted run exactly (with deterministic algorithms). ``on_saved(folder)``
    runs after each save, for a copy to durable storage.
    """

    def __init__(self, folder: Path, every_n_steps: int, on_saved: Callable[[Path], None] | None = None) -> None:
        self.folder, self.every_n_steps, self.on_saved = Path(folder), every_n_steps, on_saved
        self._pending: dict[str, Any] | None = None
        self._restore: dict[str, Any] | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step, batch_idx = trainer.global_step, args[-1]
        if self.every_n_steps and step % self.every_n_steps == 0 and not trainer.is_last_batch:
            self._save(trainer, done_batches=batch_idx + 1)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, done_batches=0)

    def _save(self, trainer: pl.Trainer, done_batches: int) -> None:
        self._pending = {"rng": rng_states(), "done_batches": done_batches}
        tmp = self.folder / f".{RESUME_CHECKPOINT}.partial"
        # Everything a resumed run needs, not the weights only; every process takes part, the first alone writes.
        trainer.save_checkpoint(tmp, weights_only=False)
        self._pending = None
        if trainer.is_global_zero:
            os.replace(tmp, self.folder / RESUME_CHECKPOINT)
            if self.on_saved is not None:
                self.on_saved(self.folder)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._pending is not None:
            checkpoint["satpipe_resume"] = self._pending

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._restore = checkpoint.get("satpipe_resume")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._restore and self._restore["done_batches"]:
            loaders = trainer.train_dataloader
            for loader in loaders.flattened if isinstance(loaders, CombinedLoader) else [loaders]:
                if isinstance(loader.sampler, EpochSampler):
                    loader.sampler.skip(self._restore["done_batches"] * loader.batch_size)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self._restore is not None:
            set_rng_states(self._restore["rng"])
            self._restore = None
