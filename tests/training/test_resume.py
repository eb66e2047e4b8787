"""Preemption-safe training: a run killed with SIGKILL mid-epoch and run again ends exactly as an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from satpipe.training.callbacks import RESUME_CHECKPOINT
from satpipe.training.fit import fit_segmenter
from satpipe.training.history import epoch_series, read_metrics_csv

pytestmark = pytest.mark.slow

SETTINGS = {
    "arch": "unet_small", "normalization": "percentile", "epochs": 3, "lr": 1e-3, "weight_decay": 1e-4, "loss": "ce",
    "augment": True, "slidemix": True, "slidemix_gamma": 2, "slidemix_beta": 1.0, "batch_size": 8, "num_workers": 0,
    "precision": "32-true", "save_top_k": 1, "early_stopping_patience": None, "overlays_every": 1, "seed": 5,
    "deterministic": True, "resume_every_n_steps": 2, "progress": False,
}  # fmt: skip
TRAIN = (
    "import sys; from pathlib import Path; from satpipe.training.fit import fit_segmenter; "
    "fit_segmenter(Path(sys.argv[1]), Path(sys.argv[2]), work_dir=Path(sys.argv[3]), **eval(sys.argv[4]))"
)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six training steps per epoch of 64-pixel patches from four small synthetic scenes."""
    from satpipe.data.patches import prepare_cloud_patches
    from satpipe.io.synthetic.clouds import write_cloud_dataset

    root = tmp_path_factory.mktemp("resume_data")
    write_cloud_dataset(root / "raw", train_scenes=4, test_scenes=1, size=256, seed=1, progress=False)
    prepare_cloud_patches(root / "raw", root / "prepared", patch_size=64, overlap=0, min_valid_fraction=0.2,
                          val_fraction=0.25, split_seed=0, progress=False)  # fmt: skip
    return root / "prepared"


def train(prepared: Path, out: Path, work: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", TRAIN, str(prepared), str(out), str(work), repr(SETTINGS)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def test_a_run_killed_mid_epoch_resumes_to_the_same_weights_and_metrics(prepared: Path, tmp_path: Path) -> None:
    assert train(prepared, tmp_path / "whole", tmp_path / "work-whole").wait(timeout=600) == 0

    killed = train(prepared, tmp_path / "resumed", tmp_path / "work")
    resume, deadline, step = tmp_path / "work" / RESUME_CHECKPOINT, time.monotonic() + 600, 0
    while step < 8 and time.monotonic() < deadline:  # past the first epoch (6 steps), part-way into the second
        time.sleep(0.2)
        if resume.exists():
            step = torch.load(resume, map_location="cpu", weights_only=True, mmap=True)["global_step"]
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL and step >= 8 and step % 6 != 0  # mid-epoch
    assert not (tmp_path / "resumed").exists() and resume.exists()  # no output yet; the work folder survived

    assert train(prepared, tmp_path / "resumed", tmp_path / "work").wait(timeout=600) == 0
    whole, resumed = weights(tmp_path / "whole"), weights(tmp_path / "resumed")
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    histories = [read_metrics_csv(tmp_path / run / "metrics.csv") for run in ("whole", "resumed")]
    for key in ("val_jaccard", "val_loss", "val_accuracy"):
        series = [epoch_series(history, key) for history in histories]
        assert series[0] == series[1] and len(series[0][0]) == 3, key
    # The interrupted epoch's mean training loss covers only the batches after the resume; the next is whole.
    last = [epoch_series(history, "train_loss_epoch")[1][-1] for history in histories]
    assert last[0] == last[1]
    assert not (tmp_path / "work").exists()  # cleaned up once the output was placed


def test_deterministic_runs_repeat_bit_for_bit_and_seeds_differ(prepared: Path, tmp_path: Path) -> None:
    quick = {**SETTINGS, "epochs": 1, "resume_every_n_steps": 0}
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        fit_segmenter(prepared, tmp_path / name, **{**quick, "seed": seed})
        runs[name] = weights(tmp_path / name)
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])
