"""Chip classification with `satpipe predict ... --out preds.csv`: checkpoints and ONNX models, any chip format."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from satpipe.artifacts import read_manifest
from satpipe.inference.onnx_export import export_onnx
from satpipe.io.eurosat import find_image_root
from satpipe.predict import main


def predict(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def test_chips(trained_run: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test split's chips, copied into class folders as the user would have them."""
    root = find_image_root(trained_run["raw"], "rgb")
    folder = tmp_path_factory.mktemp("chips")
    for rel in read_manifest(trained_run["prepared"])["files"]["test"]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, folder / rel)
    return folder


def test_a_folder_of_chips_is_classified_as_the_evaluation_scored_it(trained_run, test_chips, tmp_path, capsys):
    code, out, err = predict(capsys, test_chips, "--checkpoint", trained_run["train"], "--out", tmp_path / "p.csv",
                             "--json", tmp_path / "p.json")  # fmt: skip
    assert code == 0 and not err and out.startswith(f"wrote {tmp_path / 'p.csv'} and {tmp_path / 'p.json'}: 100 chips")
    rows = read_csv(tmp_path / "p.csv")
    classes = json.loads((trained_run["evaluate"] / "metrics.json").read_text())["classes"]
    assert list(rows[0]) == ["chip", "class", *classes] and len(rows) == 100
    accuracy = np.mean([row["class"] == Path(row["chip"]).parent.name for row in rows])
    scored = json.loads((trained_run["evaluate"] / "metrics.json").read_text())["accuracy"]
    assert accuracy == pytest.approx(scored) and accuracy >= 0.8  # learned, and read as the evaluation read them
    probs = np.array([[float(row[c]) for c in classes] for row in rows])
    assert np.allclose(probs.sum(1), 1, atol=1e-4)
    assert [row["class"] for row in rows] == [classes[i] for i in probs.argmax(1)]
    document = json.loads((tmp_path / "p.json").read_text())
    assert document["classes"] == classes
    assert [(p["chip"], p["class"]) for p in document["predictions"]] == [(r["chip"], r["class"]) for r in rows]


def test_an_exported_classifier_predicts_the_same(trained_run, test_chips, tmp_path, capsys) -> None:
    model = export_onnx(trained_run["train"], tmp_path / "classifier.onnx")
    for name, source in (("torch.csv", trained_run["train"]), ("onnx.csv", model)):
        assert predict(capsys, test_chips, "--checkpoint", source, "--out", tmp_path / name)[0] == 0
    by_torch, by_onnx = read_csv(tmp_path / "torch.csv"), read_csv(tmp_path / "onnx.csv")
    assert [r["class"] for r in by_torch] == [r["class"] for r in by_onnx]
    columns = list(by_torch[0])[2:]
    diff = max(abs(float(a[c]) - float(b[c])) for a, b in zip(by_torch, by_onnx, strict=True) for c in columns)
    assert diff < 1e-4


def test_png_and_geotiff_chips_read_like_the_jpeg(trained_run, test_chips, tmp_path, capsys) -> None:
    jpeg = sorted(test_chips.rglob("*.jpg"))[0]
    pixels = np.asarray(Image.open(jpeg))  # (H, W, 3) as decoded
    Image.fromarray(pixels).save(tmp_path / "chip.png")
    with rasterio.open(tmp_path / "chip.tif", "w", driver="GTiff", count=3, height=pixels.shape[0],
                       width=pixels.shape[1], dtype="uint8") as dst:  # fmt: skip
        dst.write(pixels.transpose(2, 0, 1))
    chips = [jpeg, tmp_path / "chip.png", tmp_path / "chip.tif"]
    assert predict(capsys, *chips, "--checkpoint", trained_run["train"], "--out", tmp_path / "p.csv")[0] == 0
    rows = read_csv(tmp_path / "p.csv")
    assert [Path(r["chip"]).suffix for r in rows] == [".jpg", ".png", ".tif"]
    assert rows[0] == {**rows[1], "chip": rows[0]["chip"]} == {**rows[2], "chip": rows[0]["chip"]}


def bad(capsys, tmp_path: Path, *args: object) -> str:
    code, out, err = predict(capsys, *args)
    assert code == 2 and not out.strip() and err.startswith("error: ") and err.count("\n") == 1
    assert not list(tmp_path.glob("out*"))  # nothing written
    return err


def test_bad_chips_and_settings_are_one_line(trained_run, trained_segmenter, test_chips, tmp_path, capsys) -> None:
    model, out = trained_run["train"], tmp_path / "out.csv"
    four = tmp_path / "four.tif"
    with rasterio.open(four, "w", driver="GTiff", count=4, height=64, width=64, dtype="uint16") as dst:
        dst.write(np.ones((4, 64, 64), np.uint16))
    assert f"{four}: expected 3 bands, got 4" in bad(capsys, tmp_path, test_chips, four, "--checkpoint", model,
                                                        "--out", out)  # fmt: skip
    (tmp_path / "empty").mkdir()
    assert "empty: no chips" in bad(capsys, tmp_path, tmp_path / "empty", "--checkpoint", model, "--out", out)
    assert "missing.jpg: chip or folder does not exist" in bad(capsys, tmp_path, tmp_path / "missing.jpg",
                                                               "--checkpoint", model, "--out", out)  # fmt: skip
    err = bad(capsys, tmp_path, test_chips, "--checkpoint", model, "--out", out, "--threshold", "0.3", "--window", "64")
    assert err.startswith("error: --threshold, --window: scene settings; --out .csv classifies chips")
    err = bad(capsys, tmp_path, test_chips, "--checkpoint", model, "--out", out, "--json", out)
    assert "--json " in err and "end it in .json" in err
    err = bad(capsys, tmp_path, test_chips, "--checkpoint", model, "--out", out, "--json", tmp_path / "out.json",
              "--batch-size", "0")  # fmt: skip
    assert "--batch-size must be at least 1, got 0" in err
    segmenter = trained_segmenter["train"]
    err = bad(capsys, tmp_path, test_chips, "--checkpoint", segmenter, "--out", out)
    assert "a segmentation model, not a classifier" in err
