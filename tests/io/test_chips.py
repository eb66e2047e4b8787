"""Chips of any format, band count and dtype, read whole and checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from satpipe.errors import DataError, DatasetNotFoundError
from satpipe.io.chips import find_chips, read_image


def write_tif(path: Path, data: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2],
                       dtype=data.dtype.name) as dst:  # fmt: skip
        dst.write(data)
    return path


def test_png_and_geotiff_of_any_band_count_and_dtype(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    gray16 = np.random.default_rng(1).integers(0, 65535, (20, 30), dtype=np.uint16)
    Image.fromarray(gray16).save(tmp_path / "gray.PNG")
    floats = np.random.default_rng(2).normal(size=(5, 20, 30)).astype(np.float32)
    write_tif(tmp_path / "five.tiff", floats)
    assert np.array_equal(read_image(tmp_path / "rgb.png", 3), rgb.transpose(2, 0, 1))
    one = read_image(tmp_path / "gray.PNG", 1)
    assert one.shape == (1, 20, 30) and one.dtype == np.uint16 and np.array_equal(one[0], gray16)
    assert np.array_equal(read_image(tmp_path / "five.tiff", 5), floats)


def test_wrong_band_count_non_finite_and_unknown_format(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / "rgba.png")
    with pytest.raises(DataError, match=r"rgba.png: expected 3 bands, got 4 \(mode 'RGBA'\)"):
        read_image(tmp_path / "rgba.png", 3)
    data = np.ones((2, 8, 8), np.float32)
    data[1, 2, 2] = np.inf
    with pytest.raises(DataError, match="inf.tif: holds NaN or infinite values"):
        read_image(write_tif(tmp_path / "inf.tif", data), 2)
    (tmp_path / "chip.bmp").write_bytes(b"BM")
    with pytest.raises(DataError, match=r"chip.bmp: not a chip format; expected one of \.jpg"):
        read_image(tmp_path / "chip.bmp", 3)


def test_find_chips_in_files_and_folders(tmp_path: Path) -> None:
    for rel in ("a/x_10.jpg", "a/x_2.jpg", "a/sub/y.tif", "a/.hidden.jpg", "a/notes.txt", "b.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = find_chips([tmp_path / "b.png", tmp_path / "a"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["b.png", "a/sub/y.tif", "a/x_2.jpg", "a/x_10.jpg"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="empty: no chips"):
        find_chips([tmp_path / "empty"])
    with pytest.raises(DataError, match="notes.txt: not a chip format"):
        find_chips([tmp_path / "a" / "notes.txt"])
    with pytest.raises(DatasetNotFoundError, match="nope.jpg: does not exist"):
        find_chips([tmp_path / "nope.jpg"])
