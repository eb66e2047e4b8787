from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from satpipe.errors import DataError
from satpipe.io.rasters import MASK_NODATA, MaskWriter, RasterScene, classify


def write(path: Path, data: np.ndarray, **profile: object) -> Path:
    with rasterio.open(path, "w", driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2],
                       dtype=data.dtype.name, **profile) as dst:  # fmt: skip
        dst.write(data)
    return path


def test_multiband_and_per_band_scenes_read_the_same(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(1, 1000, size=(3, 40, 50), dtype=np.uint16)
    multi = write(tmp_path / "multi.tif", data, crs="EPSG:32633", transform=from_origin(0, 0, 30, 30))
    bands = [write(tmp_path / f"b{i}.tif", data[i : i + 1]) for i in range(3)]
    with RasterScene([multi]) as a, RasterScene(bands) as b:
        assert a.count == b.count == 3 and a.crs.to_epsg() == 32633
        np.testing.assert_array_equal(a.read(5, 7, 10, 20), b.read(5, 7, 10, 20))


def test_per_band_files_of_different_sizes(tmp_path: Path) -> None:
    a = write(tmp_path / "red.tif", np.ones((1, 40, 50), np.uint16))
    b = write(tmp_path / "nir.tif", np.ones((1, 40, 51), np.uint16))
    with pytest.raises(DataError, match=r"nir.tif: 51x40 pixels, but red.tif is 50x40"):
        RasterScene([a, b])


def test_per_band_files_on_different_grids(tmp_path: Path) -> None:
    grid = {"crs": "EPSG:32633", "transform": from_origin(500000, 4600000, 30, 30)}
    red = write(tmp_path / "red.tif", np.ones((1, 40, 50), np.uint16), **grid)
    utm34 = write(tmp_path / "nir.tif", np.ones((1, 40, 50), np.uint16), **{**grid, "crs": "EPSG:32634"})
    with pytest.raises(DataError, match=r"nir.tif: CRS EPSG:32634, but red.tif is in EPSG:32633"):
        RasterScene([red, utm34])
    shifted = {**grid, "transform": from_origin(500030, 4600000, 30, 30)}
    moved = write(tmp_path / "green.tif", np.ones((1, 40, 50), np.uint16), **shifted)
    with pytest.raises(DataError, match=r"green.tif: transform \(30.0, 0.0, 500030.0"):
        RasterScene([red, moved])
    plain = write(tmp_path / "plain.tif", np.ones((1, 40, 50), np.uint16))
    with pytest.raises(DataError, match=r"plain.tif: CRS none, but red.tif is in EPSG:32633"):
        RasterScene([red, plain])


def test_valid_pixels_follow_nodata_in_every_band(tmp_path: Path) -> None:
    data = np.ones((2, 4, 4), np.int16)
    data[:, 0, 0] = -32768
    data[0, 1, 1] = -32768  # one band only: still data
    with RasterScene([write(tmp_path / "s.tif", data, nodata=-32768)]) as scene:
        valid = scene.valid(scene.read(0, 0, 4, 4))
    assert not valid[0, 0] and valid[1, 1] and valid.sum() == 15


def test_a_pixel_with_a_non_finite_band_has_no_data_and_reads_as_nodata(tmp_path: Path) -> None:
    data = np.full((2, 4, 4), 0.3, np.float32)
    data[0, 1, 1] = np.nan  # one band only: no data, unlike a nodata value in one band
    data[:, 2, 2] = np.inf
    for nodata, fill in ((None, 0.0), (-1.0, -1.0), (float("nan"), 0.0)):
        profile = {} if nodata is None else {"nodata": nodata}
        with RasterScene([write(tmp_path / "s.tif", data, **profile)]) as scene:
            window = scene.read(0, 0, 4, 4)
            valid = scene.valid(window)
        assert np.isfinite(window).all() and (window[:, 1, 1] == fill).all() and (window[:, 2, 2] == fill).all()
        assert not valid[1, 1] and not valid[2, 2] and valid.sum() == 14


def test_per_band_files_of_different_types(tmp_path: Path) -> None:
    a = write(tmp_path / "red.tif", np.ones((1, 40, 50), np.uint16))
    b = write(tmp_path / "nir.tif", np.ones((1, 40, 50), np.float32))
    with pytest.raises(DataError, match=r"nir.tif: float32 values, but red.tif holds uint16"):
        RasterScene([a, b])


def test_mask_writer_publishes_cogs_or_nothing(tmp_path: Path) -> None:
    writer = MaskWriter(tmp_path / "m.tif", tmp_path / "p.tif", height=600, width=300, crs="EPSG:32633",
                        transform=from_origin(100, 200, 30, 30), threshold=0.5)  # fmt: skip
    prob = np.linspace(0, 1, 600 * 300, dtype=np.float32).reshape(1, 600, 300)
    prob[:, :10] = np.nan
    writer.write(0, prob[:, :300])
    writer.write(300, prob[:, 300:])
    writer.close()
    with rasterio.open(tmp_path / "m.tif") as mask, rasterio.open(tmp_path / "p.tif") as p:
        assert mask.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG" and mask.crs.to_epsg() == 32633
        m = mask.read(1)
        assert (m[:10] == MASK_NODATA).all() and set(np.unique(m[10:])) == {0, 1}
        np.testing.assert_allclose(p.read(1)[10:], prob[0, 10:])
    aborted = MaskWriter(tmp_path / "x.tif", tmp_path / "y.tif", height=10, width=10, crs=None, transform=None,
                         threshold=0.5)  # fmt: skip
    aborted.write(0, np.zeros((1, 5, 10), np.float32))
    aborted.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif", "p.tif"]


def test_a_two_class_model_writes_the_same_cloud_mask_as_a_one_channel_one(tmp_path: Path) -> None:
    cloud = np.random.default_rng(0).random((1, 40, 30)).astype(np.float32)
    cloud[:, :3] = np.nan
    written = []
    for name, prob in (("one", cloud), ("two", np.concatenate([1 - cloud, cloud]))):
        writer = MaskWriter(tmp_path / f"{name}.tif", tmp_path / f"{name}.p.tif", height=40, width=30, crs=None,
                            transform=None, threshold=0.5)  # fmt: skip
        writer.write(0, prob)
        writer.close()
        with rasterio.open(tmp_path / f"{name}.tif") as m, rasterio.open(tmp_path / f"{name}.p.tif") as p:
            written.append((m.read(1), p.read(1)))
    (mask_one, prob_one), (mask_two, prob_two) = written
    np.testing.assert_array_equal(mask_one, mask_two)
    np.testing.assert_array_equal(prob_one, prob_two)
    assert (mask_one[:3] == MASK_NODATA).all() and set(np.unique(mask_one[3:])) == {0, 1}
    np.testing.assert_array_equal(mask_one[3:], cloud[0, 3:] > 0.5)


def test_mask_writer_with_five_classes_writes_argmax_confidence_and_colours(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    prob = rng.dirichlet(np.ones(5), size=(700, 600)).transpose(2, 0, 1).astype(np.float32)  # (5, H, W)
    prob[:, :20, :50] = np.nan
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30), (200, 100, 50)]
    transform = from_origin(500000, 5500000, 2, 2)
    writer = MaskWriter(tmp_path / "ids.tif", tmp_path / "ids.confidence.tif", height=700, width=600,
                        crs="EPSG:32632", transform=transform, colors=colors)  # fmt: skip
    for row in range(0, 700, 256):
        writer.write(row, prob[:, row : row + 256])
    writer.close()
    with rasterio.open(tmp_path / "ids.tif") as ids, rasterio.open(tmp_path / "ids.confidence.tif") as conf:
        for ds in (ids, conf):
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert ds.crs.to_epsg() == 32632 and ds.transform.almost_equals(transform)
        assert ids.dtypes[0] == "uint8" and ids.nodata == MASK_NODATA and conf.dtypes[0] == "float32"
        table = ids.colormap(1)
        assert [table[k][:3] for k in range(5)] == colors and table[MASK_NODATA] == (0, 0, 0, 0)
        got_ids, got_conf = ids.read(1), conf.read(1)
    with rasterio.open(tmp_path / "ids.tif", overview_level=0) as overview:  # 700 px: the COG has one
        half = overview.read(1)
    # Each overview pixel is the class of a pixel it covers: ids are picked, never blended into other ids.
    blocks = got_ids.reshape(350, 2, 300, 2).transpose(0, 2, 1, 3).reshape(350, 300, 4)
    assert half.shape == (350, 300) and (blocks == half[..., None]).any(axis=-1).all()
    assert (got_ids[:20, :50] == MASK_NODATA).all() and np.isnan(got_conf[:20, :50]).all()
    expected = prob.argmax(axis=0)
    data = np.ones((700, 600), bool)
    data[:20, :50] = False
    np.testing.assert_array_equal(got_ids[data], expected[data])
    np.testing.assert_allclose(got_conf[data], prob.max(axis=0)[data])


def test_classify_leaves_pixels_without_data_out() -> None:
    prob = np.array([[[0.2, np.nan]], [[0.5, np.nan]], [[0.3, np.nan]]], np.float32)  # (3, 1, 2)
    ids, confidence = classify(prob)
    assert ids.tolist() == [[1, MASK_NODATA]] and confidence[0, 0] == np.float32(0.5) and np.isnan(confidence[0, 1])
