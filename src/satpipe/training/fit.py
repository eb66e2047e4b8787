"""Fitting the supervised models: the two-phase classifier and the K-class segmenter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from satpipe.artifacts import read_manifest
from satpipe.data.chips import PREPARE_STAGE, ChipDataModule
from satpipe.data.patches import PATCH_STAGE
from satpipe.data.segmentation import PatchDataModule
from satpipe.io.cloudmask import NORM_HIGH, NORM_LOW
from satpipe.training.callbacks import EmbeddingProjection, EpochTimer, PredictionOverlays, TwoPhaseFinetuning
from satpipe.training.classifier import SceneClassifier
from satpipe.training.segmentation import Segmenter
from satpipe.training.trainer import train_and_record

TSNE_JSON = "tsne.json"


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


def normalization_range(prepared: dict[str, Any], normalization: str) -> tuple[list[float], list[float]]:
    """Per-band raw values that map to 0 and 1, from a patch manifest and the normalisation's name."""
    if normalization == "percentile":
        return prepared["percentiles"]["low"], prepared["percentiles"]["high"]
    if normalization == "cloudmask":  # the benchmark's refs - 0.5 and (bts - 270) / 22, unclipped
        return list(NORM_LOW), list(NORM_HIGH)
    return [0.0] * len(prepared["bands"]), [prepared["value_max"]] * len(prepared["bands"])  # fixed: dtype range


def class_weights(frequencies: list[float] | None, scheme: str) -> list[float] | None:
    """Loss weights per class from training-split frequencies: ``none``, or ``inverse_sqrt`` (1/sqrt(f)).

    Weights are scaled to average 1 over the classes present; an absent class gets the largest weight.
    """
    if scheme == "none" or not frequencies:
        return None
    present = [f for f in frequencies if f > 0]
    raw = [f**-0.5 if f > 0 else min(present) ** -0.5 for f in frequencies]
    mean = sum(w for w, f in zip(raw, frequencies, strict=True) if f > 0) / len(present)
    return [w / mean for w in raw]


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
    class_weighting: str = "none",
    encoder: str | None = None,
    pretrained: bool = False,
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

    The classes are the patch manifest's (clear and cloud where it names none). The output folder holds
    the top-k checkpoints by validation Jaccard (two classes) or mIoU and the last one,
    ``metrics.csv`` and a manifest naming the best checkpoint.

    Returns:
        The manifest written to ``out_dir``.
    """
    pl.seed_everything(seed, workers=True, verbose=False)
    prepared = read_manifest(Path(prepared_dir), PATCH_STAGE)
    low, high = normalization_range(prepared, normalization)
    module = Segmenter(
        arch=arch,
        band_names=prepared["bands"],
        low=low,
        high=high,
        class_names=prepared.get("classes"),
        class_colors=prepared.get("colors"),
        class_weights=class_weights(prepared.get("class_frequencies"), class_weighting),
        lr=lr,
        weight_decay=weight_decay,
        loss=loss,
        augment=augment,
        slidemix=slidemix,
        slidemix_gamma=slidemix_gamma,
        slidemix_beta=slidemix_beta,
        clip=normalization != "cloudmask",
        encoder=encoder,
        pretrained=pretrained,
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
