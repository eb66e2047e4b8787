"""The trainer every task family shares: assembly, resumable and distributed fitting, and the training manifest."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from satpipe.artifacts import atomic_dir, write_manifest
from satpipe.training.callbacks import RESUME_CHECKPOINT, FiniteLoss, ResumeCheckpoint
from satpipe.training.safe_load import WEIGHTS_ONLY, read_checkpoint

logger = logging.getLogger(__name__)

TRAIN_STAGE = "train"
CHECKPOINT_DIR = "checkpoints"
METRICS_CSV = "metrics.csv"
EARLIER_METRICS_CSV = "metrics.before-resume.csv"


#: Lines Lightning prints on every run that say nothing about it: advertisements for other products, an
#: accelerator satpipe never uses, how it counts steps. Its warnings, the GPU line and why fitting stopped stay.
LIGHTNING_NOISE = (
    "💡 Tip: ",
    "TPU available: False",
    "Loading `train_dataloader` to estimate number of stepping batches",
)


class _DropLightningNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(LIGHTNING_NOISE)


def quiet_lightning() -> None:
    """Silence Lightning's noise (``LIGHTNING_NOISE``, one deprecation of its own making); safe to call again."""
    log = logging.getLogger("pytorch_lightning.utilities.rank_zero")  # where rank_zero_info logs
    if not any(isinstance(f, _DropLightningNoise) for f in log.filters):
        log.addFilter(_DropLightningNoise())
    # Lightning's own tree flattening builds the LeafSpec that torch deprecated; nothing a user can act on.
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
        module=r"pytorch_lightning\.utilities\._pytree",
    )


def resolve_precision(precision: str) -> str:
    """Turn ``"auto"`` into bf16-mixed on GPUs that support it, 16-mixed on older GPUs, 32-true on CPU."""
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported(including_emulation=False) else "16-mixed"
    return "32-true"


def live_run(run: Any) -> Any:
    """``run``, or None for no run or a disabled one (``tracking.mode=disabled``: a stand-in that keeps nothing)."""
    return None if run is None or run.disabled else run


def wandb_summary(run: Any) -> dict[str, Any] | None:
    """Where a W&B run lives: enough for a user to find it again (no credentials), and the next step to log at."""
    if live_run(run) is None:
        return None
    return {
        "id": run.id,
        "project": run.project,
        "mode": run.settings.mode,
        "url": None if run.offline else run.url,  # offline, asking for it prints a warning
        "dir": str(Path(run.dir).parent),
        "step": run.step,
    }


def launch_topology() -> tuple[int, int]:
    """Processes per node and nodes of a torch elastic launch (torchrun, Flyte's ``Elastic``); else one of each."""
    local, world = os.environ.get("LOCAL_WORLD_SIZE"), os.environ.get("WORLD_SIZE")
    if local and world:
        return int(local), int(world) // int(local)
    return 1, 1


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
    devices: int | None = None,
    accelerator: str = "auto",
) -> tuple[pl.Trainer, ModelCheckpoint]:
    """A Trainer that logs to ``out_dir/metrics.csv`` (and W&B), keeps the top-k checkpoints by ``monitor``.

    Training stops with :class:`~satpipe.errors.NonFiniteLossError` at the first NaN or infinite loss.

    Returns:
        The trainer and its checkpoint callback (for the best path and scores).
    """
    quiet_lightning()
    loggers: list[Logger] = [CSVLogger(out_dir, name="", version="")]
    if live_run(wandb_run) is not None:
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
    callbacks = [FiniteLoss(), *callbacks, checkpoint, LearningRateMonitor(logging_interval="step")]
    if early_stopping_patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=early_stopping_patience))
    per_node, nodes = launch_topology()
    devices = devices or per_node
    trainer = pl.Trainer(
        default_root_dir=out_dir,
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=devices,
        num_nodes=nodes,
        strategy="ddp" if devices * nodes > 1 else "auto",
        precision=resolve_precision(precision),  # type: ignore[arg-type]
        logger=loggers,
        callbacks=callbacks,
        log_every_n_steps=1,
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=deterministic,
    )
    return trainer, checkpoint


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
    devices: int | None = None,
    accelerator: str = "auto",
    **manifest_fields: Any,
) -> dict[str, Any]:
    """Fit ``module`` into ``out_dir`` (placed only when training finishes) and write the training manifest.

    With several processes (DDP: ``devices``, or a torch elastic launch), each runs this function; the
    first alone writes the output, checkpoints, logs and manifest, and the others return ``{}``.

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
        devices: Processes (GPUs) on this node; by default those of the launch, or one.
        accelerator: Lightning's accelerator (``"cpu"`` to run several processes without GPUs).
        **manifest_fields: Recorded in the manifest.

    Returns:
        The manifest.
    """
    first = rank_zero_only.rank == 0
    with atomic_dir(out_dir) if first else scratch_dir() as tmp:
        # Only the first process writes; the others get a folder of their own that is thrown away.
        folder = Path(work_dir) if work_dir and first else tmp
        folder.mkdir(parents=True, exist_ok=True)
        saved = Path(work_dir or folder) / RESUME_CHECKPOINT
        resume = saved if work_dir and saved.is_file() else None
        extra = [ResumeCheckpoint(folder, resume_every_n_steps, on_checkpoint)] if work_dir else []
        if resume is not None:
            read_checkpoint(resume)  # refuse an unsafe or damaged file in one line, before anything starts
        if resume is not None and first:
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
            devices=devices,
            accelerator=accelerator,
        )
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=WEIGHTS_ONLY)
        manifest_fields["fit_seconds"] = round(time.perf_counter() - start, 2)
        if not first:
            return {}
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


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="satpipe-rank-") as tmp:
        yield Path(tmp)


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
