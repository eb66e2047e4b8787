"""run.py checks every local folder a run will read before its first stage: one line naming the file, exit 2.

Each case damages a copy of a small synthetic dataset the way a user's folder goes wrong, runs `run.py` as a
user would (on an isolated home, shrunk so that a run that wrongly starts ends soon), and checks that the run
stopped before anything was cached or written.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
from PIL import Image

from tests.cli import cache_entries, run_cli

#: Shrunk runs per preset (only reached if a check wrongly lets a run start).
SETTINGS = {
    "38cloud": ("data.patch_size=128", "model.arch=unet_small", "training.epochs=1", "training.slidemix_gamma=1",
                "evaluation.window=128", "evaluation.overlap=32"),
    "semi": ("training.epochs=1", "semi.fractions=1/2", "evaluation.window=128"),
    "cloudmask": ("training.epochs=1",),
    "quickstart": ("model.backbone=test_efficientnet", "training.epochs=1", "training.batch_size=16"),
}  # fmt: skip


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small synthetic datasets in every layout: 38-Cloud (with GhalamClouds), CloudMask and EuroSAT."""
    from satpipe.io.synthetic.cloudmask import write_cloudmask_dataset
    from satpipe.io.synthetic.clouds import write_cloud_dataset
    from satpipe.io.synthetic.eurosat import write_dataset

    root = tmp_path_factory.mktemp("sources")
    write_cloud_dataset(root / "clouds", train_scenes=2, test_scenes=1, size=256, seed=0, progress=False)
    write_cloudmask_dataset(root / "cloudmask", train_files=2, test_files=1, seed=0, progress=False)
    write_dataset(root / "eurosat", per_class=12, seed=0, progress=False)
    return {name: root / name for name in ("clouds", "cloudmask", "eurosat")}


def rewrite(path: Path, data: np.ndarray) -> None:
    """Replace a single-band GeoTIFF with ``data`` (H, W), in data's type."""
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype.name) as dst:  # fmt: skip
        dst.write(data[None])


def first(folder: Path, pattern: str = "*") -> Path:
    return sorted(folder.rglob(pattern))[0]


def no_test_bands(root: Path) -> str:
    for band in ("red", "green", "blue", "nir"):
        shutil.rmtree(root / "38-Cloud_test" / f"test_{band}")
    return f"{root / '38-Cloud_test'}: no test patches found"


def no_scene_ground_truth(root: Path) -> str:
    gt = first(root / "38-Cloud_test" / "Entire_scene_gts")
    gt.unlink()
    return f"no Entire_scene_gts/{gt.stem}.TIF for test scene"


def float_training_band(root: Path) -> str:
    band = first(root / "38-Cloud_training" / "train_nir")
    rewrite(band, np.ones((384, 384), np.float32))
    return f"{band}: type float32, but 11 of 12 band files have type uint16"


def odd_sized_test_band(root: Path) -> str:
    band = first(root / "38-Cloud_test" / "test_blue")
    rewrite(band, np.ones((384, 200), np.uint16))
    return f"{band}: 200x384 pixels, but red_"


def scene_ground_truth_too_large(root: Path) -> str:
    gt = first(root / "38-Cloud_test" / "Entire_scene_gts")
    rewrite(gt, np.zeros((400, 256), np.uint8))
    return f"{gt}: 256x400 pixels, larger than the 384x384"


def cross_dataset_ground_truth_missing(root: Path) -> str:
    gt = first(root / "GhalamClouds" / "test_gt")
    gt.unlink()
    return f"{gt.stem}.TIF missing"


@pytest.mark.parametrize(
    "damage",
    [no_test_bands, no_scene_ground_truth, float_training_band, odd_sized_test_band,
     scene_ground_truth_too_large, cross_dataset_ground_truth_missing],
)  # fmt: skip
def test_a_38cloud_folder_is_checked_whole_before_any_stage(
    sources: dict[str, Path], tmp_path: Path, damage: Callable[[Path], str]
) -> None:
    data = Path(shutil.copytree(sources["clouds"], tmp_path / "data"))
    expect_refused(tmp_path, damage(data), "38cloud", "--data-dir", str(data))


