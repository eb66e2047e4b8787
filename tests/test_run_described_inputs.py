"""`run.py segment --data-dir` checks a dataset.yaml folder whole before its first stage: one line, exit 2.

Each case damages a copy of a small valid described folder (five georeferenced 64-pixel scenes, five uint16
bands, four classes given as a mapping of mask values) the way a user's folder goes wrong, in its files or
in its dataset.yaml, runs `run.py` as a user would (on an isolated home, shrunk so that a run that wrongly
starts ends soon), and checks that it stopped with one line naming the file and the problem, before
anything was cached or written. Last, `satpipe predict` refuses a scene whose band count is not the K-class
model's, naming the scene.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml

from tests.cli import cache_entries, run_cli
from tests.test_pipeline_described import BANDS, write_described_dataset

#: The segment preset shrunk (only reached if a check wrongly lets a run start).
SETTINGS = [
    arg
    for setting in (
        "training.epochs=1",
        "model.arch=unet_small",
        "data.patch_size=64",
        "evaluation.window=64",
        "evaluation.overlap=16",
        "training.num_workers=0",
        "tracking.mode=disabled",
    )
    for arg in ("--set", setting)
]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five valid 64-pixel scenes (tile_00 .. tile_04) with their dataset.yaml."""
    return write_described_dataset(tmp_path_factory.mktemp("source") / "tiles", scenes=5, size=64)


def description(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "dataset.yaml").read_text())


def describe(root: Path, desc: dict[str, Any]) -> Path:
    (root / "dataset.yaml").write_text(yaml.safe_dump(desc, sort_keys=False))
    return root / "dataset.yaml"


def rewrite(path: Path, data: np.ndarray, **profile: Any) -> None:
    """Replace a GeoTIFF with ``data`` (bands, H, W) on its own grid unless ``profile`` says otherwise."""
    with rasterio.open(path) as src:
        profile = {"crs": src.crs, "transform": src.transform, **profile}
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype.name, **profile) as dst:  # fmt: skip
        dst.write(data)


def mask_missing(root: Path) -> str:
    (root / "masks" / "tile_02.tif").unlink()
    return f"{root / 'masks' / 'tile_02.tif'}: mask of tile_02.tif does not exist"


def mask_of_another_size(root: Path) -> str:
    rewrite(root / "masks" / "tile_02.tif", np.zeros((1, 64, 60), np.uint8))
    return f"{root / 'masks' / 'tile_02.tif'}: 60x64 pixels, but its image tile_02.tif is 64x64"


def mask_in_another_crs(root: Path) -> str:
    rewrite(root / "masks" / "tile_02.tif", np.zeros((1, 64, 64), np.uint8), crs="EPSG:32634")
    return f"{root / 'masks' / 'tile_02.tif'}: CRS EPSG:32634, but its image tile_02.tif has EPSG:32633"


def mask_on_another_grid(root: Path) -> str:
    with rasterio.open(root / "masks" / "tile_01.tif") as other:  # the mask of another scene's grid
        rewrite(root / "masks" / "tile_02.tif", np.zeros((1, 64, 64), np.uint8), transform=other.transform)
    return f"{root / 'masks' / 'tile_02.tif'}: transform differs from its image tile_02.tif's"


def mask_value_of_no_class(root: Path) -> str:
    mask = np.zeros((1, 64, 64), np.uint8)
    mask[0, 5, 5] = 7
    rewrite(root / "masks" / "tile_03.tif", mask)
    return f"{root / 'masks' / 'tile_03.tif'}: mask value(s) 7 not in classes (0, 10, 20, 30) or ignore_index 255"


def band_count_varies(root: Path) -> str:
    desc = description(root)
    del desc["bands"]  # with a bands: list, the list is what each image is held to (next case)
    describe(root, desc)
    rewrite(root / "images" / "tile_03.tif", np.full((4, 64, 64), 1000, np.uint16))
    first = root / "images" / "tile_00.tif"
    return f"{root / 'images' / 'tile_03.tif'}: 4 band(s), but {first} has 5; band counts must agree"


def bands_list_too_short(root: Path) -> str:
    desc = description(root)
    desc["bands"] = BANDS[:4]
    describe(root, desc)
    return f"{root / 'images' / 'tile_00.tif'}: 5 band(s), but dataset.yaml lists 4 under bands"


def no_description(root: Path) -> str:
    for path in root.iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return f"{root}: no dataset.yaml found; describe the dataset in one"


def unknown_key(root: Path) -> str:
    desc = description(root)
    desc["ignore_idx"] = desc.pop("ignore_index")
    path = describe(root, desc)
    return f"{path}: unknown key 'ignore_idx' (did you mean 'ignore_index'?); known keys: name, task, classes"


def classes_missing(root: Path) -> str:
    desc = description(root)
    del desc["classes"], desc["colors"]
    return f"{describe(root, desc)}: classes: missing key"


def images_glob_matches_nothing(root: Path) -> str:
    desc = description(root)
    desc["images"] = "imgs/*.tif"
    return f"{describe(root, desc)}: images: 'imgs/*.tif' matches no file under {root}"


def truncated_image(root: Path) -> str:
    image = root / "images" / "tile_01.tif"
    image.write_bytes(image.read_bytes()[:-20_000])  # the header is whole, the last strips are cut off
    return f"{image}: unreadable image, truncated or corrupt (tile_01.tif, band"  # GDAL's detail, not "see previous"


