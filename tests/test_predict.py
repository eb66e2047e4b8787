"""The predict command on real patches, on a georeferenced scene, and on bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from sklearn.metrics import jaccard_score

from satpipe.evaluation.clouds import counts
from satpipe.inference.scenes import predict_scene_file
from satpipe.io.cloud38 import list_patches, read_ground_truth
from satpipe.predict import main
from tests.unsafe import unsafe_checkpoint

REAL = {"38cloud_satunet": "test", "38cloud_sorourmo": "train", "ghalamclouds80_satunet": "test"}


def checkpoint(trained: dict[str, Path]) -> Path:
    return next((trained["train"] / "checkpoints").glob("epoch*.ckpt"))


@pytest.mark.parametrize("folder", list(REAL))
def test_predict_each_real_patch_and_score_it(real_data: Path, trained_segmenter, tmp_path: Path, folder: str) -> None:
    patch = list_patches(real_data / folder, REAL[folder], require_gt=True)[0]
    result = predict_scene_file(list(patch.bands), checkpoint(trained_segmenter), tmp_path / "mask.tif", progress=False)
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
    out = capsys.readouterr().out
    assert code == 0 and re.search(r"of pixels with data (clear|cloud) \d+\.\d%, (clear|cloud) \d+\.\d%", out), out
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


def run_bad(trained_segmenter, tmp_path: Path, capsys, scene: list[Path], ckpt: Path | None = None, *options: str,
            out: Path | None = None) -> str:  # fmt: skip
    inputs = {p: p.read_bytes() for p in scene if p.is_file()}
    code = main([*map(str, scene), "--checkpoint", str(ckpt or checkpoint(trained_segmenter)), "--out",
                 str(out or tmp_path / "out" / "m.tif"), *options])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert not captured.out.strip()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []  # nothing half-written
    assert all(p.read_bytes() == data for p, data in inputs.items())  # no input touched
    return captured.err


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


def georeferenced(path: Path, crs: str = "EPSG:32633", origin: tuple[float, float] = (500000, 4600000)) -> Path:
    data = np.random.default_rng(0).integers(1, 20000, size=(1, 64, 64), dtype=np.uint16)
    with rasterio.open(path, "w", driver="GTiff", count=1, height=64, width=64, dtype="uint16", crs=crs,
                       transform=from_origin(*origin, 30, 30)) as dst:  # fmt: skip
        dst.write(data)
    return path


def test_band_files_in_different_crs_or_grids(trained_segmenter, tmp_path: Path, capsys) -> None:
    bands = [georeferenced(tmp_path / f"b{i}.tif") for i in range(3)]
    other_crs = georeferenced(tmp_path / "utm34.tif", crs="EPSG:32634")
    err = run_bad(trained_segmenter, tmp_path, capsys, [*bands, other_crs])
    assert "utm34.tif: CRS EPSG:32634, but b0.tif is in EPSG:32633" in err
    shifted = georeferenced(tmp_path / "shifted.tif", origin=(500030, 4600000))
    assert "shifted.tif: transform" in run_bad(trained_segmenter, tmp_path, capsys, [*bands, shifted])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--threshold", "1.5"], "--threshold must be between 0 and 1 (exclusive), got 1.5"),
        (["--threshold", "-0.2"], "--threshold must be between 0 and 1 (exclusive), got -0.2"),
        (["--threshold", "nan"], "--threshold must be between 0 and 1 (exclusive), got nan"),
        (["--threshold", "1"], "--threshold must be between 0 and 1"),
        (["--batch-size", "-1"], "--batch-size must be at least 1, got -1"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--device", "tpu9"], "--device tpu9: unknown device; use auto, cpu, cuda or cuda:N"),
        (["--device", "cuda:99"], "--device cuda:99: "),
        (["--window", "100"], "--window must be a positive multiple of 32, got 100"),
        (["--window", "0"], "--window must be a positive multiple of 32, got 0"),
        (["--overlap", "384"], "--overlap must be in [0, window) = [0, 384), got 384"),
        (["--window", "256", "--overlap", "-1"], "--overlap must be in [0, window) = [0, 256), got -1"),
        (["--json", "x.json"], "--json applies to chip predictions"),
    ],
)
def test_bad_settings_are_refused_before_anything_runs(trained_segmenter, tmp_path: Path, capsys, options, message):
    scene = write(tmp_path / "s.tif", np.ones((4, 64, 64), np.uint16))
    assert message in run_bad(trained_segmenter, tmp_path, capsys, [scene], None, *options)


def test_outputs_never_replace_an_input_or_each_other(trained_segmenter, tmp_path: Path, capsys) -> None:
    scene = write(tmp_path / "scene.tif", np.ones((4, 64, 64), np.uint16))
    err = run_bad(trained_segmenter, tmp_path, capsys, [scene], None, out=scene)
    assert err == f"error: --out {scene}: would overwrite the input {scene}; write somewhere else\n"
    err = run_bad(trained_segmenter, tmp_path, capsys, [scene], None, "--prob-out", str(scene))
    assert f"--prob-out {scene}: would overwrite the input {scene}" in err
    beside = write(tmp_path / "out.prob.tif", np.ones((4, 64, 64), np.uint16))  # where --out's probability goes
    err = run_bad(trained_segmenter, tmp_path, capsys, [beside], None, out=tmp_path / "out.tif")
    assert f"--prob-out {beside}: would overwrite the input" in err
    same = tmp_path / "out" / "m.tif"
    err = run_bad(trained_segmenter, tmp_path, capsys, [scene], None, "--prob-out", str(same))
    assert f"--prob-out {same}: the same file as --out {same}" in err
    ckpt = checkpoint(trained_segmenter)
    before = ckpt.read_bytes()
    assert "end it in .tif" in run_bad(trained_segmenter, tmp_path, capsys, [scene], None, out=ckpt)
    assert ckpt.read_bytes() == before


def test_unwritable_output_folder_and_missing_model(trained_segmenter, tmp_path: Path, capsys) -> None:
    scene = write(tmp_path / "scene.tif", np.ones((4, 64, 64), np.uint16))
    (tmp_path / "file").write_text("")
    err = run_bad(trained_segmenter, tmp_path, capsys, [scene], None, out=tmp_path / "file" / "m.tif")
    assert f"--out: {tmp_path / 'file'} is a file" in err
    err = run_bad(trained_segmenter, tmp_path, capsys, [scene], tmp_path / "none.ckpt")
    assert err == f"error: {tmp_path / 'none.ckpt'}: model does not exist\n"
    err = run_bad(trained_segmenter, tmp_path, capsys, [scene], None, out=tmp_path / "out" / "m.png")
    assert "--out " in err and "end it in .tif" in err
