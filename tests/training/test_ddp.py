"""Two training processes on a CPU (DDP over gloo): they agree on the weights, and only the first writes and logs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from satpipe.artifacts import read_manifest
from satpipe.training.history import epoch_series, read_metrics_csv
from tests import wandb_log

pytestmark = pytest.mark.slow

# Lightning's DDP launcher starts the second process by running this script again with LOCAL_RANK=1.
SCRIPT = """
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
import wandb
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from satpipe.artifacts import read_manifest
from satpipe.data.patches import PATCH_STAGE
from satpipe.data.segmentation import PatchDataModule
from satpipe.training.fit import normalization_range
from satpipe.training.trainer import train_and_record
from satpipe.training.segmentation import Segmenter

prepared, out, ranks = map(Path, sys.argv[1:4])


class SaveWeights(pl.Callback):
    def on_train_end(self, trainer, module):
        torch.save(module.state_dict(), ranks / f"rank{trainer.global_rank}.pt")


pl.seed_everything(0)
manifest = read_manifest(prepared, PATCH_STAGE)
low, high = normalization_range(manifest, "percentile")
module = Segmenter(arch="unet_small", band_names=manifest["bands"], low=low, high=high, lr=3e-3, slidemix=False)
# As flyteplugins-wandb does under a distributed launch: a W&B run on rank 0 only.
run = wandb.init(mode="offline", dir=str(ranks), project="ddp") if rank_zero_only.rank == 0 else None
result = train_and_record(
    module, PatchDataModule(prepared, batch_size=4), out, callbacks=lambda folder: [SaveWeights()], epochs=3,
    save_top_k=1, precision="32-true", early_stopping_patience=None, wandb_run=run, progress=False, devices=2,
    accelerator="cpu", seed=0,
)
if run is not None:
    run.finish()
(ranks / f"returned{rank_zero_only.rank}").write_text(str(sorted(result)))
"""


def test_two_processes_agree_and_only_the_first_writes_and_logs(trained_segmenter, tmp_path: Path) -> None:
    script, ranks, out = tmp_path / "ddp_train.py", tmp_path / "ranks", tmp_path / "out"
    script.write_text(SCRIPT)
    ranks.mkdir()
    done = subprocess.run([sys.executable, str(script), str(trained_segmenter["prepared"]), str(out), str(ranks)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (torch.load(ranks / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert "best_checkpoint" in (ranks / "returned0").read_text() and (ranks / "returned1").read_text() == "[]"

    manifest = read_manifest(out)
    assert manifest["seed"] == 0 and (out / manifest["best_checkpoint"]).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp_train.py", "out", "ranks"]  # nothing else written
    _, jaccard = epoch_series(read_metrics_csv(out / "metrics.csv"), "val_jaccard")
    assert len(jaccard) == 3 and jaccard[-1] > 0.3  # it learned, with batches split over two processes

    runs = list((ranks / "wandb").glob("offline-run-*"))
    assert len(runs) == 1  # the second process logged nowhere
    logged = [
        row["val_jaccard"] for row in wandb_log.history(next(runs[0].glob("run-*.wandb"))) if "val_jaccard" in row
    ]
    assert logged == pytest.approx(jaccard)
