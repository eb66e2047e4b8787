import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from satpipe.errors import DataError, DatasetNotFoundError
from satpipe.io.cloud38 import assemble_scene, group_by_scene, list_patches, read_ground_truth, read_patch, unpad
from satpipe.io.synthetic.clouds import pad_like_38cloud, write_patches

REAL = {  # folder, split, dtype, cloud fraction of the ground truth
    "38cloud_satunet": ("test", np.uint16, 0.271),
    "38cloud_sorourmo": ("train", np.uint16, 0.307),
    "ghalamclouds80_satunet": ("test", np.uint8, 0.920),
}


@pytest.mark.parametrize("folder", list(REAL))
def test_reads_every_real_labelled_patch(real_data: Path, folder: str) -> None:
    split, dtype, cloud = REAL[folder]
    patches = list_patches(real_data / folder, split, require_gt=True)
    assert len(patches) == 1
    image, gt = read_patch(patches[0])
    assert image.shape == (4, 384, 384) and image.dtype == dtype and gt is not None
    assert gt.dtype == bool and abs(gt.mean() - cloud) < 0.005


def test_patch_names_give_scene_row_and_column(real_data: Path) -> None:
    patch = list_patches(real_data / "38cloud_sorourmo", "train", require_gt=True)[0]
    assert (patch.scene, patch.row, patch.col) == ("LC08_L1TP_002053_20160520_20170324_01_T1", 10, 12)
    assert [p.name.split("_")[0] for p in patch.bands] == ["red", "green", "blue", "nir"]
    ghalam = list_patches(real_data / "ghalamclouds80_satunet", "test", require_gt=True)[0]
    assert (ghalam.scene, ghalam.row, ghalam.col) == ("KS0018c5MI", 18, 40)


def test_scene_round_trip_through_patches_uses_the_official_padding(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    dn = rng.integers(1, 60000, size=(4, 500, 700), dtype=np.uint16)  # no nodata, so the padding is the only zero
    write_patches(tmp_path, "train", "LC08_TEST", dn, rng.random((500, 700)) > 0.5, style="38cloud")
    patches = list_patches(tmp_path, "train", require_gt=True)
    assert len(patches) == 2 * 2  # 500 x 700 pads to 768 x 768
    rebuilt = assemble_scene(group_by_scene(patches)["LC08_TEST"])
    assert rebuilt.shape == (4, 768, 768)
    np.testing.assert_array_equal(rebuilt, pad_like_38cloud(dn))
    np.testing.assert_array_equal(unpad(rebuilt, (500, 700)), dn)
    top, left = (768 - 500) // 2, (768 - 700) // 2  # floor((padded - original) / 2), as 38-Cloud's evaluation
    assert rebuilt[:, :top].max() == 0 and rebuilt[:, :, :left].max() == 0 and rebuilt[:, top, left : left + 700].all()


def copy_real(real_data: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(real_data / "38cloud_satunet", tmp_path / "data"))


def test_missing_band_folder(real_data: Path, tmp_path: Path) -> None:
    root = copy_real(real_data, tmp_path)
    shutil.rmtree(root / "test_nir")
    with pytest.raises(DataError, match="band folder 'test_nir' missing"):
        list_patches(root, "test", require_gt=True)


def test_band_files_of_different_sizes(real_data: Path, tmp_path: Path) -> None:
    root = copy_real(real_data, tmp_path)
    blue = next((root / "test_blue").iterdir())
    with rasterio.open(blue, "w", driver="GTiff", width=200, height=384, count=1, dtype="uint16") as dst:
        dst.write(np.zeros((1, 384, 200), np.uint16))
    with pytest.raises(DataError, match=r"blue_patch.*200x384 pixels, but red_patch.* is 384x384"):
        read_patch(list_patches(root, "test", require_gt=True)[0])


def test_ground_truth_with_other_values(real_data: Path, tmp_path: Path) -> None:
    root = copy_real(real_data, tmp_path)
    gt_file = next((root / "test_gt").iterdir())
    with rasterio.open(gt_file) as src:
        gt = src.read()
    gt[0, 10, 10] = 128
    with rasterio.open(gt_file, "w", driver="GTiff", width=384, height=384, count=1, dtype="uint8") as dst:
        dst.write(gt)
    with pytest.raises(DataError, match=r"gt_patch.*ground truth holds values \[128\]; expected only 0 and 255"):
        read_ground_truth(gt_file)


def test_a_band_file_missing_for_one_patch(real_data: Path, tmp_path: Path) -> None:
    root = copy_real(real_data, tmp_path)
    next((root / "test_green").iterdir()).unlink()
    with pytest.raises(DataError, match="green_patch_30_2_by_9_.*missing"):
        list_patches(root, "test", require_gt=True)


def test_folder_without_patches(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no train patches found"):
        list_patches(tmp_path, "train", require_gt=True)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        list_patches(tmp_path / "nope", "train", require_gt=True)


def test_non_finite_band_values_are_read_as_no_data(tmp_path: Path) -> None:
    from satpipe.data.patches import IGNORE, label_mask

    reflectance = np.random.default_rng(2).uniform(0.05, 0.6, (4, 384, 384)).astype(np.float32)
    reflectance[2, 100:150, 100:150] = np.nan  # one band missing leaves the pixel without data
    reflectance[:, 200:210, 200:210] = np.inf
    write_patches(tmp_path, "train", "LC08_FLOAT", reflectance, np.ones((384, 384), bool), style="38cloud")
    image, gt = read_patch(list_patches(tmp_path, "train", require_gt=True)[0])
    assert image.dtype == np.float32 and np.isfinite(image).all()
    assert (image[:, 100:150, 100:150] == 0).all() and (image[:, 200:210, 200:210] == 0).all()
    np.testing.assert_array_equal(image[:, :100], reflectance[:, :100])
    mask = label_mask(image, gt)
    assert mask[120, 120] == mask[205, 205] == IGNORE and mask[50, 50] == 1


def test_band_files_of_another_type_are_named(real_data: Path, tmp_path: Path) -> None:
    root = copy_real(real_data, tmp_path)
    nir = next((root / "test_nir").iterdir())
    with rasterio.open(nir, "w", driver="GTiff", width=384, height=384, count=1, dtype="float32") as dst:
        dst.write(np.ones((1, 384, 384), np.float32))
    patch = list_patches(root, "test", require_gt=True)[0]
    with pytest.raises(DataError, match=r"nir_patch.*: float32 values, but red_patch.* holds uint16"):
        read_patch(patch)

    dn = np.ones((4, 384, 768), np.uint16)  # one scene of two patches, the second stored as floats
    write_patches(tmp_path / "mixed", "test", "LC08_MIXED", dn, None, style="38cloud")
    for band in ("red", "green", "blue", "nir"):
        second = next((tmp_path / "mixed" / f"test_{band}").glob("*_1_by_2_*"))
        with rasterio.open(second, "w", driver="GTiff", width=384, height=384, count=1, dtype="float32") as dst:
            dst.write(np.ones((1, 384, 384), np.float32))
    with pytest.raises(DataError, match=r"red_patch_2_1_by_2_LC08_MIXED.TIF: float32 values, but red_patch_1.* uint16"):
        assemble_scene(list_patches(tmp_path / "mixed", "test", require_gt=False))
