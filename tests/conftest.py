"""Shared fixtures: real sample data, small synthetic EuroSAT, and an isolated Flyte/W&B home."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = PROJECT_ROOT.parent / "shared" / "data" / "real"
#: The common EuroSAT split, seeded.
SPLIT_60_20_20 = {"train_fraction": 0.6, "val_fraction": 0.2, "split_seed": 0, "max_per_class": None}


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real satellite samples beside the project (../shared/data/real)."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real sample data not found at {REAL_DATA} (expected ../shared/data/real beside the project)")
    return REAL_DATA


@pytest.fixture(scope="session")
def synthetic_eurosat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic EuroSAT (12 chips per class) in both published layouts."""
    from satpipe.io.synthetic.eurosat import write_dataset

    root = tmp_path_factory.mktemp("synthetic_eurosat")
    write_dataset(root, per_class=12, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def prepared_rgb(synthetic_eurosat: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small synthetic EuroSAT RGB, prepared with a 60/20/20 split."""
    from satpipe.data.eurosat import prepare_eurosat

    out = tmp_path_factory.mktemp("prepared") / "rgb"
    prepare_eurosat(synthetic_eurosat, out, bands="rgb", **SPLIT_60_20_20, progress=False)
    return out


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME and working directory, so Flyte's cache and W&B files never touch the user's."""
    home = tmp_path / "home"
    home.mkdir()
    # uv keeps its package cache under HOME; point it at the real one so nothing is downloaded again.
    monkeypatch.setenv("UV_CACHE_DIR", os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


#: A smaller version of the quickstart preset, for tests that need a genuinely trained classifier.
SMALL_TRAINING = {
    "backbone": "resnet10t",
    "pretrained": False,
    "drop_rate": 0.0,
    "input_size": None,
    "epochs": 6,
    "phase1_epochs": 1,
    "phase1_lr": 2e-3,
    "phase2_lr": 3e-3,
    "backbone_lr_ratio": 1.0,
    "weight_decay": 0.01,
    "warmup_steps": 5,
    "label_smoothing": 0.0,
    "augment": True,
    "batch_size": 32,
    "num_workers": 0,
    "precision": "32-true",
    "save_top_k": 3,
    "early_stopping_patience": None,
    "tsne_every": 3,
    "seed": 0,
}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic EuroSAT (50 chips per class) -> prepared -> trained -> evaluated, with the library alone."""
    from satpipe.data.eurosat import prepare_eurosat
    from satpipe.evaluation.classification import evaluate_classifier
    from satpipe.io.synthetic.eurosat import write_dataset
    from satpipe.training.fit import fit_classifier

    root = tmp_path_factory.mktemp("trained_run")
    write_dataset(root / "raw", per_class=50, seed=11, progress=False)
    prepare_eurosat(root / "raw", root / "prepared", bands="rgb", **SPLIT_60_20_20, progress=False)
    fit_classifier(root / "prepared", root / "train", **SMALL_TRAINING, progress=False)
    evaluate_classifier(root / "prepared", root / "train", root / "evaluate")
    return {name: root / name for name in ("raw", "prepared", "train", "evaluate")}


#: A smaller version of the clouds preset: Sat-UNet on six 512-pixel synthetic scenes.
SMALL_SEGMENTATION = {
    "arch": "satunet", "normalization": "percentile", "epochs": 5, "lr": 1e-3, "weight_decay": 1e-4, "loss": "ce",
    "augment": True, "slidemix": True, "slidemix_gamma": 2, "slidemix_beta": 1.0, "batch_size": 16, "num_workers": 0,
    "precision": "32-true", "save_top_k": 2, "early_stopping_patience": None, "overlays_every": 1, "seed": 0,
}  # fmt: skip
SMALL_EVALUATION = {
    "threshold": 0.5,
    "window": 256,
    "overlap": 64,
    "blend": "cosine",
    "batch_size": 4,
    "cross_dataset": True,
}


@pytest.fixture(scope="session")
def synthetic_clouds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic cloudy scenes (six training, two test, 512 pixels) in every layout the generator writes."""
    from satpipe.io.synthetic.clouds import write_cloud_dataset

    root = tmp_path_factory.mktemp("synthetic_clouds")
    write_cloud_dataset(root, train_scenes=6, test_scenes=2, size=512, seed=3, progress=False)
    return root


@pytest.fixture(scope="session")
def trained_segmenter(synthetic_clouds: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The synthetic clouds patched, a Sat-UNet trained on them, and its evaluation, with the library alone."""
    from satpipe.data.patches import prepare_cloud_patches
    from satpipe.evaluation.segmentation import evaluate_segmenter
    from satpipe.training.fit import fit_segmenter

    root = tmp_path_factory.mktemp("trained_segmenter")
    prepare_cloud_patches(synthetic_clouds, root / "prepared", patch_size=128, overlap=0, min_valid_fraction=0.2,
                          val_fraction=0.2, split_seed=0, progress=False)  # fmt: skip
    fit_segmenter(root / "prepared", root / "train", **SMALL_SEGMENTATION, progress=False)
    evaluate_segmenter(synthetic_clouds, root / "prepared", root / "train", root / "evaluate", **SMALL_EVALUATION,
                       progress=False)  # fmt: skip
    return {
        "raw": synthetic_clouds,
        "prepared": root / "prepared",
        "train": root / "train",
        "evaluate": root / "evaluate",
    }


@pytest.fixture(scope="session")
def cloudmask_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic CloudMask files: four training scenes (one-day/) and one test scene (ssts/), full 1200 x 1500."""
    from satpipe.io.synthetic.cloudmask import write_cloudmask_dataset

    root = tmp_path_factory.mktemp("cloudmask_raw")
    write_cloudmask_dataset(root, train_files=4, test_files=1, seed=5, progress=False)
    return root


#: The cloudmask preset's training, shrunk: Sat-UNet for three epochs.
CLOUDMASK_TRAINING = {
    **SMALL_SEGMENTATION, "normalization": "cloudmask", "epochs": 3, "slidemix": False, "augment": False,
    "batch_size": 8, "save_top_k": 1,
}  # fmt: skip


@pytest.fixture(scope="session")
def cloudmask_runs(cloudmask_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The synthetic CloudMask files patched, trained with two seeds and evaluated, with the library alone."""
    from satpipe.data.cloudmask import prepare_cloudmask
    from satpipe.evaluation.cloudmask import evaluate_cloudmask
    from satpipe.training.fit import fit_segmenter

    root = tmp_path_factory.mktemp("cloudmask_runs")
    prepare_cloudmask(cloudmask_raw, root / "prepared", val_fraction=0.25, split_seed=0, max_files=None,
                      progress=False)  # fmt: skip
    runs = {"raw": cloudmask_raw, "prepared": root / "prepared", "train": [], "evaluate": []}
    for seed in (0, 1):
        fit_segmenter(root / "prepared", root / f"train{seed}", **{**CLOUDMASK_TRAINING, "seed": seed}, progress=False)
        evaluate_cloudmask(cloudmask_raw, root / "prepared", root / f"train{seed}", root / f"evaluate{seed}",
                           threshold=0.5, overlap=80, blend="cosine", batch_size=4, progress=False)  # fmt: skip
        runs["train"].append(root / f"train{seed}")
        runs["evaluate"].append(root / f"evaluate{seed}")
    return runs
