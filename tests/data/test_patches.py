import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from satpipe.data.npy import NpyAppender
from satpipe.data.patches import (
    IGNORE,
    cut,
    grid,
    label_mask,
    prepare_cloud_patches,
    prepare_unlabelled_patches,
    split_scenes,
)
from satpipe.errors import DataError, DatasetNotFoundError


@pytest.mark.parametrize(("size", "patch", "overlap"), [(384, 128, 0), (400, 128, 0), (500, 128, 32), (100, 128, 0)])
def test_grid_covers_the_padded_axis(size: int, patch: int, overlap: int) -> None:
    padded, starts = grid(size, patch, overlap)
    assert padded >= size and starts[-1] + patch == padded and starts[0] == 0
    assert all(b - a == patch - overlap for a, b in itertools.pairwise(starts))
    assert padded - (patch - overlap) < size or len(starts) == 1  # no whole stride of padding


def test_cut_pads_symmetrically_with_nodata() -> None:
    image = np.arange(1, 1 + 2 * 100 * 130, dtype=np.uint16).reshape(2, 100, 130)
    pieces = cut(image, np.ones((100, 130), np.uint8), 128, 0)
    assert len(pieces) == 2  # 100 x 130 pads to 128 x 256
    (left_image, left_mask), _ = pieces
    top = (128 - 100) // 2
    assert left_mask[:top].max() == IGNORE and left_mask[top, 63] == 1
    assert left_image[0, top, (256 - 130) // 2] == image[0, 0, 0]


def test_label_mask_marks_nodata() -> None:
    image = np.ones((4, 3, 3), np.uint16)
    image[:, 0, 0] = 0
    mask = label_mask(image, np.eye(3, dtype=bool))
    assert mask[0, 0] == IGNORE and mask[1, 1] == 1 and mask[0, 1] == 0


def test_scenes_go_whole_to_one_split() -> None:
    split = split_scenes([f"s{i}" for i in range(10)], 0.2, seed=1)
    assert len(split["val"]) == 2 and not set(split["train"]) & set(split["val"]) and len(split["train"]) == 8
    with pytest.raises(DataError, match="at least 2"):
        split_scenes(["only"], 0.2, seed=1)


def test_prepared_patches(trained_segmenter: dict[str, Path]) -> None:
    prepared = trained_segmenter["prepared"]
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert not set(manifest["scenes"]["train"]) & set(manifest["scenes"]["val"])
    images, masks = np.load(prepared / "train_images.npy"), np.load(prepared / "train_masks.npy")
    assert images.shape[1:] == (4, 128, 128) and images.dtype == np.uint16 and set(np.unique(masks)) <= {0, 1, IGNORE}
    assert ((masks != IGNORE).mean(axis=(1, 2)) >= 0.2).all() and manifest["skipped"] > 0  # empty ones were dropped
    valid = np.broadcast_to((masks != IGNORE)[:, None], images.shape)
    train_pixels = images.transpose(1, 0, 2, 3)[:, valid[:, 0]]
    low, high = manifest["percentiles"]["low"], manifest["percentiles"]["high"]
    for band in range(4):  # percentiles of training pixels (estimated from a sample of each patch)
        exact = np.percentile(train_pixels[band], [1, 99])
        assert abs(low[band] - exact[0]) < 0.03 * exact[0] and abs(high[band] - exact[1]) < 0.03 * exact[1]


def test_patches_without_enough_data_are_refused(synthetic_clouds: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="lower data.min_valid_fraction"):
        prepare_cloud_patches(synthetic_clouds, tmp_path / "p", patch_size=128, overlap=0, min_valid_fraction=1.01,
                              val_fraction=0.2, split_seed=0, progress=False)  # fmt: skip
    assert not (tmp_path / "p").exists() and list(tmp_path.iterdir()) == []


def test_unlabelled_scenes_are_cut_like_labelled_ones(synthetic_clouds: Path, tmp_path: Path) -> None:
    # The test split has no per-patch ground truth: its masks stay hidden (all IGNORE).
    test = tmp_path / "test"
    shutil.copytree(synthetic_clouds / "38-Cloud_test", test, ignore=shutil.ignore_patterns("Entire_scene_gts"))
    manifest = prepare_unlabelled_patches(test, tmp_path / "u", patch_size=128, overlap=0, min_valid_fraction=0.2,
                                          progress=False)  # fmt: skip
    images, masks = np.load(tmp_path / "u" / "unlabelled_images.npy"), np.load(tmp_path / "u" / "unlabelled_masks.npy")
    assert (
        images.shape[1:] == (4, 128, 128)
        and images.dtype == np.uint16
        and len(images) == manifest["counts"]["unlabelled"]
    )
    assert (masks == IGNORE).all() and len(manifest["scenes"]) == 2 and manifest["skipped"] > 0
    assert (np.any(images != 0, axis=1).mean(axis=(1, 2)) >= 0.2).all()  # mostly empty patches dropped, as labelled

    # With ground truth beside them, it becomes the hidden mask (for pseudo-label accuracy only).
    prepare_unlabelled_patches(synthetic_clouds / "38-Cloud_training", tmp_path / "h", patch_size=128, overlap=0,
                               min_valid_fraction=0.2, progress=False)  # fmt: skip
    hidden = np.load(tmp_path / "h" / "unlabelled_masks.npy")
    assert set(np.unique(hidden)) == {0, 1, IGNORE}


def test_unlabelled_folders_without_scenes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(DatasetNotFoundError, match=str(folder)):
            prepare_unlabelled_patches(folder, tmp_path / "u", patch_size=128, overlap=0, min_valid_fraction=0.2,
                                       progress=False)  # fmt: skip
        assert not (tmp_path / "u").exists()


def test_float_bands_with_a_nan_block_train_on_the_pixels_with_data(tmp_path: Path) -> None:
    from satpipe.io.synthetic.clouds import render_scene, write_patches
    from satpipe.training.fit import fit_segmenter
    from satpipe.training.history import epoch_series, read_metrics_csv
    from tests.conftest import SMALL_SEGMENTATION

    for index in range(3):  # reflectance stored as float32, a block of each scene missing as NaN
        scene = render_scene(np.random.default_rng([7, index]), 256, 256)
        reflectance = np.where(scene.valid, scene.reflectance, 0).astype(np.float32)
        reflectance[:, 100:160, 60:200] = np.nan
        write_patches(tmp_path / "raw", "train", f"LC08_F{index}", reflectance, scene.clouds, style="38cloud")
    prepared = tmp_path / "prepared"
    manifest = prepare_cloud_patches(tmp_path / "raw", prepared, patch_size=128, overlap=0, min_valid_fraction=0.2,
                                     val_fraction=0.34, split_seed=0, progress=False)  # fmt: skip
    percentiles = manifest["percentiles"]["low"] + manifest["percentiles"]["high"]
    assert manifest["dtype"] == "float32" and np.isfinite(percentiles).all()
    images, masks = np.load(prepared / "train_images.npy"), np.load(prepared / "train_masks.npy")
    assert np.isfinite(images).all() and (masks == IGNORE).any()
    settings = {**SMALL_SEGMENTATION, "arch": "unet_small", "epochs": 1, "slidemix": False, "batch_size": 4}
    fit_segmenter(prepared, tmp_path / "train", **settings, progress=False)
    _, losses = epoch_series(read_metrics_csv(tmp_path / "train" / "metrics.csv"), "train_loss_epoch")
    assert losses and np.isfinite(losses).all()


def test_npy_appender_writes_a_regular_array(tmp_path: Path) -> None:
    writer = NpyAppender(tmp_path / "a.npy", (2, 3), np.int16)
    writer.append(np.ones((2, 3)))
    writer.append(np.stack([np.full((2, 3), 2), np.full((2, 3), 3)]))
    writer.close()
    array = np.load(tmp_path / "a.npy")
    assert array.shape == (3, 2, 3) and array.dtype == np.int16 and array[:, 0, 0].tolist() == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]
