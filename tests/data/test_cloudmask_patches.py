from pathlib import Path

import numpy as np
import pytest

from satpipe.artifacts import read_manifest
from satpipe.data.cloudmask import CROP_OFFSET, PATCH, prepare_cloudmask, reference_patches, split_files
from satpipe.data.patches import IGNORE, PATCH_STAGE
from satpipe.errors import DataError
from satpipe.io.cloudmask import SCENE_SHAPE, list_files, read_scene


def test_reference_patches_are_the_centre_crop_cut_row_by_row() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((9, *SCENE_SHAPE), dtype=np.float32)
    mask = rng.integers(0, 2, SCENE_SHAPE).astype(np.uint8)
    images, masks = reference_patches(image, mask)
    assert images.shape == (20, 9, PATCH, PATCH) and masks.shape == (20, PATCH, PATCH)
    top, left = CROP_OFFSET
    assert (top, left) == (88, 110)  # centre crop of 1200 x 1500 to 1024 x 1280
    for k in range(20):
        r, c = divmod(k, 5)
        window = np.s_[top + r * PATCH : top + (r + 1) * PATCH, left + c * PATCH : left + (c + 1) * PATCH]
        np.testing.assert_array_equal(images[k], image[(slice(None), *window)])
        np.testing.assert_array_equal(masks[k], mask[window])


def test_split_by_file_is_seeded_whole_and_80_20() -> None:
    files = [Path(f"S3A_{i:02d}.hdf") for i in range(10)]
    split = split_files(files, 0.2, seed=1)
    assert len(split["train"]) == 8 and len(split["val"]) == 2
    assert sorted(split["train"] + split["val"]) == files
    assert split == split_files(files, 0.2, seed=1)
    assert any(split_files(files, 0.2, seed=s)["val"] != split["val"] for s in range(2, 6))
    with pytest.raises(DataError, match="at least 2"):
        split_files(files[:1], 0.2, seed=0)


def test_prepare_cuts_every_training_file_and_masks_no_data(cloudmask_raw: Path, tmp_path: Path) -> None:
    manifest = prepare_cloudmask(cloudmask_raw, tmp_path / "out", val_fraction=0.25, split_seed=0, max_files=None,
                                 progress=False)  # fmt: skip
    assert manifest["counts"] == {"train": 60, "val": 20}
    tests = [p.name for p in list_files(cloudmask_raw, "test")]
    assert read_manifest(tmp_path / "out", PATCH_STAGE)["test_files"] == tests
    images = np.load(tmp_path / "out" / "train_images.npy", mmap_mode="r")
    masks = np.load(tmp_path / "out" / "train_masks.npy", mmap_mode="r")
    assert images.shape == (60, 9, 256, 256) and images.dtype == np.float32 and masks.dtype == np.uint8
    first = sorted(manifest["files"]["train"])[0]
    scene = read_scene(next(cloudmask_raw.rglob(first)))
    expected_images, expected_masks = reference_patches(scene.image, np.where(scene.valid, scene.clouds, IGNORE))
    index = manifest["files"]["train"].index(first) * 20
    np.testing.assert_array_equal(images[index : index + 20], expected_images)
    np.testing.assert_array_equal(masks[index : index + 20], expected_masks)
    # One synthetic file in five carries a NaN stripe along its swath edge: those pixels are ignored.
    all_masks = np.concatenate([masks, np.load(tmp_path / "out" / "val_masks.npy")])
    assert (all_masks == IGNORE).any() and set(np.unique(all_masks)) <= {0, 1, IGNORE}


def test_a_corrupt_test_file_stops_preparation_and_leaves_nothing(cloudmask_raw: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for path in cloudmask_raw.rglob("*.hdf"):
        target = raw / path.relative_to(cloudmask_raw)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    broken = next((raw / "ssts").iterdir())
    broken.unlink()
    broken.write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    with pytest.raises(DataError, match=broken.name):
        prepare_cloudmask(raw, tmp_path / "out", val_fraction=0.2, split_seed=0, max_files=None, progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
