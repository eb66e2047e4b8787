import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from satpipe.errors import DataError, DatasetNotFoundError, DownloadError
from satpipe.io import eurosat
from satpipe.io.download import RemoteFile
from tests.httpserver import FileServer, serve


def copy_rgb(synthetic_eurosat: Path, tmp_path: Path) -> Path:
    root = tmp_path / "EuroSAT" / "2750"
    shutil.copytree(synthetic_eurosat / "2750", root)
    return root


def test_finds_both_layouts_and_lists_every_class(synthetic_eurosat: Path) -> None:
    for bands, suffix in (("rgb", ".jpg"), ("ms", ".tif")):
        root = eurosat.find_image_root(synthetic_eurosat, bands)
        samples = eurosat.list_samples(root, bands)
        assert len(samples) == 12 * len(eurosat.CLASSES)
        assert {s.label for s in samples} == set(range(10))
        assert all(s.path.endswith(suffix) and s.path.split("/")[0] == eurosat.CLASSES[s.label] for s in samples)
    # Natural order: _2 before _10.
    forest = [s.path for s in samples if s.label == 1]
    assert forest.index("Forest/Forest_2.tif") < forest.index("Forest/Forest_10.tif")


def test_reads_chips_in_stored_dtype(synthetic_eurosat: Path) -> None:
    rgb = eurosat.read_chip(synthetic_eurosat / "2750/Forest/Forest_1.jpg", "rgb")
    ms = eurosat.read_chip(eurosat.find_image_root(synthetic_eurosat, "ms") / "Forest/Forest_1.tif", "ms")
    assert rgb.shape == (3, 64, 64) and rgb.dtype == np.uint8
    assert ms.shape == (13, 64, 64) and ms.dtype == np.uint16


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        eurosat.find_image_root(tmp_path / "nope", "rgb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no EuroSAT class folders"):
        eurosat.find_image_root(tmp_path / "empty", "rgb")


def test_unknown_class_folder(synthetic_eurosat: Path, tmp_path: Path) -> None:
    root = copy_rgb(synthetic_eurosat, tmp_path)
    (root / "Glacier").mkdir()
    with pytest.raises(DataError, match="unknown class folder 'Glacier'"):
        eurosat.list_samples(root, "rgb")


def test_missing_or_empty_class(synthetic_eurosat: Path, tmp_path: Path) -> None:
    root = copy_rgb(synthetic_eurosat, tmp_path)
    shutil.rmtree(root / "River")
    with pytest.raises(DataError, match="River: class folder missing"):
        eurosat.list_samples(root, "rgb")
    (root / "River").mkdir()
    with pytest.raises(DataError, match="holds no"):
        eurosat.list_samples(root, "rgb")


def test_corrupt_and_wrong_images(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.jpg"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(DataError, match="truncated.jpg: unreadable"):
        eurosat.read_chip(truncated, "rgb")
    gray = tmp_path / "gray.jpg"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(gray)
    with pytest.raises(DataError, match="gray.jpg: expected 3 bands, got 1"):
        eurosat.read_chip(gray, "rgb")
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"not a tiff at all")
    with pytest.raises(DataError, match="garbage.tif: unreadable"):
        eurosat.read_chip(garbage, "ms")


def write_tif(path: Path, data: np.ndarray) -> Path:
    profile = {
        "driver": "GTiff",
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": data.dtype.name,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_wrong_band_count_and_nan(tmp_path: Path) -> None:
    four = write_tif(tmp_path / "four.tif", np.zeros((4, 64, 64), np.uint16))
    with pytest.raises(DataError, match="four.tif: expected 13 bands, got 4"):
        eurosat.read_chip(four, "ms")
    data = np.ones((13, 64, 64), np.float32)
    data[3, 5, 5] = np.nan
    with pytest.raises(DataError, match="nan.tif: holds NaN"):
        eurosat.read_chip(write_tif(tmp_path / "nan.tif", data), "ms")


def test_fetch_downloads_verifies_and_extracts(
    synthetic_eurosat: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "EuroSAT.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((synthetic_eurosat / "2750").rglob("*.jpg"))[::6]:  # 2 per class
            zf.write(path, path.relative_to(synthetic_eurosat).as_posix())
    payload = archive.read_bytes()
    with serve(FileServer(files={"EuroSAT.zip": payload})) as server:
        spec = RemoteFile(server.url_for("EuroSAT.zip"), "EuroSAT.zip", f"sha256:{hashlib.sha256(payload).hexdigest()}")
        monkeypatch.setitem(eurosat.ARCHIVES, "rgb", spec)
        root = eurosat.fetch(tmp_path / "dl", "rgb", progress=False)
    assert root == tmp_path / "dl" / "extracted" / "rgb" / "2750"
    assert len(eurosat.list_samples(root, "rgb")) == 20


def test_fetch_offline_suggests_alternatives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(eurosat.ARCHIVES, "rgb", RemoteFile("http://127.0.0.1:9/EuroSAT.zip", "EuroSAT.zip"))
    with pytest.raises(DownloadError, match=r"--data-dir PATH .* synthetic source"):
        eurosat.fetch(tmp_path, "rgb", progress=False)


def test_real_archive_specs_are_pinned() -> None:
    for spec in eurosat.ARCHIVES.values():
        assert spec.url.startswith("https://") and "/resolve/" in spec.url and spec.checksum
