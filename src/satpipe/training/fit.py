"""Fitting models: trainer assembly shared by every task family, and the classifier's fit."""

from __future__ import annotations

import csv
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger

from satpipe.artifacts import atomic_dir, read_manifest, write_manifest
from satpipe.data.chips import PREPARE_STAGE, ChipDataModule
from satpipe.data.patches import PATCH_STAGE
from satpipe.data.segmentation import PatchDataModule
from satpipe.io.cloudmask import NORM_HIGH, NORM_LOW
from satpipe.training.callbacks import (
    RESUME_CHECKPOINT,
    EmbeddingProjection,
    EpochTimer,
    PredictionOverlays,
    ResumeCheckpoint,
    TwoPhaseFinetuning,
)
from satpipe.training.classifier import SceneClassifier
from satpipe.training.segmentation import CloudSegmenter

logger = logging.getLogger(__name__)

TRAIN_STAGE = "train"
CHECKPOINT_DIR = "checkpoints"
METRICS_CSV = "metrics.csv"
TSNE_JSON = "tsne.json"
EARLIER_METRICS_CSV = "metrics.before-resume.csv"


def resolve_precision(precision: str) -> str:
    """Turn ``"auto"`` into bf16-mixed on GPUs that support it, 16-mixed on older GPUs, 32-true on CPU."""
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported(including_emulation=False) else "16-mixed"
    return "32-true"


def wandb_summary(run: Any) -> dict[str, Any] | None:
    """Where a W&B run lives: enough for a user to find it again (no credentials)."""
    if run is None:
        return None
    return {
        "id": run.id,
        "project": run.project,
        "mode": run.settings.mode,
        "url": run.url,
        "dir": str(Path(run.dir).parent),
    }


def build_trainer(
    out_dir: Path,
    *,
    max_epochs: int,
    monitor: str,
    mode: str,
    save_top_k: int,
    precision: str,
    early_stopping_patience: int | None,
    callbacks: list[pl.Callback],
    wandb_run: Any = None,
    progress: bool = True,
    deterministic: bool = False,
) -> tuple[pl.Trainer, ModelCheckpoint]:
    """A Trainer that logs to ``out_dir/metrics.csv`` (and W&B), keeps the top-k checkpoints by ``monitor``.

    Returns:
        The trainer and its checkpoint callback (for the best path and scores).
    """
    loggers: list[Logger] = [CSVLogger(out_dir, name="", version="")]
    if wandb_run is not None:
        loggers.append(WandbLogger(experiment=wandb_run, log_model=False))
    checkpoint = ModelCheckpoint(
        dirpath=out_dir / CHECKPOINT_DIR,
        monitor=monitor,
        mode=mode,
        save_top_k=save_top_k,
        save_last=True,
        filename=f"epoch{{epoch:02d}}-{monitor}{{{monitor}:.4f}}",
        auto_insert_metric_name=False,
    )
    callbacks = [*callbacks, checkpoint, LearningRateMonitor(logging_interval="step")]
    if early_stopping_patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=early_stopping_patience))
    trainer = pl.Trainer(
        default_root_dir=out_dir,
        max_epochs=max_epochs,
        accelerator="auto",
        devices=1,
        precision=resolve_precision(precision),  # type: ignore[arg-type]
        logger=loggers,
        callbacks=callbacks,
        log_every_n_steps=1,
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=deterministic,
    )
    return trainer, checkpoint


