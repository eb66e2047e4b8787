"""Checkpoints load without running code from them: evaluation, prediction and export (load_trained), and resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from satpipe.errors import DataError
from satpipe.training.callbacks import RESUME_CHECKPOINT
from satpipe.training.checkpoints import load_trained
from satpipe.training.fit import fit_classifier
from tests.conftest import SMALL_TRAINING
from tests.unsafe import unsafe_checkpoint


def test_load_trained_refuses_a_checkpoint_that_would_run_code(trained_run, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    unsafe = unsafe_checkpoint(trained_run["train"] / "checkpoints" / "last.ckpt", tmp_path / "unsafe.ckpt", marker)
    with pytest.raises(DataError, match=r"unsafe.ckpt: refused: it references io.open") as caught:
        load_trained(unsafe)
    assert "\n" not in str(caught.value) and not marker.exists()
    assert load_trained(trained_run["train"]).hparams.class_names  # the real one still loads


def test_resume_refuses_a_checkpoint_that_would_run_code(prepared_rgb: Path, tmp_path: Path) -> None:
    work, marker = tmp_path / "work", tmp_path / "marker"
    work.mkdir()
    unsafe_checkpoint(None, work / RESUME_CHECKPOINT, marker)
    with pytest.raises(DataError, match=rf"{RESUME_CHECKPOINT}: refused: it references io.open"):
        fit_classifier(prepared_rgb, tmp_path / "train", **SMALL_TRAINING, work_dir=work, progress=False)
    assert not marker.exists() and not (tmp_path / "train").exists()