def test_unlabelled_scenes_of_another_type_than_the_labelled_are_refused(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    from satpipe.io.synthetic.clouds import write_patches

    unlabelled = tmp_path / "unlabelled"
    write_patches(unlabelled, "train", "LC08_FLOAT", np.full((4, 300, 300), 0.3, np.float32), None, style="38cloud")
    message = f"{unlabelled}: bands stored as float32, the labelled scenes' as uint16"
    expect_refused(tmp_path, message, "semi", "--data-dir", str(sources["clouds"]), "--unlabelled-dir", str(unlabelled))


def linked_copy(source: Path, target: Path) -> Path:
    """``source``'s tree with every file a symbolic link (big files are not copied); replace one to damage it."""
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).symlink_to(path)
    return target


def corrupt_filelist(root: Path) -> str:
    (root / "filelist.json").write_text('{"train": [["one-day/S3A_x.hdf", 12')
    return f"{root / 'filelist.json'}: not valid JSON"


def scene_without_brightness_temperatures(root: Path) -> str:
    test_file = first(root / "ssts")
    with h5py.File(test_file.resolve()) as src:
        datasets = {key: src[key][()] for key in ("refs", "bayes")}
    test_file.unlink()
    with h5py.File(test_file, "w") as dst:
        for key, value in datasets.items():
            dst.create_dataset(key, data=value)
    return f"{test_file}: dataset 'bts' missing"


@pytest.mark.parametrize("damage", [corrupt_filelist, scene_without_brightness_temperatures])
def test_a_cloudmask_folder_is_checked_whole_before_any_stage(
    sources: dict[str, Path], tmp_path: Path, damage: Callable[[Path], str]
) -> None:
    data = linked_copy(sources["cloudmask"], tmp_path / "data")
    expect_refused(tmp_path, damage(data), "cloudmask", "--data-dir", str(data))


def first_chip_of_another_size(root: Path) -> tuple[str, list[str]]:
    chip = root / "2750" / "AnnualCrop" / "AnnualCrop_1.jpg"
    Image.new("RGB", (32, 32)).save(chip)
    return f"{chip}: shape (3, 32, 32), but 119 of 120 chips have shape (3, 64, 64)", []


def chip_of_another_type(root: Path) -> tuple[str, list[str]]:
    chip = first(root / "ds", "Forest_4.tif")
    with rasterio.open(chip, "w", driver="GTiff", width=64, height=64, count=13, dtype="float32") as dst:
        dst.write(np.ones((13, 64, 64), np.float32))
    return f"{chip}: type float32, but 119 of 120 chips have type uint16", ["--set", "data.bands=ms"]


@pytest.mark.parametrize("damage", [first_chip_of_another_size, chip_of_another_type])
def test_the_odd_eurosat_chip_is_named_before_any_stage(
    sources: dict[str, Path], tmp_path: Path, damage: Callable[[Path], tuple[str, list[str]]]
) -> None:
    data = Path(shutil.copytree(sources["eurosat"], tmp_path / "data"))
    message, extra = damage(data)
    expect_refused(tmp_path, message, "quickstart", "--data-dir", str(data), *extra)


def expect_refused(workspace: Path, message: str, preset: str, *args: str) -> None:
    """Run run.py; it must exit 2 with one line holding ``message``, having cached and written nothing."""
    (workspace / "home").mkdir(exist_ok=True)
    settings = [arg for setting in SETTINGS[preset] for arg in ("--set", setting)]
    result = run_cli(workspace, preset, *args, *settings)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert message in result.stderr, result.stderr
    assert cache_entries(workspace) == 0 and not (workspace / "artifacts").exists()
