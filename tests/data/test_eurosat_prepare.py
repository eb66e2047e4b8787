import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from satpipe.artifacts import read_manifest
from satpipe.data.chips import ChipDataModule, band_stats
from satpipe.data.eurosat import prepare_eurosat
from satpipe.errors import DataError
from satpipe.io.eurosat import CLASSES, find_image_root, read_chip
from tests.conftest import SPLIT_60_20_20 as SPLIT


def test_prepared_arrays_match_files_and_split(prepared_rgb: Path, synthetic_eurosat: Path) -> None:
    manifest = read_manifest(prepared_rgb, "prepare")
    assert manifest["counts"]["train"] == [7] * 10 and manifest["counts"]["test"] == [3] * 10  # 12 per class
    images = np.load(prepared_rgb / "val_images.npy")
    labels = np.load(prepared_rgb / "val_labels.npy")
    root = find_image_root(synthetic_eurosat, "rgb")
    for row, rel in enumerate(manifest["files"]["val"]):
        assert np.array_equal(images[row], read_chip(root / rel, "rgb"))
        assert CLASSES[labels[row]] == rel.split("/")[0]
    assert not set(manifest["files"]["train"]) & set(manifest["files"]["test"])


def test_statistics_come_from_the_training_split_only(prepared_rgb: Path) -> None:
    manifest = read_manifest(prepared_rgb, "prepare")
    train = np.load(prepared_rgb / "train_images.npy").astype(np.float64) / 255.0
    assert np.allclose(manifest["mean"], train.mean(axis=(0, 2, 3)), atol=1e-9)
    assert np.allclose(manifest["std"], train.std(axis=(0, 2, 3)), atol=1e-9)
    every = np.concatenate([np.load(prepared_rgb / f"{s}_images.npy") for s in ("train", "val", "test")]) / 255.0
    assert not np.allclose(manifest["mean"], every.mean(axis=(0, 2, 3)), atol=1e-6)


def test_band_stats_in_chunks_equals_numpy() -> None:
    data = np.random.default_rng(0).integers(0, 10000, size=(37, 13, 8, 8), dtype=np.uint16)
    mean, std = band_stats(data, 10000.0, chunk=5)
    assert np.allclose(mean, (data / 10000.0).mean(axis=(0, 2, 3))) and np.allclose(
        std, (data / 10000.0).std(axis=(0, 2, 3))
    )


def test_ms_product_and_subsampling(synthetic_eurosat: Path, tmp_path: Path) -> None:
    manifest = prepare_eurosat(
        synthetic_eurosat, tmp_path / "ms", bands="ms", **{**SPLIT, "max_per_class": 5}, progress=False
    )
    assert manifest["chip_shape"] == [13, 64, 64] and manifest["dtype"] == "uint16" and len(manifest["mean"]) == 13
    assert sum(manifest["counts"]["train"]) + sum(manifest["counts"]["val"]) + sum(manifest["counts"]["test"]) == 50


def test_datamodule_serves_float_batches(prepared_rgb: Path) -> None:
    batch = next(iter(ChipDataModule(prepared_rgb, batch_size=8).train_dataloader()))
    assert batch["image"].shape == (8, 3, 64, 64) and batch["image"].dtype.is_floating_point
    assert batch["image"].max() > 1  # raw values: normalisation belongs to the model


def test_corrupt_chip_stops_the_stage_and_leaves_no_output(synthetic_eurosat: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(synthetic_eurosat / "2750", raw / "2750")
    bad = raw / "2750" / "Pasture" / "Pasture_7.jpg"
    bad.write_bytes(bad.read_bytes()[:64])
    with pytest.raises(DataError, match="Pasture_7.jpg: unreadable"):
        prepare_eurosat(raw, tmp_path / "out", bands="rgb", **SPLIT, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no output, no partial folder


def test_chip_of_another_size_is_named(synthetic_eurosat: Path, tmp_path: Path) -> None:
    from PIL import Image

    raw = tmp_path / "raw"
    shutil.copytree(synthetic_eurosat / "2750", raw / "2750")
    Image.new("RGB", (32, 32)).save(raw / "2750" / "Highway" / "Highway_3.jpg")
    with pytest.raises(DataError, match=r"Highway_3.jpg: shape \(3, 32, 32\)"):
        prepare_eurosat(raw, tmp_path / "out", bands="rgb", **SPLIT, progress=False)


def test_the_odd_chip_is_named_even_when_it_is_read_first(synthetic_eurosat: Path, tmp_path: Path) -> None:
    from PIL import Image

    raw = tmp_path / "raw"
    shutil.copytree(synthetic_eurosat / "2750", raw / "2750")
    Image.new("RGB", (32, 32)).save(raw / "2750" / "AnnualCrop" / "AnnualCrop_1.jpg")
    message = r"AnnualCrop_1.jpg: shape \(3, 32, 32\), but 119 of 120 chips have shape \(3, 64, 64\)$"
    with pytest.raises(DataError, match=message):
        prepare_eurosat(raw, tmp_path / "out", bands="rgb", **SPLIT, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_manifest_is_valid_json_with_provenance(synthetic_eurosat: Path, tmp_path: Path) -> None:
    prepare_eurosat(synthetic_eurosat, tmp_path / "p", bands="rgb", **SPLIT, progress=False, provenance={"run": "r1"})
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest["run"] == "r1" and manifest["stage"] == "prepare" and manifest["split"]["seed"] == 0
