"""The predict command on real patches, on a georeferenced scene, and on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from sklearn.metrics import jaccard_score

from satpipe.evaluation.clouds import counts
from satpipe.io.cloud38 import list_patches, read_ground_truth
from satpipe.predict import main, predict_file
from tests.unsafe import unsafe_checkpoint

REAL = {"38cloud_satunet": "test", "38cloud_sorourmo": "train", "ghalamclouds80_satunet": "test"}


def checkpoint(trained: dict[str, Path]) -> Path:
    return next((trained["train"] / "checkpoints").glob("epoch*.ckpt"))


@pytest.mark.parametrize("folder", list(REAL))
def test_predict_each_real_patch_and_score_it(real_data: Path, trained_segmenter, tmp_path: Path, folder: str) -> None:
    patch = list_patches(real_data / folder, REAL[folder], require_gt=True)[0]
    result = predict_file(list(patch.bands), checkpoint(trained_segmenter), tmp_path / "mask.tif", progress=False)
    with rasterio.open(result.mask) as mask, rasterio.open(result.probability) as prob:
        assert mask.shape == prob.shape == (384, 384) and mask.dtypes[0] == "uint8" and prob.dtypes[0] == "float32"
        assert mask.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        m, p = mask.read(1), prob.read(1)
    gt = read_ground_truth(patch.gt)
    valid = m != 255
    assert valid.mean() > 0.5 and np.isnan(p[~valid]).all()
    ours = counts(p[valid], gt[valid], 0.5).metrics()["jaccard"]
    assert ours == pytest.approx(jaccard_score(gt[valid], m[valid] == 1, zero_division=1.0))


def test_a_georeferenced_scene_keeps_its_crs_and_grid(trained_segmenter, tmp_path: Path, capsys) -> None:
    scene = next((trained_segmenter["raw"] / "scenes").glob("LC08_*_T1.TIF"))
    code = main([str(scene), "--checkpoint", str(checkpoint(trained_segmenter)), "--out", str(tmp_path / "m.tif"),
                 "--window", "256", "--overlap", "32", "--blend", "gaussian"])  # fmt: skip
    assert code == 0 and "of valid pixels cloudy" in capsys.readouterr().out
    with rasterio.open(scene) as src, rasterio.open(tmp_path / "m.tif") as out:
        assert out.crs == src.crs and out.transform == src.transform and out.shape == src.shape
        gt_file = scene.with_name(scene.stem + "_gt.TIF")
        gt = read_ground_truth(gt_file)
        mask = out.read(1)
    valid = mask != 255
    assert counts(mask[valid] == 1, gt[valid], 0.5).metrics()["jaccard"] > 0.5


def write(path: Path, data: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2],
                       dtype=data.dtype.name) as dst:  # fmt: skip
        dst.write(data)
    return path


def run_bad(trained_segmenter, tmp_path: Path, capsys, scene: list[Path], ckpt: Path | None = None) -> str:
    code = main([*map(str, scene), "--checkpoint", str(ckpt or checkpoint(trained_segmenter)), "--out",
                 str(tmp_path / "out" / "m.tif")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []  # nothing half-written
    return err


def test_band_files_of_different_sizes(trained_segmenter, tmp_path: Path, capsys) -> None:
    files = [write(tmp_path / f"b{i}.tif", np.ones((1, 64, 64 + (i == 2)), np.uint16)) for i in range(4)]
    assert "b2.tif: 65x64 pixels, but b0.tif is 64x64" in run_bad(trained_segmenter, tmp_path, capsys, files)


def test_checkpoint_for_another_channel_count(trained_segmenter, tmp_path: Path, capsys) -> None:
    scene = write(tmp_path / "nine.tif", np.ones((9, 64, 64), np.uint16))
    err = run_bad(trained_segmenter, tmp_path, capsys, [scene])
    assert "9 band(s), but" in err and "expects 4 (red, green, blue, nir)" in err


def test_all_nodata_scene(trained_segmenter, tmp_path: Path, capsys) -> None:
    scene = write(tmp_path / "empty.tif", np.zeros((4, 300, 300), np.uint16))
    assert "every pixel is no data" in run_bad(trained_segmenter, tmp_path, capsys, [scene])


def test_missing_scene_and_not_a_checkpoint(trained_segmenter, tmp_path: Path, capsys) -> None:
    assert "does not exist" in run_bad(trained_segmenter, tmp_path, capsys, [tmp_path / "nope.tif"])
    bogus = tmp_path / "bogus.ckpt"
    bogus.write_bytes(b"not a checkpoint")
    scene = write(tmp_path / "s.tif", np.ones((4, 64, 64), np.uint16))
    assert "not a satpipe checkpoint" in run_bad(trained_segmenter, tmp_path, capsys, [scene], bogus)


def test_a_checkpoint_that_would_run_code_is_refused(trained_segmenter, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "marker"
    unsafe = unsafe_checkpoint(checkpoint(trained_segmenter), tmp_path / "unsafe.ckpt", marker)
    scene = write(tmp_path / "s.tif", np.ones((4, 64, 64), np.uint16))
    err = run_bad(trained_segmenter, tmp_path, capsys, [scene], unsafe)
    assert err.startswith(f"error: {unsafe}: refused: it references io.open") and not marker.exists()