def val_list_names_an_unknown_scene(root: Path) -> str:
    (root / "val.txt").write_text("tile_01\ntile_09\n")
    desc = description(root)
    desc["splits"] = {"val": "val.txt"}
    describe(root, desc)
    return f"{root / 'val.txt'}: line 2: 'tile_09' names no image of {root / 'dataset.yaml'}"


def too_few_scenes_to_split(root: Path) -> str:
    for stem in ("tile_02", "tile_03", "tile_04"):
        (root / "images" / f"{stem}.tif").unlink()
        (root / "masks" / f"{stem}.tif").unlink()
    return f"{root / 'dataset.yaml'}: 2 scene(s); a split by scene into train, val and test needs at least 3"


def classification_description(root: Path) -> str:
    desc = description(root)
    del desc["masks"], desc["ignore_index"]
    desc.update(task="classification", images="{class}/*.tif")
    path = describe(root, desc)
    return f"{path}: task: 'classification', but scenes are segmented from task: segmentation datasets only"


def float_mask(root: Path) -> str:
    rewrite(root / "masks" / "tile_04.tif", np.zeros((1, 64, 64), np.float32))
    return f"{root / 'masks' / 'tile_04.tif'}: mask data type float32; masks hold whole-number class values"


def ignore_index_is_a_class(root: Path) -> str:
    desc = description(root)
    desc["ignore_index"] = 10
    return f"{describe(root, desc)}: ignore_index: 10 is also the mask value of class 'water'"


def key_given_twice(root: Path) -> str:
    path = root / "dataset.yaml"
    path.write_text(path.read_text() + "task: segmentation\n")
    return f"{path}: not valid YAML (line {len(path.read_text().splitlines())}, column 1: key 'task' appears twice)"


def unknown_mask_template_field(root: Path) -> str:
    desc = description(root)
    desc["masks"] = "masks/{name}.tif"
    return f"{describe(root, desc)}: masks: unknown field {{name}}; use {{stem}} and {{parent}}"


CASES = [
    mask_missing, mask_of_another_size, mask_in_another_crs, mask_on_another_grid, mask_value_of_no_class,
    band_count_varies, bands_list_too_short, no_description, unknown_key, classes_missing,
    images_glob_matches_nothing, truncated_image, val_list_names_an_unknown_scene, too_few_scenes_to_split,
    classification_description, float_mask, ignore_index_is_a_class, key_given_twice, unknown_mask_template_field,
]  # fmt: skip


@pytest.mark.parametrize("damage", CASES)
def test_a_described_folder_is_checked_whole_before_any_stage(
    source: Path, tmp_path: Path, damage: Callable[[Path], str]
) -> None:
    data = Path(shutil.copytree(source, tmp_path / "data"))
    message = damage(data)
    (tmp_path / "home").mkdir()
    result = run_cli(tmp_path, "segment", "--data-dir", str(data), *SETTINGS)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.splitlines()  # GDAL's own error lines must not come before satpipe's one
    assert len(lines) == 1 and lines[0].startswith("error: ") and result.stderr.endswith("\n"), result.stderr[-2000:]
    assert message in lines[0], lines[0]
    assert cache_entries(tmp_path) == 0 and not (tmp_path / "artifacts").exists()


@pytest.fixture(scope="module")
def checkpoint(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A four-class, five-band model: the source's patches, trained for one epoch."""
    from satpipe.artifacts import read_manifest
    from satpipe.data.described import prepare_described_patches
    from satpipe.training.fit import fit_segmenter

    root = tmp_path_factory.mktemp("described_model")
    prepare_described_patches(source, root / "prepared", patch_size=64, overlap=0, min_valid_fraction=0.2,
                              val_fraction=0.2, test_fraction=0.2, split_seed=0, progress=False)  # fmt: skip
    fit_segmenter(root / "prepared", root / "train", arch="unet_small", normalization="percentile", epochs=1,
                  lr=1e-3, weight_decay=0.0, loss="ce", augment=False, slidemix=False, slidemix_gamma=1,
                  slidemix_beta=1.0, batch_size=4, num_workers=0, precision="32-true", save_top_k=1,
                  early_stopping_patience=None, overlays_every=1, seed=0, progress=False)  # fmt: skip
    return root / "train" / read_manifest(root / "train")["best_checkpoint"]


def test_predict_refuses_a_scene_with_another_band_count_than_the_model(
    checkpoint: Path, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from satpipe.predict import main

    scene = tmp_path / "four_bands.tif"
    shutil.copy(source / "images" / "tile_00.tif", scene)
    rewrite(scene, np.full((4, 64, 64), 1000, np.uint16))
    out = tmp_path / "out" / "classes.tif"
    code = main([str(scene), "--checkpoint", str(checkpoint), "--out", str(out), "--dataset", str(source),
                 "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert f"{scene}: 4 band(s), but {checkpoint} expects 5 ({', '.join(BANDS)})" in captured.err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    # The same model predicts a scene with its five bands: the refusal was the band count's.
    assert main([str(source / "images" / "tile_00.tif"), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--device", "cpu"]) == 0 and out.is_file()  # fmt: skip