def fit_classifier(
    prepared_dir: Path,
    out_dir: Path,
    *,
    backbone: str,
    pretrained: bool,
    drop_rate: float,
    input_size: int | None,
    epochs: int,
    phase1_epochs: int,
    phase1_lr: float,
    phase2_lr: float,
    backbone_lr_ratio: float,
    weight_decay: float,
    warmup_steps: int,
    label_smoothing: float,
    augment: bool,
    batch_size: int,
    num_workers: int,
    precision: str,
    save_top_k: int,
    early_stopping_patience: int | None,
    tsne_every: int,
    seed: int,
    deterministic: bool = False,
    resume_every_n_steps: int = 0,
    wandb_run: Any = None,
    progress: bool = True,
    work_dir: Path | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune a timm classifier on a prepared folder in two phases and write the training output.

    The output folder holds the top-k checkpoints (by validation accuracy) and the last one,
    ``metrics.csv`` (every logged value: losses, accuracies, learning rate per parameter group),
    ``tsne.json`` (validation embedding projections) and a manifest naming the best checkpoint.

    Returns:
        The manifest written to ``out_dir``.
    """
    pl.seed_everything(seed, workers=True, verbose=False)
    prepared = read_manifest(Path(prepared_dir), PREPARE_STAGE)
    datamodule = ChipDataModule(Path(prepared_dir), batch_size=batch_size, num_workers=num_workers)
    module = SceneClassifier(
        backbone=backbone,
        class_names=prepared["classes"],
        in_chans=prepared["chip_shape"][0],
        mean=prepared["mean"],
        std=prepared["std"],
        value_scale=prepared["value_scale"],
        pretrained=pretrained,
        drop_rate=drop_rate,
        input_size=input_size,
        phase1_epochs=phase1_epochs,
        phase1_lr=phase1_lr,
        phase2_lr=phase2_lr,
        backbone_lr_ratio=backbone_lr_ratio,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        label_smoothing=label_smoothing,
        augment=augment,
    )
    return train_and_record(
        module,
        datamodule,
        Path(out_dir),
        callbacks=lambda tmp: [
            TwoPhaseFinetuning(phase1_epochs),
            EmbeddingProjection(tmp / TSNE_JSON, tsne_every, seed=seed),
        ],
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
        phase1_epochs=phase1_epochs,
        classes=prepared["classes"],
        seed=seed,
        **(provenance or {}),
    )


def train_and_record(
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    out_dir: Path,
    *,
    callbacks: Callable[[Path], list[pl.Callback]],
    epochs: int,
    save_top_k: int,
    precision: str,
    early_stopping_patience: int | None,
    wandb_run: Any,
    progress: bool,
    deterministic: bool = False,
    resume_every_n_steps: int = 0,
    work_dir: Path | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    **manifest_fields: Any,
) -> dict[str, Any]:
    """Fit ``module`` into ``out_dir`` (placed only when training finishes) and write the training manifest.

    Args:
        module: Exposes ``monitor`` and ``mode`` for checkpoints and early stopping.
        datamodule: Its data.
        out_dir: The stage output to create.
        callbacks: Builds the task family's callbacks, given the folder training writes into.
        epochs: Maximum epochs.
        save_top_k: Checkpoints kept by the monitored metric.
        precision: Lightning precision or ``"auto"``.
        early_stopping_patience: Epochs without improvement before stopping, or None.
        wandb_run: A W&B run to log to, or None.
        progress: Show a progress bar.
        deterministic: Use deterministic algorithms only (bit-reproducible on a CPU for a seed).
        resume_every_n_steps: With ``work_dir``, steps between resume checkpoints (0: epoch ends only).
        work_dir: A folder that outlives an interrupted attempt. Training writes there, saves resume
            checkpoints, and resumes from the latest one it finds; its content becomes ``out_dir``.
        on_checkpoint: Called with ``work_dir`` after each resume checkpoint (to copy it somewhere durable).
        **manifest_fields: Recorded in the manifest.

    Returns:
        The manifest.
    """
    with atomic_dir(out_dir) as tmp:
        folder = Path(work_dir) if work_dir else tmp
        folder.mkdir(parents=True, exist_ok=True)
        resume = folder / RESUME_CHECKPOINT if work_dir and (folder / RESUME_CHECKPOINT).is_file() else None
        extra = [ResumeCheckpoint(folder, resume_every_n_steps, on_checkpoint)] if work_dir else []
        if resume is not None:
            logger.info("resuming from %s", resume)
            history = folder / METRICS_CSV
            if history.exists():
                history.rename(folder / EARLIER_METRICS_CSV)
        trainer, checkpoint = build_trainer(
            folder,
            max_epochs=epochs,
            monitor=module.monitor,
            mode=module.mode,
            save_top_k=save_top_k,
            precision=precision,
            early_stopping_patience=early_stopping_patience,
            callbacks=[*callbacks(folder), *extra],
            wandb_run=wandb_run,
            progress=progress,
            deterministic=deterministic,
        )
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
        manifest_fields["fit_seconds"] = round(time.perf_counter() - start, 2)
        if resume is not None:
            join_histories(folder / EARLIER_METRICS_CSV, folder / METRICS_CSV)
        manifest = write_training_manifest(folder, trainer, checkpoint, module.monitor, wandb_run, **manifest_fields)
        if work_dir:
            (folder / RESUME_CHECKPOINT).unlink(missing_ok=True)
            for item in folder.iterdir():
                shutil.move(item, tmp / item.name)
            folder.rmdir()
        return manifest


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts of text."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def join_histories(earlier: Path, later: Path) -> None:
    """Put an interrupted attempt's metrics before the resumed one's, dropping rows the resumed run repeated."""
    rows_before, rows_after = (read_csv_rows(p) for p in (earlier, later))
    first_step = min((int(r["step"]) for r in rows_after if r.get("step")), default=None)
    kept = [r for r in rows_before if first_step is None or int(r["step"]) < first_step]
    columns = list(dict.fromkeys([*(rows_before[0] if rows_before else {}), *(rows_after[0] if rows_after else {})]))
    with open(later, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(kept + rows_after)
    earlier.unlink()


def write_training_manifest(
    out_dir: Path, trainer: pl.Trainer, checkpoint: ModelCheckpoint, monitor: str, wandb_run: Any, **fields: Any
) -> dict[str, Any]:
    """The training stage's manifest: best and top-k checkpoints, epochs run, where it ran, the W&B run."""
    top_k = sorted(((Path(p).name, float(s)) for p, s in checkpoint.best_k_models.items()), key=lambda t: -t[1])
    return write_manifest(
        out_dir,
        TRAIN_STAGE,
        best_checkpoint=f"{CHECKPOINT_DIR}/{Path(checkpoint.best_model_path).name}",
        best_score=float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None,
        monitor=monitor,
        top_k=[{"checkpoint": f"{CHECKPOINT_DIR}/{name}", "score": score} for name, score in top_k],
        epochs_run=trainer.current_epoch,  # epochs completed (fewer than asked after early stopping)
        precision=str(trainer.precision),
        device=str(trainer.strategy.root_device),
        wandb=wandb_summary(wandb_run),
        **fields,
    )


def normalization_range(prepared: dict[str, Any], normalization: str) -> tuple[list[float], list[float]]:
    """Per-band raw values that map to 0 and 1, from a patch manifest and the normalisation's name."""
    if normalization == "percentile":
        return prepared["percentiles"]["low"], prepared["percentiles"]["high"]
    if normalization == "cloudmask":  # the benchmark's refs - 0.5 and (bts - 270) / 22, unclipped
        return list(NORM_LOW), list(NORM_HIGH)
    return [0.0] * len(prepared["bands"]), [prepared["value_max"]] * len(prepared["bands"])  # fixed: dtype range


def fit_segmenter(
    prepared_dir: Path,
    out_dir: Path,
    *,
    arch: str,
    normalization: str,
    epochs: int,
    lr: float,
    weight_decay: float,
    loss: str,
    augment: bool,
    slidemix: bool,
    slidemix_gamma: int,
    slidemix_beta: float,
    batch_size: int,
    num_workers: int,
    precision: str,
    save_top_k: int,
    early_stopping_patience: int | None,
    overlays_every: int,
    seed: int,
    deterministic: bool = False,
    resume_every_n_steps: int = 0,
    wandb_run: Any = None,
    progress: bool = True,
    work_dir: Path | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train a segmentation network on prepared patches and write the training output.

    The output folder holds the top-k checkpoints by validation Jaccard and the last one,
    ``metrics.csv`` and a manifest naming the best checkpoint.

    Returns:
        The manifest written to ``out_dir``.
    """
    pl.seed_everything(seed, workers=True, verbose=False)
    prepared = read_manifest(Path(prepared_dir), PATCH_STAGE)
    low, high = normalization_range(prepared, normalization)
    module = CloudSegmenter(
        arch=arch,
        band_names=prepared["bands"],
        low=low,
        high=high,
        lr=lr,
        weight_decay=weight_decay,
        loss=loss,
        augment=augment,
        slidemix=slidemix,
        slidemix_gamma=slidemix_gamma,
        slidemix_beta=slidemix_beta,
        clip=normalization != "cloudmask",
    )
    datamodule = PatchDataModule(Path(prepared_dir), batch_size=batch_size, num_workers=num_workers)
    return train_and_record(
        module,
        datamodule,
        Path(out_dir),
        callbacks=lambda tmp: [PredictionOverlays(overlays_every), EpochTimer()],
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
        normalization=normalization,
        bands=prepared["bands"],
        seed=seed,
        **(provenance or {}),
    )
