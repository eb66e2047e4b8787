import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from satpipe.errors import DataError, DatasetNotFoundError
from satpipe.io.cloudmask import FILELIST, NORM_HIGH, NORM_LOW, SCENE_SHAPE, check_file, list_files, read_scene
from satpipe.io.synthetic.cloudmask import render_slstr, write_scene


def scene_datasets(seed: int = 0) -> dict[str, np.ndarray]:
    return render_slstr(np.random.default_rng(seed))


def write(path: Path, datasets: dict[str, np.ndarray]) -> Path:
    write_scene(path, datasets)
    return path


def test_synthetic_scenes_are_physically_plausible() -> None:
    d = scene_datasets()
    assert d["refs"].shape == (*SCENE_SHAPE, 6) and d["bts"].shape == (*SCENE_SHAPE, 3)
    assert d["bayes"].shape == SCENE_SHAPE and set(np.unique(d["bayes"])) == {0, 1}
    cloud = d["bayes"] == 1
    assert 0.02 < cloud.mean() < 0.9
    assert -0.05 < d["refs"].min() and d["refs"].max() < 1.2  # top-of-atmosphere reflectance
    assert 180 < d["bts"].min() and d["bts"].max() < 320  # kelvin
    # Clouds are brighter in the visible and colder in the thermal infrared than what they cover.
    assert d["refs"][cloud, 0].mean() > 2 * d["refs"][~cloud, 0].mean()
    assert d["bts"][cloud, 0].mean() < d["bts"][~cloud, 0].mean() - 5


def test_read_scene_stacks_refs_then_bts_as_channels(tmp_path: Path) -> None:
    d = scene_datasets(1)
    scene = read_scene(write(tmp_path / "S3A_a.hdf", d))
    assert scene.image.shape == (9, *SCENE_SHAPE) and scene.image.dtype == np.float32
    np.testing.assert_array_equal(scene.image[:6], d["refs"].transpose(2, 0, 1))
    np.testing.assert_array_equal(scene.image[6:], d["bts"].transpose(2, 0, 1))
    np.testing.assert_array_equal(scene.clouds, d["bayes"] > 0)
    assert scene.valid.all()
    # The benchmark's normalisation maps the reference values to 0 and 1.
    normalised = (scene.image - np.array(NORM_LOW)[:, None, None]) / (np.array(NORM_HIGH) - np.array(NORM_LOW))[
        :, None, None
    ]
    np.testing.assert_allclose(normalised[6], (d["bts"][..., 0] - 270) / 22, atol=1e-5)
    np.testing.assert_allclose(normalised[0], d["refs"][..., 0] - 0.5, atol=1e-6)


def test_bayes_may_carry_a_channel_axis_and_any_positive_value_is_cloud(tmp_path: Path) -> None:
    d = scene_datasets(2)
    d["bayes"] = (d["bayes"] * 7)[..., None]  # real masks hold bit flags
    scene = read_scene(write(tmp_path / "S3A_b.hdf", d))
    np.testing.assert_array_equal(scene.clouds, d["bayes"][..., 0] > 0)


def test_nan_brightness_temperatures_are_masked_out(tmp_path: Path) -> None:
    d = scene_datasets(3)
    d["bts"][:, :50, 1] = np.nan
    d["refs"][100, 200, 4] = np.inf
    scene = read_scene(write(tmp_path / "S3A_nan.hdf", d))
    assert not scene.valid[:, :50].any() and not scene.valid[100, 200] and scene.valid[:, 50:].sum() == 1200 * 1450 - 1
    assert np.isfinite(scene.image).all()
    # No-data pixels hold the values that normalise to zero and are never cloud.
    np.testing.assert_array_equal(scene.image[:, 0, 0], np.float32(NORM_LOW))
    assert not scene.clouds[:, :50].any()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("bts"), "dataset 'bts' missing (found: bayes, refs)"),
        (lambda d: d.pop("bayes"), "dataset 'bayes' missing"),
        (lambda d: d.update(refs=np.zeros((2400, 3000, 6), np.float32)), "'refs' has shape (2400, 3000, 6)"),
        (lambda d: d.update(bts=np.zeros((1200, 1500, 2), np.float32)), "'bts' has shape (1200, 1500, 2)"),
        (lambda d: d.update(bayes=np.zeros((1500, 1200), np.uint8)), "'bayes' has shape (1500, 1200)"),
        (lambda d: d.update(bts=np.full((1200, 1500, 3), np.nan, np.float32)), "no pixel has finite"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path: Path, change, message: str) -> None:
    d = {k: v[:] for k, v in scene_datasets(4).items()}
    change(d)
    path = write(tmp_path / "S3A_bad.hdf", d)
    with pytest.raises(DataError) as err:
        read_scene(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value) and "\n" not in str(err.value)


def test_text_dataset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "S3A_text.hdf"
    d = scene_datasets(5)
    with h5py.File(path, "w") as f:
        f["refs"], f["bts"] = d["refs"], d["bts"]
        f["bayes"] = np.array([b"cloudy"] * 3)
    with pytest.raises(DataError, match="'bayes' holds .*not numbers"):
        check_file(path)


def test_not_hdf5_and_truncated_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "S3A_garbage.hdf"
    garbage.write_bytes(b"not an hdf5 file" * 100)
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        read_scene(garbage)
    whole = write(tmp_path / "S3A_whole.hdf", scene_datasets(6))
    truncated = tmp_path / "S3A_truncated.hdf"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DataError) as err:
        read_scene(truncated)
    assert str(err.value).startswith(str(truncated)) and "\n" not in str(err.value)


def test_list_files_finds_splits_and_checks_the_file_list(cloudmask_raw: Path, tmp_path: Path) -> None:
    train, test = list_files(cloudmask_raw, "train"), list_files(cloudmask_raw, "test")
    assert len(train) == 4 and len(test) == 1 and all(p.parent.name == "one-day" for p in train)
    assert list_files(cloudmask_raw, "train", max_files=2) == train[:2]
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        list_files(tmp_path / "nowhere", "train")
    (tmp_path / "one-day").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no one-day/S3A"):
        list_files(tmp_path, "train")

    copy = tmp_path / "copy"
    (copy / "one-day").mkdir(parents=True)
    for path in train[:2]:
        (copy / "one-day" / path.name).write_bytes(path.read_bytes())
    listing = [[f"es/cloud_slstr_ds1/one-day/{p.name}", p.stat().st_size] for p in train[:3]]
    (copy / FILELIST).write_text(json.dumps({"train": listing}))
    assert len(list_files(copy, "train", max_files=2)) == 2  # the subset that was downloaded is whole
    with pytest.raises(DataError, match=f"{train[2].name} is in filelist.json but missing"):
        list_files(copy, "train")
    (copy / "one-day" / train[1].name).write_bytes(b"cut short")
    with pytest.raises(DataError, match=f"{train[1].name} has 9 bytes"):
        list_files(copy, "train", max_files=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [('{"train": [["one-day/S3A_x.hdf", 12', "not valid JSON"), ('{"train": {"a": 1}}', r"expected \{\"train\"")],
)
def test_a_corrupt_or_misshapen_filelist_is_named(cloudmask_raw: Path, tmp_path: Path, text: str, message: str) -> None:
    copy = tmp_path / "copy"
    (copy / "one-day").mkdir(parents=True)
    (copy / "one-day" / "S3A_a.hdf").symlink_to(list_files(cloudmask_raw, "train")[0])
    (copy / FILELIST).write_text(text)
    with pytest.raises(DataError, match=f"^{re.escape(str(copy / FILELIST))}: {message}"):
        list_files(copy, "train")
