"""ONNX export of both model kinds: ONNX Runtime against PyTorch, metadata, predict with the exported model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
import torch

from satpipe.export import main
from satpipe.inference.models import Probabilities
from satpipe.inference.onnx_export import export_onnx, onnx_info
from satpipe.inference.scenes import predict_scene_file
from satpipe.training.checkpoints import load_trained
from tests.unsafe import unsafe_checkpoint


def run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x.numpy()})[0]


@pytest.fixture(scope="module")
def segmenter_onnx(trained_segmenter: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(trained_segmenter["train"], tmp_path_factory.mktemp("onnx") / "segmenter.onnx")


def test_segmenter_matches_pytorch_at_any_size(segmenter_onnx: Path, trained_segmenter: dict[str, Path]) -> None:
    module = load_trained(trained_segmenter["train"])
    x = torch.rand(3, 4, 128, 192) * 30000  # raw Landsat-8 DN, a size the export never saw
    with torch.no_grad():
        expected = Probabilities(module).eval()(x).numpy()
    got = run_onnx(segmenter_onnx, x)
    assert got.shape == (3, 2, 128, 192) and np.abs(got - expected).max() < 1e-4  # p(clear), p(cloud)
    info = onnx_info(segmenter_onnx)
    assert info["task"] == "segmentation" and info["bands"] == ["red", "green", "blue", "nir"]
    assert info["classes"] == ["clear", "cloud"]
    assert json.loads(segmenter_onnx.with_suffix(".json").read_text()) == info


def test_classifier_matches_pytorch(trained_run: dict[str, Path], tmp_path: Path) -> None:
    assert main([str(trained_run["train"]), "--out", str(tmp_path / "classifier.onnx")]) == 0
    module = load_trained(trained_run["train"])
    x = torch.rand(4, 3, 64, 64) * 255  # raw 8-bit RGB chips
    with torch.no_grad():
        expected = Probabilities(module).eval()(x).numpy()
    got = run_onnx(tmp_path / "classifier.onnx", x)
    assert got.shape == (4, 10) and np.abs(got - expected).max() < 1e-4 and np.allclose(got.sum(1), 1, atol=1e-5)
    info = onnx_info(tmp_path / "classifier.onnx")
    assert info["task"] == "classification" and len(info["classes"]) == 10 and info["value_scale"] == 255


def test_predict_with_the_exported_model_writes_the_same_mask(segmenter_onnx, trained_segmenter, tmp_path) -> None:
    scene = next((trained_segmenter["raw"] / "scenes").glob("LC08_*_T1.TIF"))
    kwargs = {"window": 256, "overlap": 32, "progress": False}
    torch_run = predict_scene_file([scene], trained_segmenter["train"], tmp_path / "torch.tif", **kwargs)  # its best
    onnx_run = predict_scene_file([scene], segmenter_onnx, tmp_path / "onnx.tif", **kwargs)
    with rasterio.open(torch_run.probability) as a, rasterio.open(onnx_run.probability) as b:
        pa, pb = a.read(1), b.read(1)
    valid = ~np.isnan(pa)
    assert np.array_equal(valid, ~np.isnan(pb)) and np.abs(pa[valid] - pb[valid]).max() < 1e-4


def test_bad_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], trained_run) -> None:
    bogus = tmp_path / "bogus.ckpt"
    bogus.write_bytes(b"nothing")
    assert main([str(bogus)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bogus}: not a satpipe checkpoint") and err.count("\n") == 1
    classifier = export_onnx(trained_run["train"], tmp_path / "c.onnx")
    with pytest.raises(Exception, match="a classification model, not a segmentation model"):
        predict_scene_file([tmp_path / "any.tif"], classifier, tmp_path / "m.tif", progress=False)


def test_a_checkpoint_that_would_run_code_is_refused(trained_run, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "marker"
    best = trained_run["train"] / json.loads((trained_run["train"] / "manifest.json").read_text())["best_checkpoint"]
    unsafe = unsafe_checkpoint(best, tmp_path / "unsafe.ckpt", marker)
    assert main([str(unsafe), "--out", str(tmp_path / "out" / "model.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {unsafe}: refused: it references io.open") and err.count("\n") == 1
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_bad_options_are_refused_before_the_checkpoint_is_read(tmp_path: Path, capsys) -> None:
    ckpt, exported, blocker = tmp_path / "m.ckpt", tmp_path / "x.onnx", tmp_path / "file"
    for path in (ckpt, exported, blocker):
        path.write_bytes(b"not read")
    cases = [
        ([tmp_path / "none.ckpt"], f"{tmp_path / 'none.ckpt'}: checkpoint does not exist"),
        ([ckpt, "--out", ckpt], f"--out {ckpt}: end it in .onnx"),
        ([ckpt, "--out", tmp_path / "m.json"], "end it in .onnx"),
        ([ckpt, "--out", blocker / "m.onnx"], f"--out: {blocker} is a file"),
        ([exported, "--out", exported], f"--out {exported}: would overwrite the input {exported}"),
        ([exported], f"--out {exported}: would overwrite the input {exported}"),  # the default: beside, .onnx
    ]
    for args, message in cases:
        assert main([str(a) for a in args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "m.ckpt", "x.onnx"]
    assert all(p.read_bytes() == b"not read" for p in (ckpt, exported, blocker))
