from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from satpipe.data.described import check_described_folder, prepare_described_patches, split_described
from satpipe.data.patches import IGNORE
from satpipe.errors import DataError
from satpipe.io.dataset_files import Scene
from satpipe.io.description import read_description
from satpipe.io.synthetic.landcover import write_landcover_dataset

SPLIT = {"val_fraction": 0.25, "test_fraction": 0.2, "split_seed": 0}
PATCHES = {"patch_size": 64, "overlap": 0, "progress": False}


@pytest.fixture(scope="module")
def landcover(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five 128 x 128 land-cover scenes, the last listed in test.txt."""
    root = tmp_path_factory.mktemp("landcover")
    write_landcover_dataset(root, train_scenes=4, test_scenes=1, size=128, seed=3, progress=False)
    return root


def test_landcover_patches(landcover: Path, tmp_path: Path) -> None:
    out = tmp_path / "patches"
    manifest = prepare_described_patches(landcover, out, min_valid_fraction=0.5, **SPLIT, **PATCHES)
    assert json.loads((out / "manifest.json").read_text()) == json.loads(json.dumps(manifest))
    listed = (landcover / "test.txt").read_text().split()
    assert manifest["test_scenes"] == listed == ["scene_0004"]
    train, val = set(manifest["scenes"]["train"]), set(manifest["scenes"]["val"])
    assert len(train) == 3 and len(val) == 1 and not train & val and not (train | val) & set(listed)
    for name in ("train", "val"):
        images, masks = np.load(out / f"{name}_images.npy"), np.load(out / f"{name}_masks.npy")
        assert manifest["counts"][name] > 0 and len(images) == len(masks) == manifest["counts"][name]
        assert sum(manifest["scenes"][name].values()) == manifest["counts"][name]
        assert images.shape[1:] == (4, 64, 64) and images.dtype == np.uint16 and masks.dtype == np.uint8
        assert set(np.unique(masks).tolist()) <= {*range(7), IGNORE}
        assert manifest["class_pixels"][name] == np.bincount(masks.ravel(), minlength=256)[:7].tolist()
        assert ((masks != IGNORE).mean(axis=(1, 2)) >= 0.5).all()  # the scenes' labels cover all their data
    assert len(manifest["class_frequencies"]) == 7 and sum(manifest["class_frequencies"]) == pytest.approx(1.0)
    assert len(np.unique(np.load(out / "train_masks.npy"))) >= 5  # ids are spread over the classes, not collapsed
    low, high = manifest["percentiles"]["low"], manifest["percentiles"]["high"]
    assert len(low) == len(high) == 4 and all(1000 <= lo < hi for lo, hi in zip(low, high, strict=True))
    assert manifest["bands"] == ["blue", "green", "red", "nir"] and manifest["value_max"] == 65535.0
    assert manifest["classes"][0] == "grassland" and manifest["colors"][0] == "#a6d96a"
    assert manifest["georeferenced"] is True and manifest["dataset"] == "synthetic land cover"
    assert manifest["ignore_index"] == IGNORE and manifest["nodata"] == 0
    desc, check, split = check_described_folder(landcover, **SPLIT)
    assert split["test"] == listed and set(split["train"]) == train and check.image.dtype == "uint16"
    assert desc.num_classes == 7


def test_patches_map_mask_values_to_class_ids(landcover: Path, tmp_path: Path) -> None:
    # 128 x 128 scenes cut into 64 x 64 patches need no padding: all four patches of a scene, row by row.
    manifest = prepare_described_patches(landcover, tmp_path / "p", min_valid_fraction=0.0, **SPLIT, **PATCHES)
    assert manifest["skipped"] == 0 and all(n == 4 for n in manifest["scenes"]["train"].values())
    first = sorted(manifest["scenes"]["train"])[0]
    images, masks = np.load(tmp_path / "p" / "train_images.npy"), np.load(tmp_path / "p" / "train_masks.npy")
    with rasterio.open(landcover / "images" / f"{first}.tif") as img:
        image = img.read()
    with rasterio.open(landcover / "masks" / f"{first}.tif") as msk:
        values = msk.read(1)
    expected = np.where(values == 0, IGNORE, values.astype(np.int64) - 1)  # LoveDA values 1..7, 0 no data
    np.testing.assert_array_equal(np.block([[masks[0], masks[1]], [masks[2], masks[3]]]), expected)
    np.testing.assert_array_equal(images[3], image[:, 64:, 64:])


def _scenes(n: int, split: str | None = None) -> list[Scene]:
    return [Scene(f"s{i:02d}", Path(f"s{i:02d}.tif"), Path(f"m{i:02d}.tif"), split) for i in range(n)]


@pytest.fixture
def description(tmp_path: Path) -> Any:
    text = "task: segmentation\nclasses: [a, b]\nimages: '*.tif'\nmasks: 'm/{stem}.tif'\n"
    (tmp_path / "dataset.yaml").write_text(text)
    return read_description(tmp_path)


def test_split_is_seeded_disjoint_and_complete(description: Any) -> None:
    scenes = _scenes(10)
    split = split_described(description, scenes, val_fraction=0.25, test_fraction=0.2, split_seed=7)
    assert split == split_described(description, scenes, val_fraction=0.25, test_fraction=0.2, split_seed=7)
    assert [len(split[name]) for name in ("train", "val", "test")] == [6, 2, 2]
    assert sorted(stem for stems in split.values() for stem in stems) == [s.stem for s in scenes]  # each once
    others = [
        split_described(description, scenes, val_fraction=0.25, test_fraction=0.2, split_seed=seed) for seed in range(4)
    ]
    assert len({json.dumps(s) for s in [split, *others]}) >= 4
    assert len({tuple(s["test"]) for s in others}) >= 3  # the test draw depends on the seed too


def test_split_keeps_the_description_s_splits(description: Any) -> None:
    scenes = [*_scenes(6), Scene("t", Path("t.tif"), Path("mt.tif"), "test")]
    split = split_described(description, scenes, val_fraction=0.2, test_fraction=0.5, split_seed=1)
    assert split["test"] == ["t"] and len(split["val"]) == 1 and len(split["train"]) == 5
    # A large test fraction still leaves a scene each for train and val.
    split = split_described(description, _scenes(3), val_fraction=0.9, test_fraction=0.9, split_seed=1)
    assert all(len(stems) == 1 for stems in split.values())


def test_too_few_scenes_names_the_description(description: Any, tmp_path: Path) -> None:
    where = re.escape(str(tmp_path / "dataset.yaml"))
    with pytest.raises(DataError, match=f"^{where}: 2 scene\\(s\\); .* train, val and test needs at least 3$"):
        split_described(description, _scenes(2), val_fraction=0.2, test_fraction=0.2, split_seed=0)
    fixed = [*_scenes(1), Scene("t", Path("t.tif"), Path("mt.tif"), "test")]
    with pytest.raises(DataError, match=f"^{where}: 1 scene\\(s\\) outside the test split; .* train and val"):
        split_described(description, fixed, val_fraction=0.2, test_fraction=0.2, split_seed=0)
    listed = [Scene("a", Path("a.tif"), Path("ma.tif"), "train"), Scene("b", Path("b.tif"), Path("mb.tif"), "test")]
    with pytest.raises(DataError, match=f"^{where}: splits lists train.*list val scenes"):
        split_described(description, listed, val_fraction=0.2, test_fraction=0.2, split_seed=0)


def test_too_few_scenes_on_disk(tmp_path: Path) -> None:
    path = write_landcover_dataset(tmp_path / "d", train_scenes=2, test_scenes=0, size=64, progress=False)
    with pytest.raises(DataError, match=re.escape(f"{path}: 2 scene(s)")):
        prepare_described_patches(tmp_path / "d", tmp_path / "out", min_valid_fraction=0.1, **SPLIT, **PATCHES)
    assert not (tmp_path / "out").exists()


def test_mask_value_outside_the_classes(tmp_path: Path) -> None:
    write_landcover_dataset(tmp_path / "d", train_scenes=3, test_scenes=1, size=64, progress=False)
    bad = tmp_path / "d" / "masks" / "scene_0001.tif"
    with rasterio.open(bad, "r+") as dst:
        values = dst.read(1)
        values[5, 5] = 9
        dst.write(values, 1)
    with pytest.raises(DataError, match=f"^{re.escape(str(bad))}: mask value\\(s\\) 9 "):
        prepare_described_patches(tmp_path / "d", tmp_path / "out", min_valid_fraction=0.1, **SPLIT, **PATCHES)
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def _write_scenes(root: Path, nodata: int | None, count: int = 4) -> None:
    """``count`` 32 x 32 two-band scenes: columns 0..7 hold no data (every band at the no-data value)."""
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    profile: dict[str, Any] = {"driver": "GTiff", "height": 32, "width": 32, "crs": "EPSG:32632"}
    for i in range(count):
        rng = np.random.default_rng(i)
        image = rng.integers(10, 500, (2, 32, 32)).astype(np.uint16)
        image[:, :, :8] = nodata or 0
        image[0, 0, 8] = nodata or 0  # one band at the no-data value alone: the pixel has data
        labels = (np.arange(32)[None, :] // 4 % 2).repeat(32, axis=0).astype(np.uint8)  # stripes of 0 and 1
        profile["transform"] = from_origin(500000 + 100 * i, 5500000, 2, 2)
        with rasterio.open(root / "images" / f"s{i}.tif", "w", count=2, dtype="uint16", **profile) as dst:
            dst.write(image)
        with rasterio.open(root / "masks" / f"s{i}.tif", "w", count=1, dtype="uint8", **profile) as dst:
            dst.write(labels, 1)
    description = {"task": "segmentation", "classes": ["even", "odd"], "images": "images/*.tif"}
    description |= {"masks": "masks/{stem}.tif"} | ({"nodata": nodata} if nodata is not None else {})
    (root / "dataset.yaml").write_text(yaml.safe_dump(description))


@pytest.mark.parametrize("nodata", [None, 7])
def test_pixels_without_data_are_ignored(tmp_path: Path, nodata: int | None) -> None:
    _write_scenes(tmp_path / "d", nodata)
    out = tmp_path / "out"
    sizes = {"patch_size": 32, "overlap": 0, "progress": False}
    manifest = prepare_described_patches(tmp_path / "d", out, min_valid_fraction=0.7, **SPLIT, **sizes)
    assert manifest["counts"] == {"train": 2, "val": 1} and manifest["skipped"] == 0
    assert manifest["bands"] == ["band1", "band2"] and manifest["nodata"] == nodata
    masks = np.load(out / "train_masks.npy")
    assert (masks[:, :, :8] == IGNORE).all()
    expected = (np.arange(32)[None, :] // 4 % 2).repeat(32, axis=0)
    np.testing.assert_array_equal(masks[:, :, 8:], np.broadcast_to(expected[:, 8:], (2, 32, 24)))
    assert manifest["class_pixels"]["train"] == [2 * 32 * 12, 2 * 32 * 12]
    assert manifest["class_frequencies"] == [0.5, 0.5]
    assert manifest["percentiles"]["low"][0] >= 10  # no-data pixels are left out of the percentiles
    # A quarter of each scene has no data, so every patch falls short of 80%.
    with pytest.raises(DataError, match="lower data.min_valid_fraction"):
        prepare_described_patches(tmp_path / "d", tmp_path / "out2", min_valid_fraction=0.8, **SPLIT, **sizes)
    assert not (tmp_path / "out2").exists()


def test_classification_description_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dataset.yaml").write_text("task: classification\nclasses: [a, b]\nimages: '{class}/*.tif'\n")
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path / 'dataset.yaml'))}: task: 'classification'"):
        check_described_folder(tmp_path, **SPLIT)
