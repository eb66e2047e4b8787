from pathlib import Path

import numpy as np
import rasterio

from satpipe.io.dataset_files import check_scenes, list_scenes
from satpipe.io.description import read_description
from satpipe.io.synthetic.landcover import CLASSES, IGNORE_INDEX, digital_numbers, render_scene, write_landcover_dataset

ID = {name: value for value, name in CLASSES.items()}


def test_rendering_is_deterministic_and_every_class_appears() -> None:
    a, b = render_scene(np.random.default_rng([3, 1]), 192), render_scene(np.random.default_rng([3, 1]), 192)
    np.testing.assert_array_equal(a.reflectance, b.reflectance)
    np.testing.assert_array_equal(a.labels, b.labels)
    for i in range(3):
        scene = render_scene(np.random.default_rng([0, i]), 256)
        assert set(np.unique(scene.labels)) - {IGNORE_INDEX} == set(CLASSES), i


def test_roads_roofs_and_barren_land_share_one_spectrum_but_not_one_shape() -> None:
    scene = render_scene(np.random.default_rng([0, 2]), 256)
    means = {n: scene.reflectance[:, scene.labels == ID[n]].mean(axis=1) for n in ("building", "road", "barren")}
    for name in ("building", "road"):
        np.testing.assert_allclose(means[name], means["barren"], rtol=0.2)
    grass = scene.reflectance[:, scene.labels == ID["grassland"]].mean(axis=1)
    assert np.abs(grass - means["barren"]).max() > 0.05  # the confusion is between these three, not all classes

    def thickness(name: str) -> float:  # share of the class's pixels whose 5x5 neighbourhood is all that class
        inside = scene.labels == ID[name]
        core = inside.copy()
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                core &= np.roll(inside, (dy, dx), axis=(0, 1))
        return core.sum() / inside.sum()

    assert thickness("road") < 0.5 * thickness("barren")


def test_scenes_differ_along_the_season_not_by_one_global_gain() -> None:
    scenes = [render_scene(np.random.default_rng([0, i]), 128) for i in range(8)]
    ratios = []
    for s in scenes:
        grass = s.reflectance[:, s.labels == ID["grassland"]].mean(axis=1)
        barren = s.reflectance[:, s.labels == ID["barren"]].mean(axis=1)
        ratios.append(grass[3] / grass[2] / (barren[3] / barren[2]))  # NIR/red of grass relative to barren land
    assert max(ratios) > 1.5 * min(ratios)  # illumination and gain cancel out; the season does not
    assert len({round(s.style.season, 3) for s in scenes}) == 8


def test_written_dataset_is_described_and_passes_the_generic_check(tmp_path: Path) -> None:
    path = write_landcover_dataset(tmp_path, train_scenes=3, test_scenes=1, size=128, seed=4, progress=False)
    desc = read_description(path)
    assert desc.classes == tuple(CLASSES.values()) and desc.ignore_index == IGNORE_INDEX and desc.values[0] == 1
    scenes = list_scenes(desc)
    assert [s.split for s in scenes] == [None, None, None, "test"]
    result = check_scenes(desc, scenes)
    assert (result.image.count, result.image.dtype, result.georeferenced) == (4, "uint16", True)
    with rasterio.open(scenes[0].image) as img, rasterio.open(scenes[0].mask) as msk:
        assert img.nodata == 0 and img.crs == msk.crs and img.transform == msk.transform
        assert msk.colormap(1)[ID["water"]][:3] == (0x2B, 0x83, 0xBA)
        dn = img.read()
    expected = digital_numbers(render_scene(np.random.default_rng([4, 0]), 128))
    np.testing.assert_array_equal(dn, expected)
    assert dn[:, dn[0] > 0].min() > 1000  # L2A-like offset: reflectance * 10000 + 1000


def test_first_index_continues_the_series(tmp_path: Path) -> None:
    write_landcover_dataset(tmp_path / "a", train_scenes=3, test_scenes=0, size=64, progress=False)
    write_landcover_dataset(tmp_path / "b", train_scenes=1, test_scenes=0, size=64, first_index=2, progress=False)
    a = (tmp_path / "a" / "images" / "scene_0002.tif").read_bytes()
    assert a == (tmp_path / "b" / "images" / "scene_0002.tif").read_bytes()
