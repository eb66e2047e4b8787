from pathlib import Path

import numpy as np
import rasterio

from satpipe.artifacts import dir_digest
from satpipe.io.eurosat import BAND_NAMES, CLASSES
from satpipe.io.synthetic.eurosat import render_chip, write_dataset

B = {name: i for i, name in enumerate(BAND_NAMES["ms"])}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_dataset(tmp_path / name, per_class=2, seed=seed, progress=False)
    assert dir_digest(tmp_path / "a") == dir_digest(tmp_path / "b")
    assert dir_digest(tmp_path / "a") != dir_digest(tmp_path / "c")


def mean_spectrum(label: int, n: int = 8) -> np.ndarray:
    return np.mean(
        [render_chip(label, np.random.default_rng([9, label, i])).mean(axis=(1, 2)) for i in range(n)], axis=0
    )


def test_classes_differ_as_real_land_cover_does() -> None:
    spectra = {name: mean_spectrum(i) for i, name in enumerate(CLASSES)}
    ndvi = {k: (s[B["B08"]] - s[B["B04"]]) / (s[B["B08"]] + s[B["B04"]]) for k, s in spectra.items()}
    assert spectra["SeaLake"][B["B08"]] < 0.05  # water is dark in NIR
    assert (
        ndvi["SeaLake"] < 0 < 0.5 < ndvi["Forest"] and ndvi["Pasture"] > 0.5
    )  # vegetation is bright in NIR, dark in red
    assert ndvi["Industrial"] < 0.2  # built-up surfaces are spectrally flat
    assert spectra["Industrial"][B["B04"]] > 2 * spectra["Forest"][B["B04"]]


def test_geotiffs_carry_bands_crs_and_grid(tmp_path: Path) -> None:
    roots = write_dataset(tmp_path, per_class=1, seed=0, progress=False)
    with rasterio.open(roots["ms"] / "River" / "River_1.tif") as src:
        assert src.count == 13 and src.dtypes[0] == "uint16" and src.shape == (64, 64)
        assert src.crs.to_epsg() == 32632 and src.res == (10.0, 10.0)
        assert src.descriptions == BAND_NAMES["ms"]
    assert len(list(roots["rgb"].rglob("*.jpg"))) == len(CLASSES)
